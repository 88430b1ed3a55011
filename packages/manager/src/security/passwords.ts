import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';

// scrypt is memory-hard: N=2^17, r=8 uses 128 MiB and about 0.3 s of one core per hash (OWASP's minimum).
export const SCRYPT_LOG2N = 17;
const R = 8;
const P = 1;
const KEYLEN = 32;

function scrypt(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, KEYLEN, { N: n, r, p, maxmem: 256 * n * r }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/**
 * Hashes and verifies passwords with scrypt at one cost; a hash stored at a lower cost is flagged for
 * rehashing at the next login. The cost is lowered only by tests (BuildOptions.passwordLog2N), never by config.
 */
export class PasswordHasher {
  private readonly n: number;
  private dummy: Promise<string> | undefined;

  constructor(log2n = SCRYPT_LOG2N) {
    this.n = 2 ** log2n;
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(16);
    const key = await scrypt(password, salt, this.n, R, P);
    return `scrypt$${this.n}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
  }

  async verify(password: string, stored: string): Promise<boolean> {
    const s = this.partsOf(stored);
    if (!s) return false;
    const key = await scrypt(password, s.salt, s.n, s.r, s.p);
    return key.length === s.hash.length && timingSafeEqual(key, s.hash);
  }

  /** A hash made with a lower cost than today's: rehashed at the next successful login. */
  needsRehash(stored: string): boolean {
    const s = this.partsOf(stored);
    return !s || s.n < this.n || s.r < R || s.p < P;
  }

  /** A hash of a random password, verified against for unknown users so timing does not reveal them. */
  dummyHash(): Promise<string> {
    this.dummy ??= this.hash(randomBytes(16).toString('hex'));
    return this.dummy;
  }

  private partsOf(stored: string): { n: number; r: number; p: number; salt: Buffer; hash: Buffer } | undefined {
    const parts = stored.split('$');
    if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
    const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
    const cost = { n: Number(n), r: Number(r), p: Number(p) };
    // A stored hash never makes the manager spend more than today's cost (a tampered row is not a DoS).
    if (![cost.n, cost.r, cost.p].every(Number.isSafeInteger) || cost.n > this.n || cost.r > R || cost.p > P)
      return undefined;
    return { ...cost, salt: Buffer.from(salt, 'base64url'), hash: Buffer.from(hash, 'base64url') };
  }
}
