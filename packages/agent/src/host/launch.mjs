// Starting a long-lived process (a VMM) the way the agent wants it: shared by the command helper (spawner-child.mjs)
// and the in-process fallback (exec.ts). Plain JavaScript, so the helper stays a small process without a loader.
import { spawn } from 'node:child_process';
import { closeSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

// A listening unix socket at `path`, bound under a temporary name and renamed into place: closing our copy later
// unlinks the name it was bound to (libuv does), which by then is gone, so the socket stays for the process we hand it.
function listenAt(path) {
  const tmp = `${path}.bind`;
  rmSync(tmp, { force: true });
  rmSync(path, { force: true });
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(tmp, () => {
      try {
        renameSync(tmp, path);
        resolve(server);
      } catch (e) {
        server.close();
        reject(e);
      }
    });
  });
}

/**
 * Spawns `cmd` with its stdio on files opened here, the sockets of `listen` bound here and passed listening as
 * fds 3, 4, …, as `uid`/`gid` (no supplementary groups) and inside `cgroups` from its first instruction: this process
 * joins them for the synchronous fork and goes back home right after. Resolves with the ChildProcess once spawned.
 */
export async function launchProcess({ cmd, args, stdio, detached, cwd, env, uid, gid, cgroups = [], listen = [] }) {
  const servers = [];
  const files = [];
  try {
    for (const path of listen) servers.push(await listenAt(path));
    for (const s of stdio) files.push(s === 'ignore' ? 'ignore' : openSync(s.path, s.flags));
    const fds = [...files, ...servers.map((server) => server._handle.fd)];
    const me = String(process.pid);
    let child;
    try {
      for (const cg of cgroups) writeFileSync(cg.procs, me);
      child = spawn(cmd, args, { detached, stdio: fds, cwd, env, uid, gid, shell: false });
    } finally {
      for (const cg of cgroups) {
        try {
          writeFileSync(cg.home, me);
        } catch {
          // Left in the VM's cgroup only if home vanished; nothing else to go back to.
        }
      }
    }
    await new Promise((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return child;
  } finally {
    for (const fd of files) if (typeof fd === 'number') closeSync(fd);
    for (const server of servers) server.close();
  }
}
