/**
 * The per-runtime bootstrap the runner starts as the handler process: it imports the handler, says `ready` on fd 4,
 * waits for the event on fd 3 (until EOF), calls the handler and writes one `result` line on fd 4. Every message
 * is one JSON line: {kind:'ready'} | {kind:'load_failed', error} | {kind:'result', ok, value?, error?, reason?}.
 * The code is imported before the event arrives, so a VM snapshotted while it waits resumes warm.
 */

export const NODE_BOOTSTRAP = String.raw`'use strict';
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const [dir, file, name] = process.argv.slice(2);
const send = (m) => {
  const b = Buffer.from(JSON.stringify(m) + '\n');
  for (let off = 0; off < b.length; ) off += fs.writeSync(4, b, off);
};
const errorOf = (e) => ({
  type: String((e && e.constructor && e.constructor.name) || typeof e),
  message: String(e && e.message !== undefined ? e.message : e),
  stack: String((e && e.stack) || ''),
});
(async () => {
  let fn;
  try {
    const base = path.join(dir, file);
    const found = ['.js', '.mjs', '.cjs'].map((x) => base + x).find((f) => fs.existsSync(f));
    if (!found) throw new Error('no ' + file + '.js, .mjs or .cjs among the files');
    const mod = await import(pathToFileURL(found).href);
    fn = typeof mod[name] === 'function' ? mod[name] : mod.default && mod.default[name];
    if (typeof fn !== 'function') throw new Error(file + ' exports no function ' + name);
  } catch (e) {
    send({ kind: 'load_failed', error: errorOf(e) });
    process.exit(0);
  }
  send({ kind: 'ready' });
  const chunks = [];
  const input = new net.Socket({ fd: 3, readable: true, writable: false });
  for await (const c of input) chunks.push(c);
  const { event, timeout_ms } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const deadline = Date.now() + timeout_ms;
  const context = { getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
  let msg;
  try {
    const value = await fn(event, context);
    msg = JSON.stringify({ kind: 'result', ok: true, value: value === undefined ? null : value });
  } catch (e) {
    msg = JSON.stringify({ kind: 'result', ok: false, error: errorOf(e) });
  }
  const b = Buffer.from(msg + '\n');
  for (let off = 0; off < b.length; ) off += fs.writeSync(4, b, off);
  process.exit(0);
})().catch((e) => {
  send({ kind: 'result', ok: false, error: errorOf(e) });
  process.exit(0);
});
`;

export const PYTHON_BOOTSTRAP = String.raw`import importlib, json, os, sys, traceback
directory, module, name, as_limit = sys.argv[1:5]
def send(m):
    b = (json.dumps(m) + '\n').encode('utf-8')
    while b:
        b = b[os.write(4, b):]
def error_of(e):
    return {'type': type(e).__name__, 'message': str(e), 'stack': ''.join(traceback.format_exception(type(e), e, e.__traceback__))}
if int(as_limit) > 0:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (int(as_limit), int(as_limit)))
sys.path.insert(0, directory)
try:
    fn = getattr(importlib.import_module(module.replace('/', '.')), name, None)
    if not callable(fn):
        raise AttributeError(module + ' has no function ' + name)
except BaseException as e:
    send({'kind': 'load_failed', 'error': error_of(e)})
    os._exit(0)
send({'kind': 'ready'})
chunks = []
while True:
    c = os.read(3, 65536)
    if not c:
        break
    chunks.append(c)
request = json.loads(b''.join(chunks).decode('utf-8'))
event = request['event']
import time
deadline = time.monotonic() + request['timeout_ms'] / 1000
class Context:
    def get_remaining_time_in_millis(self):
        return max(0, int((deadline - time.monotonic()) * 1000))
try:
    argc = getattr(getattr(fn, '__code__', None), 'co_argcount', 2)
    value = fn(event) if argc == 1 else fn(event, Context())
    msg = json.dumps({'kind': 'result', 'ok': True, 'value': value})
except MemoryError as e:
    msg = json.dumps({'kind': 'result', 'ok': False, 'error': error_of(e), 'reason': 'out_of_memory'})
except BaseException as e:
    msg = json.dumps({'kind': 'result', 'ok': False, 'error': error_of(e)})
sys.stdout.flush()
sys.stderr.flush()
b = (msg + '\n').encode('utf-8')
while b:
    b = b[os.write(4, b):]
os._exit(0)
`;
