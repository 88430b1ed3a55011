import { createHash, randomBytes } from 'node:crypto';

const B64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const DEFAULT_ROUNDS = 5000;
const MIN_ROUNDS = 1000;
const MAX_ROUNDS = 999_999_999;
const MAX_SALT = 16;

export class CryptSettingError extends Error {
  constructor(readonly setting: string) {
    super(`not a SHA-512 crypt setting: ${JSON.stringify(setting)}`);
    this.name = 'CryptSettingError';
  }
}

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `len` bytes of `block` repeated (the spec's "P" and "S" byte sequences). */
function repeatTo(block: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i += block.length) block.copy(out, i, 0, Math.min(block.length, len - i));
  return out;
}

function encode(digest: Buffer): string {
  let out = '';
  const put = (b2: number, b1: number, b0: number, n: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i++) {
      out += B64[w & 0x3f];
      w >>>= 6;
    }
  };
  const at = (i: number) => digest[i] ?? 0;
  for (let k = 0; k < 21; k++) {
    const a = (k * 22) % 63;
    put(at(a), at((a + 21) % 63), at((a + 42) % 63), 4);
  }
  put(0, 0, at(63), 2);
  return out;
}

interface Setting {
  salt: Buffer;
  rounds: number;
  explicitRounds: boolean;
}

function parseSetting(setting: string): Setting {
  const m = /^\$6\$(?:rounds=(\d+)\$)?([^$]*)/.exec(setting);
  if (!m) throw new CryptSettingError(setting);
  const explicitRounds = m[1] !== undefined;
  const requested = explicitRounds ? Number(m[1]) : DEFAULT_ROUNDS;
  const rounds = Math.min(MAX_ROUNDS, Math.max(MIN_ROUNDS, requested));
  const salt = Buffer.from((m[2] ?? '').slice(0, MAX_SALT), 'utf8');
  return { salt, rounds, explicitRounds };
}

/**
 * SHA-512 crypt exactly as glibc's crypt(3) computes `$6$` hashes (Drepper's spec), so /etc/shadow entries
 * written here verify with the guest's own login/sshd/PAM.
 */
export function sha512Crypt(password: string, setting: string): string {
  const { salt, rounds, explicitRounds } = parseSetting(setting);
  const pw = Buffer.from(password, 'utf8');

  const b = sha512(pw, salt, pw);
  const aParts: Buffer[] = [pw, salt, repeatTo(b, pw.length)];
  for (let n = pw.length; n > 0; n >>= 1) aParts.push(n & 1 ? b : pw);
  const a = sha512(...aParts);

  const dp = sha512(...Array.from({ length: pw.length }, () => pw));
  const p = repeatTo(dp, pw.length);
  const ds = sha512(...Array.from({ length: 16 + (a[0] ?? 0) }, () => salt));
  const s = repeatTo(ds, salt.length);

  let c = a;
  for (let i = 0; i < rounds; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? p : c);
    if (i % 3) h.update(s);
    if (i % 7) h.update(p);
    h.update(i & 1 ? c : p);
    c = h.digest();
  }

  const prefix = explicitRounds ? `$6$rounds=${rounds}$` : '$6$';
  return `${prefix}${salt.toString('utf8')}$${encode(c)}`;
}

/** A fresh 16-character salt from the crypt alphabet. */
export function randomSalt(random: (n: number) => Buffer = randomBytes): string {
  return Array.from(random(MAX_SALT), (byte) => B64[byte & 0x3f]).join('');
}

/** Hashes a password for /etc/shadow with a random salt (glibc's default 5000 rounds unless given). */
export function hashPassword(password: string, opts: { rounds?: number; salt?: string } = {}): string {
  const salt = opts.salt ?? randomSalt();
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt)) throw new CryptSettingError(salt);
  const setting = opts.rounds === undefined ? `$6$${salt}` : `$6$rounds=${opts.rounds}$${salt}`;
  return sha512Crypt(password, setting);
}

/** True when `password` produces `hash` (a `$6$` shadow field); constant-time comparison. */
export function verifyPassword(password: string, hash: string): boolean {
  if (!hash.startsWith('$6$')) return false;
  const computed = Buffer.from(sha512Crypt(password, hash));
  const expected = Buffer.from(hash);
  if (computed.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < computed.length; i++) diff |= (computed[i] ?? 0) ^ (expected[i] ?? 0);
  return diff === 0;
}
