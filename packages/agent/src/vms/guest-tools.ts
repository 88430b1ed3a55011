import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandRunner } from '../host/exec.ts';
import { buildGuestToolsImage, buildNodeRuntime } from '../rootfs/index.ts';

/**
 * The per-host read-only guest tools drive (bundled guest agent + node runtime), built once under
 * `<dir>/tools-<hash>.ext4` and reused by every VM until the agent bundle or node binary changes.
 */
export class GuestTools {
  private building: Promise<string> | undefined;

  constructor(
    private readonly dir: string,
    private readonly runner: CommandRunner,
  ) {}

  image(): Promise<string> {
    this.building ??= this.build().catch((e) => {
      this.building = undefined;
      throw e;
    });
    return this.building;
  }

  private async build(): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const bundle = { outFile: await guestAgentBundle(this.dir) };
    const runtime = await buildNodeRuntime(this.runner, { cacheDir: this.dir });
    const key = createHash('sha256')
      .update(await readFile(bundle.outFile))
      .update(runtime.dir)
      .digest('hex')
      .slice(0, 16);
    const out = join(this.dir, `tools-${key}.ext4`);
    if (
      await stat(out).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return out;
    await buildGuestToolsImage(this.runner, out, { guestAgentJs: bundle.outFile, runtime });
    return out;
  }
}

/**
 * The guest agent as one JS file. The built agent (`npm run build`) carries it beside its bundle, made at build
 * time; run from source (tsx: tests, development) it is bundled here from the current source with esbuild.
 */
async function guestAgentBundle(workDir: string): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.ts')) {
    const built = join(dirname(here), 'guest-agent.js');
    if (!existsSync(built)) throw new Error(`the guest agent bundle ${built} is missing: the build did not finish`);
    return built;
  }
  const { bundleGuestAgent } = await import('@nqvm/guest-agent');
  return (await bundleGuestAgent(join(workDir, 'guest-agent.js'))).outFile;
}
