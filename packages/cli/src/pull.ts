import { ApiError, api, type Image } from '@nqvm/api';
import { last, on, type ParsedArgv } from './argv.ts';
import type { CliConfig } from './config.ts';
import { UsageError } from './flags.ts';
import { render } from './output.ts';
import { Progress } from './progress.ts';
import { clientFor, type Io, outputMode } from './run.ts';

/** `registry/team/app:1.2@sha256:…` → `app-1.2`: an image name the API accepts. */
export function imageNameOf(reference: string): string {
  const noDigest = reference.split('@')[0] ?? reference;
  const lastPart = noDigest.slice(noDigest.lastIndexOf('/') + 1);
  const [repo = 'image', tag = 'latest'] = lastPart.split(':');
  const name = `${repo}-${tag}`.replace(/[^a-zA-Z0-9._-]/g, '-').replace(/^[^a-zA-Z0-9]+/, '');
  return (name || 'image').slice(0, 63);
}

/**
 * `nqvm images pull REFERENCE [--name NAME] [--username USER --password-stdin] [--no-wait]`: an OCI image becomes
 * a rootfs image; waits for the pull (a progress bar on a terminal) and says why when it failed.
 */
export async function imagesPull(cfg: CliConfig, args: string[], p: ParsedArgv, io: Io): Promise<void> {
  const reference = args[0];
  if (!reference) throw new UsageError('images pull needs a REFERENCE, e.g. registry.example.com/team/app:1.0');
  const username = last(p, 'username');
  const password = on(p, 'password-stdin') ? (await io.readStdin()).trim() : undefined;
  if ((username === undefined) !== (password === undefined))
    throw new UsageError('registry credentials need both --username and --password-stdin');
  const client = clientFor(cfg);
  let image: Image = await client.call(api.images.create, {
    body: {
      name: last(p, 'name') ?? imageNameOf(reference),
      kind: 'rootfs',
      ...(last(p, 'description') !== undefined ? { description: last(p, 'description') } : {}),
      source: { type: 'oci', reference, ...(username !== undefined ? { username, password } : {}) },
    },
  });
  if (!on(p, 'no-wait')) {
    const bar = io.stderrIsTTY ? new Progress('pull', io) : undefined;
    while (image.state === 'importing') {
      await new Promise((r) => setTimeout(r, 500));
      try {
        image = await client.call(api.images.get, { params: { id: image.id } });
      } catch (err) {
        bar?.done();
        if (err instanceof ApiError && err.status === 404)
          throw new Error(`the pull failed: ${await failure(cfg, image.id)}`);
        throw err;
      }
      bar?.update(image.bytes_done, image.bytes_total ?? undefined);
    }
    bar?.done();
  }
  io.out(render(image, outputMode(p), 'images'));
}

/** The reason the manager recorded for a failed pull. */
async function failure(cfg: CliConfig, id: string): Promise<string> {
  const page = await clientFor(cfg)
    .call(api.events.list, { query: { resource_id: id, limit: 10 } } as never)
    .catch(() => undefined);
  const items = (page as { items?: Array<{ result: string; detail?: { reason?: string } }> } | undefined)?.items ?? [];
  return items.find((e) => e.result === 'error')?.detail?.reason ?? 'the image is gone (see nqvm events)';
}
