import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInvoke, parseLoad } from '../../src/function-request.ts';
import { FunctionRunner, type InvokeResult, RunnerRefused } from '../../src/function-runner.ts';

/**
 * The in-guest runner on this machine's own node and python3 (the same bootstraps a runtime VM runs), as the
 * unprivileged user a guest runs handlers as: values, output, exceptions, timeouts, memory limits, env, caps.
 */
let root = '';
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'nqvm-runner-'));
  await chmod(root, 0o755);
});
afterAll(async () => rm(root, { recursive: true, force: true }));

let n = 0;
function runner(memMib = 256): FunctionRunner {
  return new FunctionRunner({
    workDir: path.join(root, `fn-${n++}`),
    commands: { node20: [process.execPath], python3: ['python3', '-u'] },
    memTotalBytes: async () => memMib * 1024 * 1024,
    ...(process.getuid?.() === 0 ? { user: { uid: 65534, gid: 65534 } } : {}),
  });
}

async function run(
  runtime: 'node20' | 'python3',
  files: Record<string, string>,
  event: unknown = {},
  o: { handler?: string; env?: Record<string, string>; timeout?: number; limit?: number; memMib?: number } = {},
): Promise<InvokeResult> {
  const r = runner(o.memMib);
  const handler = o.handler ?? (runtime === 'node20' ? 'index.handler' : 'main.handler');
  const loaded = await r.load(parseLoad({ runtime, handler, files, env: o.env ?? {} }));
  expect(loaded.loaded).toBe(true);
  return r.invoke(parseInvoke({ event, timeout_ms: o.timeout ?? 10_000, output_limit_bytes: o.limit ?? 65536 }));
}

describe('function runner: node20', () => {
  it('returns the async handler value and its stdout/stderr; the process is gone afterwards', async () => {
    const r = runner();
    const files = {
      'index.js':
        "const { twice } = require('./lib/math.js');\nexports.handler = async (event) => { console.log('got', event.n); console.error('warn'); return { n: twice(event.n) }; };",
      'lib/math.js': 'exports.twice = (x) => x * 2;',
    };
    await r.load(parseLoad({ runtime: 'node20', handler: 'index.handler', files, env: {} }));
    const res = await r.invoke(parseInvoke({ event: { n: 21 }, timeout_ms: 5000, output_limit_bytes: 4096 }));
    expect(res).toMatchObject({ status: 'succeeded', value: { n: 42 }, stdout: 'got 21\n', stderr: 'warn\n' });
    expect(res.duration_ms).toBeGreaterThanOrEqual(0);
    await expect(r.invoke(parseInvoke({ event: {}, timeout_ms: 5000, output_limit_bytes: 4096 }))).rejects.toThrow(
      RunnerRefused,
    );
  });

  it('ESM handlers, env and an exception with its stack', async () => {
    const esm = await run(
      'node20',
      { 'app.mjs': 'export const main = () => process.env.GREETING;' },
      {},
      {
        handler: 'app.main',
        env: { GREETING: 'hello' },
      },
    );
    expect(esm).toMatchObject({ status: 'succeeded', value: 'hello' });
    const thrown = await run('node20', {
      'index.js': 'exports.handler = async () => { throw new TypeError("bad input"); };',
    });
    expect(thrown.status).toBe('failed');
    expect(thrown.error).toMatchObject({ type: 'TypeError', message: 'bad input', reason: 'exception' });
    expect(thrown.error?.stack).toMatch(/index\.js:1/);
  });

  it('kills a handler past its timeout, and one past its heap limit is out_of_memory', async () => {
    const slow = await run(
      'node20',
      {
        'index.js':
          'exports.handler = () => new Promise(() => { console.log("waiting"); setInterval(() => {}, 1000); });',
      },
      {},
      { timeout: 300 },
    );
    expect(slow).toMatchObject({ status: 'timed_out', stdout: 'waiting\n' });
    const hog = await run(
      'node20',
      { 'index.js': 'exports.handler = () => { const a = []; for (;;) a.push(new Array(1e6).fill(1.5)); };' },
      {},
      { memMib: 128, timeout: 60_000 },
    );
    expect(hog.status).toBe('failed');
    expect(hog.error?.reason).toBe('out_of_memory');
  }, 90_000);

  it('caps stdout and refuses a value over the output limit', async () => {
    const loud = await run(
      'node20',
      { 'index.js': 'exports.handler = () => { process.stdout.write("x".repeat(5000)); return 1; };' },
      {},
      { limit: 1024 },
    );
    expect(loud).toMatchObject({ status: 'succeeded', value: 1, stdout_truncated: true });
    expect(loud.stdout).toHaveLength(1024);
    const big = await run('node20', { 'index.js': 'exports.handler = () => "y".repeat(100000);' }, {}, { limit: 1024 });
    expect(big).toMatchObject({ status: 'failed', error: { reason: 'output_too_large' } });
  });

  it('a handler that cannot load is refused with its error', async () => {
    const r = runner();
    const err = await r
      .load(
        parseLoad({ runtime: 'node20', handler: 'index.handler', files: { 'index.js': 'this is not js' }, env: {} }),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunnerRefused);
    expect(err).toMatchObject({ status: 422, code: 'function_load_failed', error: { type: 'SyntaxError' } });
    const missing = await r
      .load(parseLoad({ runtime: 'node20', handler: 'index.nope', files: { 'index.js': 'exports.x = 1' }, env: {} }))
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'function_load_failed' });
  });
});

describe('function runner: python3', () => {
  it('returns the value, stdout, env and a traceback', async () => {
    const ok = await run(
      'python3',
      {
        'main.py':
          'import os\nfrom pkg.util import twice\ndef handler(event, context):\n    print("got", event["n"])\n    return {"n": twice(event["n"]), "env": os.environ["COLOR"]}\n',
        'pkg/__init__.py': '',
        'pkg/util.py': 'def twice(x):\n    return 2 * x\n',
      },
      { n: 4 },
      { env: { COLOR: 'blue' } },
    );
    expect(ok).toMatchObject({ status: 'succeeded', value: { n: 8, env: 'blue' }, stdout: 'got 4\n' });
    const thrown = await run('python3', { 'main.py': 'def handler(event):\n    raise ValueError("nope")\n' });
    expect(thrown.error).toMatchObject({ type: 'ValueError', message: 'nope', reason: 'exception' });
    expect(thrown.error?.stack).toMatch(/Traceback[\s\S]*main\.py", line 2/);
  });

  it('timeout, memory limit and output cap', async () => {
    const slow = await run(
      'python3',
      { 'main.py': 'import time\ndef handler(e, c):\n    print("sleeping")\n    time.sleep(30)\n' },
      {},
      { timeout: 300 },
    );
    expect(slow).toMatchObject({ status: 'timed_out', stdout: 'sleeping\n' });
    const hog = await run(
      'python3',
      { 'main.py': 'def handler(e, c):\n    x = []\n    while True:\n        x.append(bytearray(16 * 2**20))\n' },
      {},
      { memMib: 128 },
    );
    expect(hog).toMatchObject({ status: 'failed', error: { type: 'MemoryError', reason: 'out_of_memory' } });
    const loud = await run(
      'python3',
      { 'main.py': 'def handler(e, c):\n    print("z" * 5000)\n    return "x" * 5000\n' },
      {},
      { limit: 1024 },
    );
    expect(loud).toMatchObject({ status: 'failed', stdout_truncated: true, error: { reason: 'output_too_large' } });
  });
});
