import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface Profile {
  url: string;
  token?: string;
}

/** The settings file: named profiles and which one is used when none is asked for. */
export interface ConfigFile {
  current: string;
  profiles: Record<string, Profile>;
}

export interface CliConfig {
  url: string;
  token: string | undefined;
  /** The file `nqvm login` writes. */
  file: string;
  profile: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:18080';

/** `$NQVM_CONFIG`, else `$XDG_CONFIG_HOME/nqvm/config.json`, else `~/.config/nqvm/config.json`. */
export function configPath(env: Record<string, string | undefined>): string {
  if (env.NQVM_CONFIG) return env.NQVM_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'nqvm', 'config.json');
}

export function readConfigFile(file: string): ConfigFile {
  if (!existsSync(file)) return { current: 'default', profiles: {} };
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<ConfigFile> & Partial<Profile>;
  // Files written before profiles existed hold one url and token: that is the default profile.
  if (!raw.profiles)
    return { current: 'default', profiles: raw.url ? { default: { url: raw.url, token: raw.token } } : {} };
  return { current: raw.current ?? 'default', profiles: raw.profiles };
}

export function writeConfigFile(file: string, value: ConfigFile): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
}

/** `--url`/`--token`, else `NQVM_URL`/`NQVM_TOKEN`, else the chosen profile (`--profile`, `NQVM_PROFILE`, current). */
export function loadCliConfig(
  env: Record<string, string | undefined>,
  opts: { profile?: string; url?: string; token?: string } = {},
): CliConfig {
  const file = configPath(env);
  const saved = readConfigFile(file);
  const profile = opts.profile || env.NQVM_PROFILE || saved.current;
  const p = saved.profiles[profile];
  return {
    url: opts.url || env.NQVM_URL || p?.url || DEFAULT_URL,
    token: opts.token || env.NQVM_TOKEN || p?.token,
    file,
    profile,
  };
}

export function saveProfile(file: string, name: string, value: Profile, makeCurrent = true): void {
  const saved = readConfigFile(file);
  saved.profiles[name] = value;
  if (makeCurrent) saved.current = name;
  writeConfigFile(file, saved);
}
