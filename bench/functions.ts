/**
 * Functions benchmark (issue 14): a hello-world node20 function, cold invocations (a VM booted and the code loaded
 * for the call) against warm ones (restored from the version's warm snapshot, or taken from the paused pool), each
 * timed from the invoke call to its answer; p50 and p95 over N calls each (BENCH_N, default 20), and the ratio
 * warm p50 / cold p50 (target ≤ 0.1). A cold call is forced by a code change (a new version whose snapshot is not
 * built yet); the bench then waits for that version's snapshot, so builds never overlap a timed call. The machine's
 * load average is printed with the figures: under TCG they scale with it.
 *
 *   unshare -n sh -c 'ip link set lo up && npx tsx bench/functions.ts'
 */
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { api, type FunctionResource, type Invocation, NqvmClient } from '@nqvm/api';
import { runtimeImagePath } from '../scripts/build-runtime-images.ts';
import { startStack, until } from '../test/e2e/support/stack.ts';

const N = Number(process.env.BENCH_N ?? 20);
const rootfs = runtimeImagePath('node20');
const stack = await startStack({
  cidr: '10.249.0.0/24',
  bridge: 'nqbr-fbench',
  agentPort: 19193,
  env: { MANAGER_IMAGE_ROOT: path.dirname(path.dirname(rootfs)), MANAGER_ALLOW_IMAGE_PATHS: 'true' },
});
const client = new NqvmClient({ baseUrl: stack.base, token: stack.token });
await client.call(api.images.create, {
  body: { name: 'runtime-node20', kind: 'rootfs', source: { type: 'path', path: rootfs } },
});

const code = (n: number) => `exports.handler = async (event) => ({ hello: event.name, n: ${n} });\n`;
let fn: FunctionResource = await client.call(api.functions.create, {
  body: { name: 'bench-hello', runtime: 'node20', code: code(0), network: true },
});

async function invoke(): Promise<{ ms: number; inv: Invocation }> {
  const t = performance.now();
  const inv = await client.call(api.functions.invoke, {
    params: { id: fn.id },
    body: { event: { name: 'bench' } },
    timeoutMs: 600_000,
  });
  if (inv.state !== 'succeeded') throw new Error(`invocation ${inv.state}: ${JSON.stringify(inv.error)}`);
  return { ms: performance.now() - t, inv };
}

const snapshotReady = () =>
  until(
    `version ${fn.version}'s warm snapshot`,
    async () => {
      const v = (await client.call(api.functions.versions, { params: { id: fn.id } })).items.find(
        (x) => x.version === fn.version,
      );
      if (v?.snapshot_state === 'failed') throw new Error('the warm snapshot build failed');
      return v?.snapshot_state === 'ready';
    },
    600_000,
  );

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};
const line = (label: string, xs: number[]) =>
  `${label.padEnd(6)} p50 ${pct(xs, 50).toFixed(0)} ms, p95 ${pct(xs, 95).toFixed(0)} ms (n=${xs.length}, min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

const cold: number[] = [];
const warm: number[] = [];
const starts: Record<string, number> = {};
let failed = 0;
try {
  for (let i = 0; i < N; i++) {
    if (i > 0) fn = await client.call(api.functions.update, { params: { id: fn.id }, body: { code: code(i) } });
    const { ms, inv } = await invoke();
    if (inv.start !== 'cold') throw new Error(`expected a cold start, got ${inv.start}`);
    cold.push(ms);
    process.stderr.write(`cold ${i + 1}/${N}: ${ms.toFixed(0)} ms\n`);
    await snapshotReady();
  }
  for (let i = 0; i < N; i++) {
    // A restore that fails is counted and shown, not timed: the figures say how many there were.
    const got = await invoke().catch((err: Error) => err);
    if (got instanceof Error) {
      failed++;
      process.stderr.write(`warm ${i + 1}/${N}: FAILED ${got.message}\n`);
      continue;
    }
    const { ms, inv } = got;
    if (inv.start === 'cold') throw new Error('a warm call started cold');
    starts[inv.start ?? '?'] = (starts[inv.start ?? '?'] ?? 0) + 1;
    warm.push(ms);
    process.stderr.write(`warm ${i + 1}/${N}: ${ms.toFixed(0)} ms (${inv.start})\n`);
  }
  const ratio = pct(warm, 50) / pct(cold, 50);
  process.stdout.write(
    [
      `functions bench, node20 hello world, ${cpus().length} CPUs, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
      line('cold', cold),
      `${line('warm', warm)}; starts ${JSON.stringify(starts)}; failed ${failed}`,
      `warm p50 / cold p50 = ${ratio.toFixed(3)} (target ≤ 0.1: ${ratio <= 0.1 ? 'met' : 'missed'})`,
      '',
    ].join('\n'),
  );
} finally {
  await client.call(api.functions.delete, { params: { id: fn.id } }).catch(() => undefined);
  await stack.close();
}
