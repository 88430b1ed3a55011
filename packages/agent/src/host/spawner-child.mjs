// The agent's command helper: a small process that starts processes for the agent (see spawner.ts). fork() copies
// the caller's page tables, so spawning from this ~40 MB process costs a fraction of spawning from the agent.
import { spawn } from 'node:child_process';
import { launchProcess } from './launch.mjs';

const errorOf = (e) => ({ message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path });

function reply(message) {
  if (process.connected) process.send(message);
}

// A command to completion: exit code and output.
function run({ id, cmd, args, input, timeoutMs, cwd, env }) {
  // 'close' follows 'error' when a command cannot start; the first of them answers.
  let answered = false;
  const answer = (message) => {
    if (answered) return;
    answered = true;
    reply(message);
  };
  const out = [];
  const err = [];
  let timer;
  let child;
  try {
    child = spawn(cmd, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], shell: false });
  } catch (e) {
    answer({ id, error: errorOf(e) });
    return;
  }
  if (timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  child.stdout.on('data', (b) => out.push(b));
  child.stderr.on('data', (b) => err.push(b));
  child.stdin.on('error', () => undefined);
  child.on('error', (e) => {
    if (timer) clearTimeout(timer);
    answer({ id, error: errorOf(e) });
  });
  child.on('close', (code, signal) => {
    if (timer) clearTimeout(timer);
    answer({
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

// A long-lived process (a VMM) started by launchProcess: answers with its pid, and says when it exits.
async function launch({ id, ...opts }) {
  let child;
  try {
    child = await launchProcess(opts);
  } catch (e) {
    reply({ id, error: errorOf(e) });
    return;
  }
  reply({ id, pid: child.pid });
  child.once('exit', (code, signal) => {
    reply({ exited: id, how: signal ? `killed by ${signal}` : `exited with code ${code}` });
  });
  child.unref();
}

process.on('message', (m) => (m.op === 'launch' ? launch(m) : run(m)));
// The agent went away: nothing is left to answer to. Launched processes live on in their own sessions.
process.on('disconnect', () => process.exit(0));
