import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface CliConfig {
  url: string;
  token: string | undefined;
  file: string;
}

/** The CLI's settings: NQVM_URL / NQVM_TOKEN, else the file `nqvm login` writes. */
export function loadCliConfig(env: Record<string, string | undefined>): CliConfig {
  const file = env.NQVM_CONFIG || join(env.HOME || homedir(), '.config', 'nqvm', 'config.json');
  let saved: { url?: string; token?: string } = {};
  if (existsSync(file)) saved = JSON.parse(readFileSync(file, 'utf8')) as typeof saved;
  return { url: env.NQVM_URL || saved.url || 'http://127.0.0.1:18080', token: env.NQVM_TOKEN || saved.token, file };
}

export function saveCliConfig(file: string, value: { url: string; token: string }): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
}
