// The agent's command helper: a small process that runs commands for the agent (see spawner.ts). fork() copies
// the caller's page tables, so spawning from this ~40 MB process costs a fraction of spawning from the agent.
import { spawn } from 'node:child_process';

function run({ id, cmd, args, input, timeoutMs, cwd, env }) {
  // 'close' follows 'error' when a command cannot start; the first of them answers.
  let answered = false;
  const send = (message) => {
    if (answered || !process.connected) return;
    answered = true;
    process.send(message);
  };
  const out = [];
  const err = [];
  let timer;
  let child;
  try {
    child = spawn(cmd, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], shell: false });
  } catch (e) {
    send({ id, error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path } });
    return;
  }
  if (timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  child.stdout.on('data', (b) => out.push(b));
  child.stderr.on('data', (b) => err.push(b));
  child.stdin.on('error', () => undefined);
  child.on('error', (e) => {
    if (timer) clearTimeout(timer);
    send({ id, error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path } });
  });
  child.on('close', (code, signal) => {
    if (timer) clearTimeout(timer);
    send({
      id,
      result: {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      },
    });
  });
  if (input !== undefined) child.stdin.end(typeof input === 'string' ? input : Buffer.from(input));
  else child.stdin.end();
}

process.on('message', run);
// The agent went away: nothing is left to answer to.
process.on('disconnect', () => process.exit(0));
