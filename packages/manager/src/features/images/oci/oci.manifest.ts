import { createHash } from 'node:crypto';
import type { OciRunConfig } from '@nqvm/api';
import { BadRequest, DomainError, Unprocessable } from '../../../domain/errors.ts';
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
  /** Digest of the image manifest for the host's architecture. */
  digest: string;
  layers: Layer[];
  config: OciRunConfig;
}

const unsupported = (why: string) => new Unprocessable('oci_unsupported', why, FIELD);

/** The OCI name of the architecture this manager's VMs run (Node's `x64` is OCI's `amd64`). */
export function hostArchitecture(arch: string = process.arch): string {
  return arch === 'x64' ? 'amd64' : arch === 'ia32' ? '386' : arch;
}

/** An image built for another architecture than the host's: a VM here could not run it. */
const wrongPlatform = (canonical: string, wanted: string, available: string[]) =>
  new BadRequest(
    'oci_platform_unavailable',
    `${canonical} has no linux/${wanted} image (this host's architecture); it has ${available.join(', ') || 'no platforms'}`,
    FIELD,
  );

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

/**
 * Follows a manifest list to the image for the host's architecture (`arch`, OCI naming), then reads the image's
 * config blob (digests checked). An image, or a list, with nothing for that architecture is a 400 naming what it has.
 */
export async function resolveImage(
  client: RegistryClient,
  reference: OciReference,
  arch: string = hostArchitecture(),
): Promise<ResolvedImage> {
  try {
    let { body, type } = await fetchManifest(client, reference.ref);
    if (INDEX_TYPES.includes(type)) {
      const listed = json(body, 'index').manifests;
      const manifests = (Array.isArray(listed) ? listed : []) as Array<Record<string, unknown>>;
      const platform = (m: Record<string, unknown>) => (m.platform ?? {}) as Record<string, unknown>;
      const pick = manifests.find((m) => {
        const p = platform(m);
        return p.os === 'linux' && p.architecture === arch && typeof m.digest === 'string';
      });
      if (!pick) {
        const available = manifests
          .map(platform)
          .filter((p) => typeof p.os === 'string' && typeof p.architecture === 'string')
          .map((p) => `${p.os}/${p.architecture}${typeof p.variant === 'string' ? `/${p.variant}` : ''}`);
        // Attestation manifests are listed as unknown/unknown: they are no platform.
        throw wrongPlatform(reference.canonical, arch, [
          ...new Set(available.filter((a) => !a.startsWith('unknown/'))),
        ]);
      }
      const digest = String(pick.digest);
      if (!DIGEST.test(digest)) throw unsupported(`the linux/${arch} manifest digest ${digest} is not sha256`);
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
    const os = typeof image.os === 'string' ? image.os : 'linux';
    const imageArch = typeof image.architecture === 'string' ? image.architecture : arch;
    if (os !== 'linux' || imageArch !== arch) throw wrongPlatform(reference.canonical, arch, [`${os}/${imageArch}`]);
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
