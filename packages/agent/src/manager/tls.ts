import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { MANAGER_CLIENT_CN } from '@nqvm/api';

/** A certificate with less than this left is renewed (the manager issues them for 90 days). */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

/** This agent's TLS identity: its key (made here, never sent), the certificate the manager issued, the CA. */
export interface AgentTls {
  key: string;
  cert: string;
  ca: string;
}

const dir = (dataDir: string) => join(dataDir, 'tls');

async function writePrivate(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** The agent's private key (EC P-256), made on first use; only its public key ever leaves the host. */
export async function agentKey(dataDir: string): Promise<{ key: string; publicKey: string }> {
  const path = join(dir(dataDir), 'key.pem');
  let key: string;
  try {
    key = await readFile(path, 'utf8');
    createPrivateKey(key);
  } catch {
    await mkdir(dir(dataDir), { recursive: true, mode: 0o700 });
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    key = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await writePrivate(path, key);
  }
  const publicKey = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  return { key, publicKey };
}

/** The stored identity when it is whole, names this host and is not due for renewal. */
export async function loadAgentTls(dataDir: string, hostId: string, now = new Date()): Promise<AgentTls | undefined> {
  try {
    const [key, cert, ca] = await Promise.all(
      ['key.pem', 'cert.pem', 'ca.pem'].map((f) => readFile(join(dir(dataDir), f), 'utf8')),
    );
    if (!key || !cert || !ca) return undefined;
    const x = new X509Certificate(cert);
    const fresh = Date.parse(x.validTo) - now.getTime() > RENEW_BEFORE_MS;
    const mine = x.checkPrivateKey(createPrivateKey(key)) && commonNameOf(x) === hostId;
    return fresh && mine && x.verify(new X509Certificate(ca).publicKey) ? { key, cert, ca } : undefined;
  } catch {
    return undefined;
  }
}

export async function saveAgentTls(dataDir: string, cert: string, ca: string): Promise<void> {
  await mkdir(dir(dataDir), { recursive: true, mode: 0o700 });
  await writePrivate(join(dir(dataDir), 'ca.pem'), ca);
  await writePrivate(join(dir(dataDir), 'cert.pem'), cert);
}

export function commonNameOf(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
}

/** Why a connection may not call the agent's API: not the manager's client certificate, or none. */
export function clientCertRefusal(socket: TLSSocket | undefined): string | undefined {
  if (!socket || typeof socket.getPeerCertificate !== 'function') return 'the agent API is served over TLS only';
  if (!socket.authorized)
    return `the manager's client certificate is required (${String(socket.authorizationError ?? 'none sent')})`;
  const peer = socket.getPeerCertificate();
  if (peer?.subject?.CN !== MANAGER_CLIENT_CN)
    return `a client certificate for ${peer?.subject?.CN} is not the manager's`;
  return undefined;
}
