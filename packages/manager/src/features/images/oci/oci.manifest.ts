import { createHash } from 'node:crypto';
import type { OciRunConfig } from '@nqvm/api';
import { DomainError, Unprocessable } from '../../../domain/errors.ts';
import type { OciReference } from './oci.reference.ts';
import { type RegistryClient, RegistryUnavailable, readSmall } from './oci.registry.ts';

const FIELD = 'body.source.reference';
const DIGEST = /^sha256:[a-f0-9]{64}$/;

const INDEX_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];
const ACCEPT = [...INDEX_TYPES, ...MANIFEST_TYPES].join(', ');

export type Compression = 'none' | 'gzip' | 'zstd';

const LAYER_TYPES: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
};

export interface Layer {
  digest: string;
  size: number;
  compression: Compression;
}

/** What a pull needs after the manifests: the layers in order and the image's run config. */
export interface ResolvedImage {
  /** Digest of the linux/amd64 image manifest. */
  digest: string;
  layers: Layer[];
  config: OciRunConfig;
}

const unsupported = (why: string) => new Unprocessable('oci_unsupported', why, FIELD);

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function json(b: Buffer, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(b.toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {}
  throw new RegistryUnavailable(`the registry's ${what} is not a JSON object`);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : [];
}

async function fetchManifest(client: RegistryClient, ref: string): Promise<{ body: Buffer; type: string }> {
  const res = await client.get(`manifests/${ref}`, ACCEPT);
  if (res.status === 404) {
    res.body.resume();
    throw new Unprocessable('oci_manifest_unknown', `the registry has no manifest ${ref}`, FIELD);
  }
  if (res.status !== 200) {
    res.body.resume();
    throw new RegistryUnavailable(`the registry answered ${res.status} for manifest ${ref}`);
  }
  const body = await readSmall(res, 4 << 20);
  if (ref.startsWith('sha256:') && sha256(body) !== ref)
    throw new RegistryUnavailable(`manifest ${ref} does not match its digest`);
  const declared = String(res.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim();
  const mediaType = json(body, 'manifest').mediaType;
  return { body, type: typeof mediaType === 'string' ? mediaType : declared };
}

/** Follows a manifest list to its linux/amd64 image, then reads the image's config blob (digests checked). */
export async function resolveImage(client: RegistryClient, reference: OciReference): Promise<ResolvedImage> {
  try {
    let { body, type } = await fetchManifest(client, reference.ref);
    if (INDEX_TYPES.includes(type)) {
      const manifests = (json(body, 'index').manifests ?? []) as Array<Record<string, unknown>>;
      const pick = Array.isArray(manifests)
        ? manifests.find((m) => {
            const p = (m.platform ?? {}) as Record<string, unknown>;
            return p.os === 'linux' && p.architecture === 'amd64' && typeof m.digest === 'string';
          })
        : undefined;
      if (!pick) throw unsupported(`${reference.canonical} has no linux/amd64 image`);
      const digest = String(pick.digest);
      if (!DIGEST.test(digest)) throw unsupported(`the linux/amd64 manifest digest ${digest} is not sha256`);
      ({ body, type } = await fetchManifest(client, digest));
    }
    if (!MANIFEST_TYPES.includes(type)) throw unsupported(`manifests of type ${type || 'unknown'} are not supported`);
    const manifest = json(body, 'manifest');
    const cfg = manifest.config as Record<string, unknown> | undefined;
    if (!cfg || typeof cfg.digest !== 'string' || !DIGEST.test(cfg.digest))
      throw unsupported('the manifest has no sha256 config');
    const layers = (Array.isArray(manifest.layers) ? manifest.layers : []).map((l: Record<string, unknown>) => {
      const compression = LAYER_TYPES[String(l.mediaType)];
      if (compression === undefined) throw unsupported(`layers of type ${String(l.mediaType)} are not supported`);
      if (typeof l.digest !== 'string' || !DIGEST.test(l.digest)) throw unsupported('a layer digest is not sha256');
      if (!Number.isSafeInteger(l.size) || (l.size as number) < 0) throw unsupported('a layer has no size');
      if (Array.isArray(l.urls) && l.urls.length) throw unsupported('foreign layers (with urls) are not pulled');
      return { digest: l.digest, size: l.size as number, compression };
    });
    const configRes = await client.get(`blobs/${cfg.digest}`);
    if (configRes.status !== 200) {
      configRes.body.resume();
      throw new RegistryUnavailable(`the registry answered ${configRes.status} for the image config`);
    }
    const configBody = await readSmall(configRes, 4 << 20);
    if (sha256(configBody) !== cfg.digest) throw new RegistryUnavailable('the image config does not match its digest');
    const image = json(configBody, 'image config');
    if ((image.os !== undefined && image.os !== 'linux') || (image.architecture ?? 'amd64') !== 'amd64')
      throw unsupported(
        `${reference.canonical} is for ${String(image.os)}/${String(image.architecture)}, not linux/amd64`,
      );
    const c = (image.config ?? {}) as Record<string, unknown>;
    return {
      digest: sha256(body),
      layers,
      config: {
        entrypoint: strings(c.Entrypoint),
        cmd: strings(c.Cmd),
        env: strings(c.Env),
        working_dir: typeof c.WorkingDir === 'string' ? c.WorkingDir : '',
        user: typeof c.User === 'string' ? c.User : '',
      },
    };
  } catch (err) {
    if (err instanceof DomainError) throw err;
    throw new RegistryUnavailable(
      `reading ${reference.canonical} failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
