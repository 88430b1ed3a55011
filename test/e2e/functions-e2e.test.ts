import { existsSync } from 'node:fs';
import path from 'node:path';
import { api, type FunctionResource, type Invocation, NqvmClient } from '@nqvm/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNTIME_BUILD_HINT, runtimeImagePath } from '../../scripts/build-runtime-images.ts';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack, until } from './support/stack.ts';

/** Boots and restores under TCG on a loaded machine: generous, but every wait ends on a real condition. */
const INVOKE_MS = 300_000;

const CODE = `const os = require('node:os');
exports.handler = async (event) => {
  console.log('hello', event.name);
  if (event.fail) inner();
  return { greeting: 'hi ' + event.name, nics: Object.keys(os.networkInterfaces()) };
};
function inner() { throw new TypeError('bad ' + 'input'); }
`;

let s: Stack;
let client: NqvmClient;
let fn: FunctionResource;

beforeAll(async () => {
  const rootfs = runtimeImagePath('node20');
  if (!existsSync(rootfs)) throw new Error(`the node20 runtime image is missing (${rootfs}); ${RUNTIME_BUILD_HINT}`);
  s = await startStack({
    ...TEST_NETWORKS.functionsE2e,
    env: { MANAGER_IMAGE_ROOT: path.dirname(path.dirname(rootfs)), MANAGER_ALLOW_IMAGE_PATHS: 'true' },
  });
  client = new NqvmClient({ baseUrl: s.base, token: s.token });
  // The runner finds the runtime by its image name, the kernel and initrd by NQVM_FUNCTION_KERNEL/_INITRD
  // (demo-kernel, demo-initrd: what the stack uploaded).
  await client.call(api.images.create, {
    body: { name: 'runtime-node20', kind: 'rootfs', source: { type: 'path', path: rootfs } },
  });
}, 300_000);
afterAll(async () => s?.close());

const invoke = (event: unknown): Promise<Invocation> =>
  client.call(api.functions.invoke, { params: { id: fn.id }, body: { event }, timeoutMs: INVOKE_MS });

describe('a node20 function in real microVMs', () => {
  it(
    'runs cold first: value and stdout',
    async () => {
      fn = await client.call(api.functions.create, {
        body: { name: 'hello', runtime: 'node20', code: CODE, network: true },
      });
      expect(fn).toMatchObject({ version: 1, network: true, handler: 'index.handler' });
      const inv = await invoke({ name: 'ada' });
      expect(inv, JSON.stringify(inv)).toMatchObject({
        state: 'succeeded',
        start: 'cold',
        stdout: 'hello ada\n',
        value: { greeting: 'hi ada', nics: ['lo', 'eth0'] },
      });
      expect(inv.duration_ms).toBeGreaterThanOrEqual(0);
    },
    INVOKE_MS,
  );

  it(
    'restores the version snapshot for the next invocation, and returns an exception with its stack',
    async () => {
      await until(
        'the version 1 warm snapshot',
        async () => {
          const v = (await client.call(api.functions.versions, { params: { id: fn.id } })).items[0];
          if (v?.snapshot_state === 'failed') throw new Error('the warm snapshot build failed');
          return v?.snapshot_state === 'ready';
        },
        INVOKE_MS,
      );
      const failed = await invoke({ name: 'bob', fail: true });
      expect(failed, JSON.stringify(failed)).toMatchObject({
        state: 'failed',
        stdout: 'hello bob\n',
        error: { type: 'TypeError', message: 'bad input', reason: 'exception' },
      });
      expect(['warm', 'pool']).toContain(failed.start);
      expect(failed.error?.stack).toMatch(/inner[\s\S]*index\.js:7/);
      const again = await invoke({ name: 'cy' });
      expect(again, JSON.stringify(again)).toMatchObject({
        state: 'succeeded',
        value: { greeting: 'hi cy', nics: ['lo', 'eth0'] },
      });
      expect(['warm', 'pool']).toContain(again.start);
      process.stderr.write(
        `[functions-e2e] total ms: ${failed.start} ${failed.total_ms}, ${again.start} ${again.total_ms}\n`,
      );
    },
    2 * INVOKE_MS,
  );

  it('refuses at once to run with the network off (no channel to the runner without a NIC yet)', async () => {
    const off = await client.call(api.functions.create, { body: { name: 'offline', runtime: 'node20', code: CODE } });
    expect(off.network).toBe(false);
    const inv = await client.call(api.functions.invoke, { params: { id: off.id }, body: { event: { name: 'x' } } });
    expect(inv).toMatchObject({
      state: 'failed',
      error: { reason: 'runtime', message: expect.stringMatching(/network off/) },
    });
  });
});
