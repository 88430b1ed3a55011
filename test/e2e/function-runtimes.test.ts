import { existsSync } from 'node:fs';
import path from 'node:path';
import type { FunctionInvokeResult, FunctionLoadRequest, FunctionRuntime } from '@nqvm/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient, type AgentTarget, HttpAgentApi } from '../../packages/manager/src/features/vms/agent-client.ts';
import { RUNTIME_BUILD_HINT, RUNTIMES, runtimeImagePath } from '../../scripts/build-runtime-images.ts';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack, until } from './support/stack.ts';

interface Vm {
  id: string;
  host_id: string | null;
  guest_ready_at: string | null;
}

let s: Stack;
let agent: HttpAgentApi;
let target: AgentTarget;
const vms: Partial<Record<FunctionRuntime, Vm>> = {};
const MEM_MIB = 256;

/** Boots a VM of the runtime's rootfs image (registered as `runtime-<runtime>`) and waits for its guest agent. */
async function bootRuntime(runtime: FunctionRuntime): Promise<Vm> {
  const img = await s.api<{ id: string }>('POST', '/v1/images', {
    name: `runtime-${runtime}`,
    kind: 'rootfs',
    source: { type: 'path', path: runtimeImagePath(runtime) },
  });
  expect(img.status, JSON.stringify(img.body)).toBe(201);
  const created = await s.api<Vm>('POST', '/v1/vms', {
    name: `fn-${runtime}`,
    vcpu: 1,
    mem_mib: MEM_MIB,
    kernel_image_id: s.images.kernel,
    initrd_image_id: s.images.initrd,
    rootfs_image_id: img.body.id,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  return until(
    `the ${runtime} guest to report ready`,
    async () => {
      const r = (await s.api<Vm>('GET', `/v1/vms/${created.body.id}`)).body;
      return r.guest_ready_at ? r : undefined;
    },
    300_000,
  ).catch(async (err) => {
    throw new Error(`${err}\nconsole tail:\n${(await s.consoleText(created.body.id)).slice(-3000)}`);
  });
}

// One stack, both runtime VMs booted at once; every case loads and invokes again in the same VM.
beforeAll(async () => {
  for (const r of RUNTIMES)
    if (!existsSync(runtimeImagePath(r)))
      throw new Error(`the ${r} runtime image is missing (${runtimeImagePath(r)}); ${RUNTIME_BUILD_HINT}`);
  s = await startStack({
    ...TEST_NETWORKS.functionRuntimes,
    env: {
      MANAGER_IMAGE_ROOT: path.dirname(path.dirname(runtimeImagePath('node20'))),
      MANAGER_ALLOW_IMAGE_PATHS: 'true',
    },
  });
  // The manager's own typed client: manager → host agent (mutual TLS) → guest agent → handler process.
  agent = new HttpAgentApi(new AgentClient({ tls: (hostId) => s.manager.services.pki.agentTls(hostId) }));
  const [node, python] = await Promise.all(RUNTIMES.map(bootRuntime));
  vms.node20 = node;
  vms.python3 = python;
  target = await s.manager.services.vms.agentTarget(node?.host_id ?? '');
}, 600_000);
afterAll(async () => s?.close());

const figures: string[] = [];
afterAll(() => process.stderr.write(`[function-runtimes] ${figures.join('; ')}\n`));

async function run(
  runtime: FunctionRuntime,
  files: Record<string, string>,
  o: { event?: unknown; env?: Record<string, string>; timeout?: number; limit?: number; label?: string } = {},
): Promise<FunctionInvokeResult> {
  const vm = vms[runtime]!;
  const body: FunctionLoadRequest = {
    runtime,
    handler: runtime === 'node20' ? 'index.handler' : 'main.handler',
    files,
    env: o.env ?? {},
  };
  const loaded = await agent.functionLoad(target, vm.id, body);
  const started = performance.now();
  const res = await agent.functionInvoke(target, vm.id, {
    event: o.event ?? {},
    timeout_ms: o.timeout ?? 20_000,
    output_limit_bytes: o.limit ?? 65536,
  });
  if (o.label)
    figures.push(
      `${runtime} ${o.label}: load ${loaded.load_ms} ms, invoke ${res.duration_ms} ms in the guest, ${Math.round(performance.now() - started)} ms through the manager's client`,
    );
  return res;
}

const NODE = {
  hello:
    "const os = require('node:os');\nexports.handler = async (event) => {\n  console.log('hello', event.name);\n  console.error('to stderr');\n  return { greeting: 'hi ' + event.name, secret: process.env.API_KEY, host: os.hostname().length > 0 };\n};\n",
  throws: "function inner() { throw new RangeError('out of range'); }\nexports.handler = async () => inner();\n",
  sleeps: "exports.handler = () => new Promise((r) => { console.log('started'); setTimeout(r, 60000); });\n",
  hog: 'exports.handler = () => { const a = []; for (;;) a.push(new Array(1e6).fill(1.5)); };\n',
  loud: "exports.handler = () => { process.stdout.write('x'.repeat(10000)); return 'ok'; };\n",
  big: "exports.handler = () => 'y'.repeat(10000);\n",
};
const PYTHON = {
  hello:
    'import os, sys\ndef handler(event, context):\n    print("hello", event["name"])\n    print("to stderr", file=sys.stderr)\n    return {"greeting": "hi " + event["name"], "secret": os.environ["API_KEY"], "left": context.get_remaining_time_in_millis() > 0}\n',
  throws: 'def inner():\n    raise KeyError("missing")\ndef handler(event, context):\n    return inner()\n',
  sleeps: 'import time\ndef handler(event, context):\n    print("started")\n    time.sleep(60)\n',
  hog: 'def handler(event, context):\n    chunks = []\n    while True:\n        chunks.append(bytearray(16 * 2**20))\n',
  loud: 'def handler(event, context):\n    print("x" * 10000)\n    return "ok"\n',
  big: 'def handler(event, context):\n    return "y" * 10000\n',
};

const FILE = { node20: 'index.js', python3: 'main.py' } as const;
const CODE = { node20: NODE, python3: PYTHON } as const;
/** Each case runs in both runtime VMs at once (each VM runs its cases one after another). */
async function both(f: (runtime: FunctionRuntime, code: typeof NODE, file: string) => Promise<void>): Promise<void> {
  // Settled, not raced: a failure in one VM must not leave the other's invocation running into the next case.
  const settled = await Promise.allSettled(RUNTIMES.map((r) => f(r, CODE[r], FILE[r])));
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
}

describe('node20 and python3 runtimes in real microVMs', () => {
  it('return the value with stdout, stderr and the environment (cold load, then invoke)', () =>
    both(async (runtime, code, file) => {
      const res = await run(
        runtime,
        { [file]: code.hello },
        { event: { name: 'ada' }, env: { API_KEY: 's3cret' }, label: 'hello' },
      );
      expect(res.status, JSON.stringify(res)).toBe('succeeded');
      expect(res.value).toMatchObject({ greeting: 'hi ada', secret: 's3cret' });
      expect(res.stdout).toBe('hello ada\n');
      expect(res.stderr).toBe('to stderr\n');
      // Loaded once more and run again: each invocation had its own process.
      const again = await run(
        runtime,
        { [file]: code.hello },
        { event: { name: 'bob' }, env: { API_KEY: 'k' }, label: 'again' },
      );
      expect(again.value).toMatchObject({ greeting: 'hi bob', secret: 'k' });
    }));

  it('report an exception with its stack trace', () =>
    both(async (runtime, code, file) => {
      const res = await run(runtime, { [file]: code.throws });
      expect(res.status).toBe('failed');
      expect(res.error).toMatchObject({ type: runtime === 'node20' ? 'RangeError' : 'KeyError', reason: 'exception' });
      expect(res.error?.stack).toMatch(
        runtime === 'node20' ? /inner[\s\S]*index\.js:1/ : /Traceback[\s\S]*main\.py", line 2, in inner/,
      );
    }));

  it('kill a handler at its timeout', () =>
    both(async (runtime, code, file) => {
      // Long enough for the handler to print first on a loaded TCG host; it then sleeps 60 s and is killed.
      const res = await run(runtime, { [file]: code.sleeps }, { timeout: 5000 });
      expect(res).toMatchObject({ status: 'timed_out', stdout: 'started\n' });
      expect(res.duration_ms).toBeGreaterThanOrEqual(5000);
      expect(res.duration_ms).toBeLessThan(60_000);
    }));

  it('end a handler past its memory limit as out_of_memory', () =>
    both(async (runtime, code, file) => {
      const res = await run(runtime, { [file]: code.hog }, { timeout: 120_000, label: 'out of memory' });
      expect(res.status, JSON.stringify(res.error)).toBe('failed');
      expect(res.error?.reason).toBe('out_of_memory');
    }));

  it('cap stdout at the output limit and refuse a larger value', () =>
    both(async (runtime, code, file) => {
      const loud = await run(runtime, { [file]: code.loud }, { limit: 4096 });
      expect(loud).toMatchObject({ status: 'succeeded', value: 'ok', stdout_truncated: true });
      expect(loud.stdout).toHaveLength(4096);
      const big = await run(runtime, { [file]: code.big }, { limit: 4096 });
      expect(big).toMatchObject({ status: 'failed', error: { reason: 'output_too_large' } });
    }));
});

describe('function runner refusals through the host agent', () => {
  it('answers function_not_loaded after the one invocation, and refuses a path outside the code', async () => {
    const vm = vms.python3!;
    await expect(
      agent.functionInvoke(target, vm.id, { event: {}, timeout_ms: 1000, output_limit_bytes: 4096 }),
    ).rejects.toMatchObject({ status: 409, code: 'function_not_loaded' });
    await expect(
      agent.functionLoad(target, vm.id, {
        runtime: 'python3',
        handler: 'main.handler',
        files: { '../x.py': '' },
        env: {},
      }),
    ).rejects.toMatchObject({ status: 400, code: 'validation_failed' });
  });
});
