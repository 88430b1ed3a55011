export type Principal =
  | {
      kind: 'user';
      userId: string;
      username: string;
      role: 'admin' | 'user';
      via: 'session' | 'token';
      credentialId: string;
      tokenName?: string;
    }
  | { kind: 'host'; hostId: string }
  | { kind: 'guest'; vmId: string }
  | { kind: 'anonymous' };

/** How the events log names who did something. Never contains a secret. */
export function actorOf(p: Principal): string {
  switch (p.kind) {
    case 'user':
      return p.via === 'token' ? `token:${p.tokenName ?? p.credentialId}@${p.username}` : `user:${p.username}`;
    case 'host':
      return `host:${p.hostId}`;
    case 'guest':
      return `guest:${p.vmId}`;
    case 'anonymous':
      return 'anonymous';
  }
}

/** Checks credentials; implemented by the auth and hosts features, passed to the HTTP layer. */
export interface Authenticator {
  user(token: string): Promise<Principal | null>;
  host(hostId: string, secret: string): Promise<Principal | null>;
  guest(vmId: string, token: string): Promise<Principal | null>;
}
