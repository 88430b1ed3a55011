import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Identity } from './client.ts';

const file = (dataDir: string) => join(dataDir, 'identity.json');

export async function loadIdentity(dataDir: string): Promise<Identity | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file(dataDir), 'utf8')) as Partial<Identity>;
    if (typeof parsed.host_id === 'string' && typeof parsed.secret === 'string')
      return { host_id: parsed.host_id, secret: parsed.secret };
  } catch {
    // No identity yet, or an unreadable one: register afresh.
  }
  return undefined;
}

/** Written 0600 via a temp file, so a crash never leaves half an identity. */
export async function saveIdentity(dataDir: string, id: Identity): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${file(dataDir)}.tmp`;
  await writeFile(tmp, `${JSON.stringify(id)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file(dataDir));
}
