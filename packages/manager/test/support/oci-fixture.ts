import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const execFileAsync = promisify(execFile);

/** One layer as a tree: files (content and mode), symlinks, and whiteouts (`.wh.NAME`, `.wh..wh..opq`). */
export interface LayerSpec {
  files?: Record<string, string | { content: string | Buffer; mode: number }>;
  symlinks?: Record<string, string>;
  dirs?: string[];
  compression: 'gzip' | 'zstd' | 'none';
}

export interface ImageSpec {
  layers: LayerSpec[];
  architecture?: string;
  config?: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string; User?: string };
}

interface Blob {
  mediaType: string;
  digest: string;
  size: number;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Writes an OCI image layout (blobs, index.json) by hand, so the test controls every layer byte. */
export class OciLayout {
  readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, 'layout');
    mkdirSync(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(this.dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [] }));
  }

  blob(bytes: Buffer, mediaType: string): Blob {
    const digest = sha(bytes);
    writeFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length };
  }

  layer(spec: LayerSpec): Blob {
    const tree = mkdtempSync(join(tmpdir(), 'nqvm-layer-'));
    try {
      for (const d of spec.dirs ?? []) mkdirSync(join(tree, d), { recursive: true });
      for (const [p, f] of Object.entries(spec.files ?? {})) {
        const { content, mode } = typeof f === 'string' ? { content: f, mode: 0o644 } : f;
        mkdirSync(dirname(join(tree, p)), { recursive: true });
        writeFileSync(join(tree, p), content);
        chmodSync(join(tree, p), mode);
      }
      for (const [p, target] of Object.entries(spec.symlinks ?? {})) {
        mkdirSync(dirname(join(tree, p)), { recursive: true });
        symlinkSync(target, join(tree, p));
      }
      const tar = execFileSync(
        'tar',
        ['--create', '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', tree, '.'],
        { maxBuffer: 1 << 30 },
      );
      if (spec.compression === 'gzip') return this.blob(gzipSync(tar), 'application/vnd.oci.image.layer.v1.tar+gzip');
      if (spec.compression === 'zstd')
        return this.blob(
          execFileSync('zstd', ['-q', '-c'], { input: tar, maxBuffer: 1 << 30 }),
          'application/vnd.oci.image.layer.v1.tar+zstd',
        );
      return this.blob(tar, 'application/vnd.oci.image.layer.v1.tar');
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  }

  image(spec: ImageSpec): Blob & { platform: { os: string; architecture: string } } {
    const layers = spec.layers.map((l) => this.layer(l));
    const architecture = spec.architecture ?? 'amd64';
    const config = this.blob(
      Buffer.from(
        JSON.stringify({
          architecture,
          os: 'linux',
          config: spec.config ?? {},
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
        }),
      ),
      'application/vnd.oci.image.config.v1+json',
    );
    const manifest = this.blob(
      Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers }),
      ),
      'application/vnd.oci.image.manifest.v1+json',
    );
    return { ...manifest, platform: { os: 'linux', architecture } };
  }

  /** Tags an image, or several (one per platform) as a multi-arch index. */
  tag(name: string, images: Array<ReturnType<OciLayout['image']>>): void {
    const ref =
      images.length === 1
        ? images[0]!
        : this.blob(
            Buffer.from(
              JSON.stringify({
                schemaVersion: 2,
                mediaType: 'application/vnd.oci.image.index.v1+json',
                manifests: images,
              }),
            ),
            'application/vnd.oci.image.index.v1+json',
          );
    const indexPath = join(this.dir, 'index.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { manifests: unknown[] };
    index.manifests.push({
      mediaType: ref.mediaType,
      digest: ref.digest,
      size: ref.size,
      annotations: { 'org.opencontainers.image.ref.name': name },
    });
    writeFileSync(indexPath, JSON.stringify(index));
  }
}

export interface Registry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Async: a token service in this process must keep answering skopeo while it pushes. */
  push(layout: OciLayout, tag: string, repo: string): Promise<void>;
  stop(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`docker-registry did not listen on ${port}: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** docker-registry's `auth.token` settings: it sends clients to `realm` and trusts tokens signed under `certFile`. */
export interface TokenAuth {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
}

/**
 * Debian's docker-registry on 127.0.0.1:`port`, with htpasswd (bcrypt) users, or with Bearer tokens from a token
 * service when `token` is given; pushes go through skopeo (which speaks both).
 */
export async function startRegistry(
  port: number,
  user: { name: string; password: string },
  token?: TokenAuth,
): Promise<Registry> {
  const root = mkdtempSync(join(tmpdir(), 'nqvm-registry-'));
  const htpasswd = execFileSync('htpasswd', ['-nbB', user.name, user.password], { encoding: 'utf8' });
  writeFileSync(join(root, 'htpasswd'), htpasswd);
  const auth = token
    ? [
        '  token:',
        `    realm: ${token.realm}`,
        `    service: ${token.service}`,
        `    issuer: ${token.issuer}`,
        `    rootcertbundle: ${token.certFile}`,
      ]
    : ['  htpasswd:', '    realm: nqvm-test', `    path: ${join(root, 'htpasswd')}`];
  writeFileSync(
    join(root, 'config.yml'),
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(root, 'data')}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '  secret: nqvm-test-registry',
      'auth:',
      ...auth,
      '',
    ].join('\n'),
  );
  const out: Buffer[] = [];
  const child = spawn('docker-registry', ['serve', join(root, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => out.push(b));
  await waitForPort(port, child, () => Buffer.concat(out).toString('utf8').slice(-2000));
  const host = `127.0.0.1:${port}`;
  return {
    host,
    async push(layout, tag, repo) {
      await execFileAsync('skopeo', [
        '--insecure-policy',
        'copy',
        '--all',
        '--preserve-digests',
        '--dest-tls-verify=false',
        '--dest-creds',
        `${user.name}:${user.password}`,
        `oci:${layout.dir}:${tag}`,
        `docker://${host}/${repo}:${tag}`,
      ]);
    },
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
