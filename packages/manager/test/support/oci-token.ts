import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** What a token server handed out and was asked, for the test to check the flow. */
export interface TokenLog {
  /** Every request: the query's service and scope, and whether it carried Basic credentials. */
  requests: Array<{ service: string | null; scope: string | null; basic: boolean }>;
}

export interface TokenServer {
  /** `http://127.0.0.1:PORT/token` */
  realm: string;
  service: string;
  issuer: string;
  /** The PEM file docker-registry trusts token signatures from (`rootcertbundle`). */
  certFile: string;
  log: TokenLog;
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A Docker token service (the flow of docs.docker.com/registry/spec/auth/token) on 127.0.0.1: a GET with Basic
 * credentials and `service` + `scope` gets a JWT (RS256, its certificate in the `x5c` header) granting the scope's
 * actions; wrong or missing credentials get a 401. docker-registry configured with `auth.token` verifies the JWT
 * against `certFile`. The key and self-signed certificate are made with openssl in `dir`.
 */
export async function startTokenServer(dir: string, user: { name: string; password: string }): Promise<TokenServer> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1'].concat([
      '-subj',
      '/CN=nqvm-test-token-issuer',
    ]),
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = Buffer.from(
    readFileSync(certFile, 'utf8')
      .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
      .replace(/\s+/g, ''),
    'base64',
  );
  const service = 'nqvm-test-registry';
  const issuer = 'nqvm-test-issuer';
  const log: TokenLog = { requests: [] };
  const expected = `Basic ${Buffer.from(`${user.name}:${user.password}`).toString('base64')}`;

  const token = (scope: string | null) => {
    const now = Math.floor(Date.now() / 1000);
    const access = (scope ?? '')
      .split(' ')
      .filter(Boolean)
      .map((s) => {
        const [type, name, actions] = s.split(':');
        return { type, name, actions: (actions ?? '').split(',').filter(Boolean) };
      });
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] }));
    const claims = b64url(
      JSON.stringify({
        iss: issuer,
        sub: user.name,
        aud: service,
        exp: now + 300,
        nbf: now - 10,
        iat: now - 10,
        jti: randomUUID(),
        access,
      }),
    );
    const signature = sign('sha256', Buffer.from(`${header}.${claims}`), key);
    return `${header}.${claims}.${b64url(signature)}`;
  };

  const server: Server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const auth = req.headers.authorization;
    log.requests.push({
      service: url.searchParams.get('service'),
      scope: url.searchParams.get('scope'),
      basic: typeof auth === 'string' && auth.startsWith('Basic '),
    });
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    if (auth !== expected || url.searchParams.get('service') !== service) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const t = token(url.searchParams.get('scope'));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: t, access_token: t }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  return {
    realm,
    service,
    issuer,
    certFile,
    log,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
