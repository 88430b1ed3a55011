import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { last, parseArgv } from './argv.ts';
import { UsageError } from './flags.ts';
import { EXIT } from './help.ts';
import type { Io } from './run.ts';

/**
 * `nqvm admin reset-password [--username admin] [--data-dir DIR]`, on the manager's host with its settings
 * (DATABASE_URL, NQVM_DATA_DIR): a new generated password, shown and, for `nqvm up`'s layout, saved in the
 * root-only credentials file. With the embedded database, stop the manager first.
 */
export async function adminCommand(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  const p = parseArgv(argv, (name) => name === 'username' || name === 'data-dir');
  const verb = p.positionals[1];
  if (verb !== 'reset-password') throw new UsageError('admin reset-password [--username NAME] [--data-dir DIR]');
  const username = last(p, 'username') || 'admin';
  const dir = resolve(last(p, 'data-dir') || env.NQVM_DATA_DIR || '/var/lib/nqvm');
  // `nqvm up` keeps the manager's data one level down, next to the agent's and the credentials file.
  const upLayout = !env.DATABASE_URL && existsSync(join(dir, 'manager'));
  const { loadConfig, resetPassword } = await import('@nqvm/manager');
  const config = loadConfig({ ...env, NQVM_DATA_DIR: upLayout ? join(dir, 'manager') : dir });
  const { password } = await resetPassword(config, username);
  io.out(`new password for ${username}: ${password}  (its sessions have ended)`);
  if (upLayout && username === 'admin') {
    const file = join(dir, 'admin-credentials');
    writeFileSync(file, `username=admin\npassword=${password}\n`, { mode: 0o600 });
    io.out(`saved in ${file} (readable by root only)`);
  }
  return EXIT.ok;
}
