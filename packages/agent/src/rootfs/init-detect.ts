import type { RootfsReader } from './ext4.ts';

export type InitKind = 'systemd' | 'openrc' | 'sysvinit' | 'busybox';

export interface InitDetection {
  kind: InitKind;
  /** The facts that decided it, for logs and error messages. */
  evidence: string[];
}

export class UnknownInitError extends Error {
  constructor(readonly evidence: readonly string[]) {
    super(`cannot tell the guest's init system (${evidence.join('; ') || 'no /sbin/init'})`);
    this.name = 'UnknownInitError';
  }
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

async function initTarget(fs: RootfsReader): Promise<{ type: 'missing' | 'file' | 'link'; target?: string }> {
  const st = await fs.stat('/sbin/init');
  if (!st) return { type: 'missing' };
  if (st.type === 'symlink') return { type: 'link', target: await fs.readLink('/sbin/init') };
  return { type: 'file' };
}

/** Busybox ignores runlevels: its lines are `tty::action:process`; a sysvinit inittab fills that field. */
function looksLikeBusyboxInittab(text: string): boolean {
  const entries = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  return entries.length > 0 && entries.every((l) => /^[^:]*::[a-z]+:/.test(l));
}

/**
 * Reads the image (never runs it) to decide which init will start services: systemd, then OpenRC (which on
 * Alpine runs under busybox init but owns services), then busybox init, then sysvinit.
 */
export async function detectInit(fs: RootfsReader): Promise<InitDetection> {
  const evidence: string[] = [];
  const init = await initTarget(fs);
  evidence.push(init.type === 'link' ? `/sbin/init -> ${init.target}` : `/sbin/init ${init.type}`);

  const systemdBin = (await fs.exists('/lib/systemd/systemd'))
    ? '/lib/systemd/systemd'
    : (await fs.exists('/usr/lib/systemd/systemd'))
      ? '/usr/lib/systemd/systemd'
      : undefined;
  if (systemdBin && init.type === 'link' && basename(init.target ?? '') === 'systemd') {
    return { kind: 'systemd', evidence: [...evidence, `${systemdBin} present`] };
  }

  const hasInitD = await fs.exists('/etc/init.d');
  if (await fs.exists('/sbin/openrc')) return { kind: 'openrc', evidence: [...evidence, '/sbin/openrc present'] };
  if (hasInitD && (await fs.exists('/etc/rc.conf'))) {
    return { kind: 'openrc', evidence: [...evidence, '/etc/init.d and /etc/rc.conf present'] };
  }

  const busyboxInit = init.type === 'link' && basename(init.target ?? '') === 'busybox';
  const hasInittab = await fs.exists('/etc/inittab');
  if (busyboxInit) {
    if (hasInittab && !looksLikeBusyboxInittab(await fs.readText('/etc/inittab'))) {
      throw new UnknownInitError([...evidence, '/etc/inittab is not in busybox syntax']);
    }
    return {
      kind: 'busybox',
      evidence: [...evidence, hasInittab ? 'busybox /etc/inittab' : 'no /etc/inittab (busybox defaults)'],
    };
  }

  if (init.type !== 'missing' && hasInittab && hasInitD) {
    return { kind: 'sysvinit', evidence: [...evidence, '/etc/inittab and /etc/init.d present'] };
  }
  if (systemdBin) evidence.push(`${systemdBin} present but /sbin/init does not point to it`);
  if (hasInitD) evidence.push('/etc/init.d present');
  if (hasInittab) evidence.push('/etc/inittab present');
  throw new UnknownInitError(evidence);
}
