import type { GuestAgentConfig } from './types';
import { DEFAULT_CONFIG_PATH, GUEST_AGENT_PORT } from './version';

export class ConfigError extends Error {
  constructor(
    readonly path: string,
    readonly problems: string[],
  ) {
    super(`invalid guest agent config ${path}: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

export type ResolvedConfig = Required<GuestAgentConfig> & { hostUrl: URL };

/** The one place the guest agent reads the environment: tests point it at a temp config file. */
export function configPathFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.NQVM_GUEST_CONFIG || DEFAULT_CONFIG_PATH;
}

const VM_ID = /^[A-Za-z0-9_-]{1,128}$/;
// Visible ASCII only: the token goes into an HTTP header.
const TOKEN = /^[\x21-\x7e]{1,4096}$/;

/** Validates the parsed file and lists every problem together. Error texts never include the token. */
export function parseConfig(text: string, path: string): ResolvedConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, [`not JSON: ${err instanceof Error ? err.message : String(err)}`]);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(path, ['not an object']);
  const obj = raw as Record<string, unknown>;
  const problems: string[] = [];
  const { vm_id, token, host_url, port = GUEST_AGENT_PORT } = obj;
  if (typeof vm_id !== 'string' || !VM_ID.test(vm_id)) problems.push('vm_id must match [A-Za-z0-9_-]{1,128}');
  if (typeof token !== 'string' || !TOKEN.test(token)) problems.push('token must be 1-4096 visible ASCII characters');
  let hostUrl: URL | undefined;
  if (typeof host_url === 'string') {
    try {
      hostUrl = new URL(host_url);
    } catch {
      hostUrl = undefined;
    }
  }
  if (!hostUrl || (hostUrl.protocol !== 'http:' && hostUrl.protocol !== 'https:')) {
    problems.push('host_url must be an http(s) URL');
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    problems.push('port must be an integer 1-65535');
  }
  if (problems.length > 0 || !hostUrl) throw new ConfigError(path, problems);
  return {
    vm_id: vm_id as string,
    token: token as string,
    host_url: host_url as string,
    port: port as number,
    hostUrl,
  };
}
