import { api } from '@nqvm/api';
import { last, on, type ParsedArgv } from './argv.ts';
import type { CliConfig } from './config.ts';
import { UsageError } from './flags.ts';
import { EXIT } from './help.ts';
import { readPassword, type Tty } from './interactive.ts';
import { render } from './output.ts';
import { resolveId } from './resolve.ts';
import { clientFor, type Io, outputMode } from './run.ts';

/** `nqvm users disable|enable USER` (id or username): the generated `users update` with `--disabled`. */
export async function setUserDisabled(cfg: CliConfig, rest: string[], p: ParsedArgv, io: Io): Promise<number> {
  const [verb, who] = rest;
  if (!who) throw new UsageError(`users ${verb} needs a user (id or username)`);
  const client = clientFor(cfg);
  const id = await resolveId(client, '/v1/users', who);
  const user = await client.call(api.users.update, { params: { id }, body: { disabled: verb === 'disable' } });
  io.out(render(user, outputMode(p), 'users'));
  return EXIT.ok;
}

/**
 * `nqvm passwd [--current-password X --new-password Y]`: changes the own password. Without the flags it asks on
 * the terminal (the new one twice), or reads the current and the new one as two lines of stdin. The user's other
 * sessions end; this profile's session and the API tokens stay.
 */
export async function passwd(cfg: CliConfig, p: ParsedArgv, io: Io, tty?: Tty): Promise<number> {
  let current = last(p, 'current-password');
  let next = last(p, 'new-password');
  if (!current || !next) {
    if (tty?.stdin.isTTY) {
      current ||= await readPassword(io, tty, 'Current password: ');
      if (!next) {
        next = await readPassword(io, tty, 'New password: ');
        if ((await readPassword(io, tty, 'New password again: ')) !== next)
          throw new UsageError('the new passwords differ');
      }
    } else {
      const lines = (await io.readStdin()).split('\n');
      current ||= lines.shift()?.trim();
      next ||= lines.shift()?.trim();
    }
  }
  if (!current || !next) throw new UsageError('give the current and the new password (typed, on stdin or as flags)');
  await clientFor(cfg).call(api.auth.changePassword, { body: { current_password: current, new_password: next } });
  if (!on(p, 'quiet')) io.out('password changed; your other sessions have ended (API tokens stay)');
  return EXIT.ok;
}
