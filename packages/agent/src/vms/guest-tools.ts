import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleGuestAgent } from '@nqvm/guest-agent';
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
    const bundle = await bundleGuestAgent(join(this.dir, 'guest-agent.js'));
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
