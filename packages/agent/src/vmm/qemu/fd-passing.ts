import { close, open } from 'node:fs';
import { Socket, type SocketConstructorOpts } from 'node:net';

/**
 * Unix sockets that can carry a descriptor (SCM_RIGHTS), for QMP `getfd`. Node's `net` cannot send one, but libuv can
 * on a pipe opened in IPC mode (what child_process uses for its channel): a write on it may carry another handle's fd
 * next to its bytes. The bindings are reached through `process.binding`, whose allow-list keeps `pipe_wrap` and
 * `stream_wrap` (deprecated in documentation only); nothing else of Node's internals is used.
 */

interface UvHandle {
  close(cb?: () => void): void;
}

interface PipeHandle extends UvHandle {
  open(fd: number): number;
  connect(req: ConnectReq, path: string): number;
  writeUtf8String(req: WriteReq, data: string, sendHandle?: UvHandle): number;
}

interface ConnectReq {
  oncomplete: (status: number) => void;
}

interface WriteReq {
  handle: PipeHandle;
  oncomplete: (status: number) => void;
  async: boolean;
}

interface PipeWrap {
  Pipe: new (type: number) => PipeHandle;
  PipeConnectWrap: new () => ConnectReq;
  constants: { SOCKET: number; IPC: number };
}

interface StreamWrap {
  WriteWrap: new () => WriteReq;
}

const binding = (process as unknown as { binding(name: string): unknown }).binding;
const pipeWrap = binding('pipe_wrap') as PipeWrap;
const streamWrap = binding('stream_wrap') as StreamWrap;

const uvError = (status: number, what: string) =>
  Object.assign(new Error(`${what} failed (${status})`), { errno: status });

/** A connected unix socket whose writes may carry a descriptor (see `writeWithFd`). */
export function connectFdSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const pipe = new pipeWrap.Pipe(pipeWrap.constants.IPC);
    const req = new pipeWrap.PipeConnectWrap();
    req.oncomplete = (status) => {
      if (status < 0) {
        pipe.close();
        reject(uvError(status, `connecting to ${path}`));
        return;
      }
      // `handle` is an undocumented option of net.Socket (child_process wraps its IPC channel the same way).
      resolve(new Socket({ handle: pipe, readable: true, writable: true } as unknown as SocketConstructorOpts));
    };
    const err = pipe.connect(req, path);
    if (err < 0) {
      pipe.close();
      reject(uvError(err, `connecting to ${path}`));
    }
  });
}

/**
 * Writes `data` on a socket from `connectFdSocket` with `fd` attached. The receiver gets its own copy of the
 * descriptor; the returned `release` closes ours (call it once the peer has answered: the send is queued until then).
 * `fd` is taken over: it must not be closed by the caller.
 */
export function writeWithFd(socket: Socket, data: string, fd: number): { release(): void } {
  const pipe = (socket as unknown as { _handle: PipeHandle | null })._handle;
  const carrier = new pipeWrap.Pipe(pipeWrap.constants.SOCKET);
  const release = () => carrier.close();
  const opened = carrier.open(fd);
  if (opened < 0) {
    release();
    throw uvError(opened, 'wrapping the descriptor');
  }
  if (!pipe) {
    release();
    throw new Error('the socket is closed');
  }
  const req = new streamWrap.WriteWrap();
  req.handle = pipe;
  req.async = false;
  req.oncomplete = () => undefined;
  const err = pipe.writeUtf8String(req, data, carrier);
  if (err < 0) {
    release();
    throw uvError(err, 'sending the descriptor');
  }
  return { release };
}

/** A raw descriptor (not a FileHandle, which would close it again when collected), for `writeWithFd`. */
export function openFd(path: string, flags: string, mode?: number): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

/** Closes a descriptor that was never handed to `writeWithFd`. */
export function closeFd(fd: number): void {
  close(fd, () => undefined);
}
