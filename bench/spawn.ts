/**
 * Command spawning benchmark: the agent runs `ip`, `nft`, `tc`, `debugfs` and `cp` for every VM. fork() copies the
 * caller's page tables, so a direct spawn from a big process costs more and blocks its event loop meanwhile.
 * Compares a direct spawn with the agent's command helper (host/spawner.ts), at the process's own size and with
 * ballast that makes it as big as a manager + agent process, alternating rounds so both see the same noise.
 *
 *   npx tsx bench/spawn.ts
 *
 * Prints figures only.
 */
import { directLauncher, directRunner } from '../packages/agent/src/host/exec.ts';
import { SpawnerRunner } from '../packages/agent/src/host/spawner.ts';

const ROUNDS = 5;
const PER_ROUND = 10;
const helper = new SpawnerRunner(directRunner, directLauncher);

async function round(run: typeof directRunner): Promise<{ wall: number[]; stall: number }> {
  const wall: number[] = [];
  let stall = 0;
  for (let i = 0; i < PER_ROUND; i++) {
    // The longest gap between timer ticks while the command runs: how long the event loop could not serve anything.
    let last = performance.now();
    let worst = 0;
    const tick = setInterval(() => {
      const t = performance.now();
      worst = Math.max(worst, t - last);
      last = t;
    }, 1);
    const t0 = performance.now();
    const r = await run.run('ip', ['-j', 'link', 'show', 'dev', 'lo']);
    wall.push(performance.now() - t0);
    clearInterval(tick);
    stall = Math.max(stall, worst);
    if (r.code !== 0) throw new Error(`ip exited ${r.code}: ${r.stderr}`);
  }
  return { wall, stall };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const ballast: Buffer[] = [];

for (const extraMb of [0, 600]) {
  while (ballast.length * 50 < extraMb) ballast.push(Buffer.alloc(50 * 1024 * 1024, 1));
  const direct: number[] = [];
  const viaHelper: number[] = [];
  let directStall = 0;
  let helperStall = 0;
  await round(helper); // starts the helper outside the measurement
  for (let r = 0; r < ROUNDS; r++) {
    const d = await round(directRunner);
    const h = await round(helper);
    direct.push(...d.wall);
    viaHelper.push(...h.wall);
    directStall = Math.max(directStall, d.stall);
    helperStall = Math.max(helperStall, h.stall);
  }
  const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
  console.log(
    `rss ${String(rss).padStart(5)} MiB  direct spawn median ${median(direct).toFixed(1)} ms (worst loop stall ${directStall.toFixed(0)} ms)` +
      `  helper median ${median(viaHelper).toFixed(1)} ms (worst loop stall ${helperStall.toFixed(0)} ms)` +
      `  ratio ${(median(viaHelper) / median(direct)).toFixed(2)}`,
  );
}
helper.close();
