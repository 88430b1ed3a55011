import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import { MANAGER_CLIENT_CN } from '@nqvm/api';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { managerCa } from '../db/schema.ts';
import type { SecretBox } from './secret-box.ts';
import { commonNameOf, issueCertificate, newKeyPair, pemOfKey, publicKeyOf } from './x509.ts';

const DAY_MS = 24 * 3600 * 1000;
const CA_NAME = 'nqvm manager CA';

export interface PkiOptions {
  /** Lifetime of an agent's certificate (it asks for a new one well before the end). */
  agentCertDays?: number;
  now?: () => Date;
}

/**
 * The manager as a small CA for mutual TLS with its agents. The CA is made once and kept in the database (its key
 * sealed with the secret key), so every manager of one database issues and trusts the same; each manager gives
 * itself a client certificate at start. An agent's certificate names its host id, and the manager accepts from a
 * host's address only the certificate that names that host.
 */
export class ManagerPki {
  private constructor(
    readonly caPem: string,
    private readonly caKey: KeyObject,
    readonly client: { cert: string; key: string },
    private readonly opts: PkiOptions,
  ) {}

  static async open(db: Db, secrets: SecretBox, opts: PkiOptions = {}): Promise<ManagerPki> {
    const now = (opts.now ?? (() => new Date()))();
    let [row] = await db.select().from(managerCa).where(eq(managerCa.id, 1));
    if (!row) {
      const ca = newKeyPair();
      const certPem = issueCertificate({
        kind: 'ca',
        commonName: CA_NAME,
        publicKey: ca.publicKey,
        selfKey: ca.privateKey,
        notBefore: new Date(now.getTime() - 3600_000),
        notAfter: new Date(now.getTime() + 20 * 365 * DAY_MS),
      });
      // Several managers starting on one new database: the first insert wins, every one reads that row.
      await db
        .insert(managerCa)
        .values({ id: 1, certPem, keyEnc: secrets.seal(pemOfKey(ca.privateKey)) })
        .onConflictDoNothing();
      [row] = await db.select().from(managerCa).where(eq(managerCa.id, 1));
      if (!row) throw new Error('the manager CA row is missing after its insert');
    }
    const caKey = createPrivateKey(secrets.open(row.keyEnc));
    const me = newKeyPair();
    const cert = issueCertificate({
      kind: 'client',
      commonName: MANAGER_CLIENT_CN,
      publicKey: me.publicKey,
      issuer: { key: caKey, commonName: CA_NAME },
      notBefore: new Date(now.getTime() - 3600_000),
      notAfter: new Date(now.getTime() + 365 * DAY_MS),
    });
    return new ManagerPki(row.certPem, caKey, { cert, key: pemOfKey(me.privateKey) }, opts);
  }

  /** A server certificate for a host's agent, naming the host id (and the address it is reached at). */
  issueAgent(hostId: string, publicKeyPem: string, addr: string): { certificate: string; notAfter: Date } {
    const now = (this.opts.now ?? (() => new Date()))();
    const notAfter = new Date(now.getTime() + (this.opts.agentCertDays ?? 90) * DAY_MS);
    const host = new URL(addr).hostname.replace(/^\[|\]$/g, '');
    const certificate = issueCertificate({
      kind: 'server',
      commonName: hostId,
      publicKey: publicKeyOf(publicKeyPem),
      issuer: { key: this.caKey, commonName: CA_NAME },
      altNames: [host],
      notBefore: new Date(now.getTime() - 3600_000),
      notAfter,
    });
    return { certificate, notAfter };
  }

  /** TLS settings for calling one host's agent: our client certificate, only our CA, only that host's certificate. */
  agentTls(hostId: string): ConnectionOptions {
    return {
      ca: this.caPem,
      cert: this.client.cert,
      key: this.client.key,
      checkServerIdentity: (_name, peer) => {
        const cn = peer.raw ? commonNameOf(new X509Certificate(peer.raw)) : undefined;
        return cn === hostId
          ? undefined
          : Object.assign(new Error(`the agent's certificate names ${cn ?? 'nothing'}, not host ${hostId}`), {
              code: 'ERR_TLS_CERT_ALTNAME_INVALID',
            });
      },
    };
  }
}
