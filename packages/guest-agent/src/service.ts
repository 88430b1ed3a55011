import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from './log';

/** The service of a VM booted from an OCI image (written by the host agent as /etc/nqvm/service.json). */
export interface ServiceSpec {
  argv: string[];
  env: string[];
  /** The VM's own environment, applied after the image's. */
  vm_env?: string[];
  working_dir: string;
  user: string;
  restart: 'never' | 'on-failure' | 'always';
}

export const SERVICE_PATH = '/etc/nqvm/service.json';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function parseService(text: string): ServiceSpec {
  const v = JSON.parse(text) as Partial<ServiceSpec>;
  const strings = (a: unknown) => Array.isArray(a) && a.every((s) => typeof s === 'string');
  if (!strings(v.argv) || !v.argv?.length || !strings(v.env)) throw new Error('service.json: argv and env are needed');
  const restart = v.restart === 'always' || v.restart === 'on-failure' ? v.restart : 'never';
  return {
    argv: v.argv,
    env: v.env as string[],
    vm_env: strings(v.vm_env) ? (v.vm_env as string[]) : [],
    working_dir: typeof v.working_dir === 'string' ? v.working_dir : '',
    user: typeof v.user === 'string' ? v.user : '',
    restart,
  };
}

/** `name`, `uid`, `name:group` or `uid:gid`, looked up in the image's /etc/passwd and /etc/group. */
export function resolveUser(user: string, passwd: string, group: string): { uid: number; gid: number } {
  if (user === '') return { uid: 0, gid: 0 };
  const [u = '', g] = user.split(':');
  const rows = (text: string) => text.split('\n').map((l) => l.split(':'));
  const pw = rows(passwd).find((r) => r[0] === u || (/^\d+$/.test(u) && r[2] === u));
  const uid = /^\d+$/.test(u) ? Number(u) : pw ? Number(pw[2]) : Number.NaN;
  if (!Number.isInteger(uid)) throw new Error(`user ${u} is not in /etc/passwd`);
  let gid = pw ? Number(pw[3]) : uid;
  if (g !== undefined) {
    const gr = rows(group).find((r) => r[0] === g);
    gid = /^\d+$/.test(g) ? Number(g) : gr ? Number(gr[2]) : Number.NaN;
    if (!Number.isInteger(gid)) throw new Error(`group ${g} is not in /etc/group`);
  }
  return { uid, gid };
}

/** The image's env, then the VM's over it (a VM key wins); the image's PATH or a default one. */
export function serviceEnv(env: string[], vmEnv: string[] = []): Record<string, string> {
  const out: Record<string, string> = { PATH: DEFAULT_PATH, HOME: '/' };
  for (const kv of [...env, ...vmEnv]) {
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

export interface ServiceDeps {
  logger: Logger;
  readText(path: string): Promise<string>;
  spawn?: typeof spawn;
  /** Called once the service ended and its policy does not restart it. */
  finished(code: number | null): void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Runs the service with its output on the console, restarted per its policy with a backoff (1 s doubling to 30 s,
 * back to 1 s after a run of a minute). Resolves the stop function.
 */
export function runService(spec: ServiceSpec, deps: ServiceDeps): () => void {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let child: ChildProcess | undefined;
  let stopped = false;
  const loop = async () => {
    let delay = 1000;
    for (let run = 1; !stopped; run++) {
      let ids: { uid: number; gid: number };
      try {
        ids = resolveUser(
          spec.user,
          await deps.readText('/etc/passwd').catch(() => ''),
          await deps.readText('/etc/group').catch(() => ''),
        );
      } catch (err) {
        deps.logger.error('service_user', { error: String(err) });
        deps.finished(null);
        return;
      }
      const started = Date.now();
      const [cmd, ...args] = spec.argv as [string, ...string[]];
      deps.logger.info('service_started', { argv: spec.argv.join(' '), run });
      const code = await new Promise<number | null>((resolve) => {
        child = (deps.spawn ?? spawn)(cmd, args, {
          cwd: spec.working_dir || '/',
          env: serviceEnv(spec.env, spec.vm_env),
          uid: ids.uid,
          gid: ids.gid,
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        child.on('error', (err) => {
          deps.logger.error('service_failed', { error: err.message });
          resolve(127);
        });
        child.on('exit', (c, signal) => resolve(signal ? 128 : (c ?? 1)));
      });
      child = undefined;
      if (stopped) return;
      const again = spec.restart === 'always' || (spec.restart === 'on-failure' && code !== 0);
      deps.logger.info('service_exited', { code, restart: again });
      if (!again) {
        deps.finished(code);
        return;
      }
      delay = Date.now() - started > 60_000 ? 1000 : delay;
      await sleep(delay);
      delay = Math.min(delay * 2, 30_000);
    }
  };
  void loop();
  return () => {
    stopped = true;
    child?.kill('SIGTERM');
  };
}
