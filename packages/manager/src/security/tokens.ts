import { createHash, randomBytes } from 'node:crypto';

export type TokenKind = 'session' | 'api' | 'host' | 'vm' | 'join';
const PREFIX: Record<TokenKind, string> = { session: 'nqs_', api: 'nqt_', host: 'nqh_', vm: 'nqg_', join: 'nqj_' };

/** A high-entropy bearer token; only its SHA-256 is stored, so a fast hash is enough. */
export function newToken(kind: TokenKind): string {
  return PREFIX[kind] + randomBytes(32).toString('base64url');
}

export function tokenKind(token: string): TokenKind | undefined {
  return (Object.keys(PREFIX) as TokenKind[]).find((k) => token.startsWith(PREFIX[k]));
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
