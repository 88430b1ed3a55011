import { randomBytes } from 'node:crypto';
import type { ManagerConfig } from '../../config.ts';
import { openDatabase } from '../../db/client.ts';
import { migrate } from '../../db/migrate.ts';
import { PasswordHasher } from '../../security/passwords.ts';
import { AuthRepository } from './auth.repository.ts';

/**
 * `nqvm admin reset-password` on the manager's host: a new password for a user, straight in the manager's database
 * (its sessions end). With the embedded database the manager must be stopped first: PGlite has one process.
 */
export async function resetPassword(
  config: Pick<ManagerConfig, 'databaseUrl' | 'dataDir'>,
  username: string,
  password: string = randomBytes(12).toString('base64url'),
): Promise<{ password: string }> {
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(database);
    if (!(await new AuthRepository(database.db).setPassword(username, await new PasswordHasher().hash(password))))
      throw new Error(`no user named "${username}" in this manager's database`);
    return { password };
  } finally {
    await database.close();
  }
}
