import {
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  type X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';

/*
 * The few X.509 certificates the manager issues (its CA, its client certificate, each agent's server certificate),
 * DER-encoded here and signed with node:crypto (ECDSA P-256, SHA-256); parsing and checking stay with Node's
 * X509Certificate and OpenSSL. Only what RFC 5280 needs for these three kinds is encoded.
 */

const tlv = (tag: number, body: Buffer): Buffer => {
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n > 0xffff) throw new Error('DER value too long');
  return Buffer.concat([Buffer.from([tag]), len, body]);
};
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const ctx = (n: number, body: Buffer) => tlv(0xa0 + n, body);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));

function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return tlv(0x02, (v[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * (a ?? 0) + (b ?? 0)];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const name = (cn: string) => seq(set(seq(oid('2.5.4.10'), utf8('nqvm'))), set(seq(oid('2.5.4.3'), utf8(cn))));
const ext = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

export type CertKind = 'ca' | 'server' | 'client';

export interface IssueOptions {
  kind: CertKind;
  commonName: string;
  /** The subject's public key. */
  publicKey: KeyObject;
  /** The issuer's key and name; absent for a self-signed CA. */
  issuer?: { key: KeyObject; commonName: string };
  /** Signing key for a self-signed CA. */
  selfKey?: KeyObject;
  /** Server certificates: the names and addresses the agent is reached at. */
  altNames?: string[];
  notBefore: Date;
  notAfter: Date;
}

function altNamesExt(names: string[]): Buffer {
  const entries = names.map((n) => {
    if (isIP(n) === 4) return tlv(0x87, Buffer.from(n.split('.').map(Number)));
    if (isIP(n) === 6) {
      const full = new URL(`http://[${n}]`).hostname.slice(1, -1);
      const halves = full.split('::');
      const groups = (s: string | undefined) => (s ? s.split(':') : []);
      const head = groups(halves[0]);
      const tail = groups(halves[1]);
      const all = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
      return tlv(0x87, Buffer.concat(all.map((g) => Buffer.from(g.padStart(4, '0'), 'hex'))));
    }
    return tlv(0x82, Buffer.from(n, 'ascii'));
  });
  return ext('2.5.29.17', false, seq(...entries));
}

/** A DER-encoded, signed certificate as PEM. */
export function issueCertificate(o: IssueOptions): string {
  const signer = o.issuer?.key ?? o.selfKey;
  if (!signer) throw new Error('a certificate needs an issuer key');
  const spki = o.publicKey.export({ type: 'spki', format: 'der' });
  const exts: Buffer[] = [];
  if (o.kind === 'ca') {
    exts.push(ext('2.5.29.19', true, seq(bool(true), uint(Buffer.from([0])))));
    // keyCertSign + cRLSign
    exts.push(ext('2.5.29.15', true, tlv(0x03, Buffer.from([1, 0x06]))));
  } else {
    exts.push(ext('2.5.29.19', true, seq()));
    // digitalSignature
    exts.push(ext('2.5.29.15', true, tlv(0x03, Buffer.from([7, 0x80]))));
    const purpose = o.kind === 'server' ? '1.3.6.1.5.5.7.3.1' : '1.3.6.1.5.5.7.3.2';
    exts.push(ext('2.5.29.37', false, seq(oid(purpose))));
    if (o.altNames?.length) exts.push(altNamesExt(o.altNames));
  }
  const tbs = seq(
    ctx(0, uint(Buffer.from([2]))),
    uint(Buffer.concat([Buffer.from([0x40 | (randomBytes(1)[0]! & 0x3f)]), randomBytes(15)])),
    ECDSA_SHA256,
    name(o.issuer?.commonName ?? o.commonName),
    seq(time(o.notBefore), time(o.notAfter)),
    name(o.commonName),
    spki,
    ctx(3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, signer);
  const der = seq(tbs, ECDSA_SHA256, bits(signature));
  return `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;
}

export function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export const pemOfKey = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();

/** A public key sent by an agent (SPKI PEM), accepted only if it is an EC P-256 or Ed25519 key. */
export function publicKeyOf(pem: string): KeyObject {
  const key = createPublicKey(pem);
  const ok =
    (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') ||
    key.asymmetricKeyType === 'ed25519';
  if (!ok) throw new Error('an agent key is EC P-256 or Ed25519');
  return key;
}

/** The common name of a certificate's subject. */
export function commonNameOf(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
}
