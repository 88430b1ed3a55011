import type { AgentService } from '@nqvm/api';
import { type AccountFiles, authorizedKeys, ensureUser, findGroupId, shadowField } from './accounts.ts';
import { hashPassword } from './crypt.ts';
import { type Ext4Batch, Ext4CommandError, type Ext4Image } from './ext4.ts';
import {
  AGENT_CONFIG,
  AGENT_DIR,
  AGENT_JS,
  type AgentConfig,
  type AgentMode,
  agentConfigJson,
  assertHostname,
  busyboxInittab,
  CONFIG_DIR,
  hostsFile,
  insservDepend,
  interfacesFile,
  NETWORK_SCRIPT,
  type NetworkPlan,
  networkdFile,
  networkScript,
  openrcScript,
  type ParsedNetwork,
  parseNetwork,
  RUN_AGENT,
  RUNTIME_DIR,
  resolvConf,
  runAgentScript,
  SERVICE_NAME,
  SUPERVISE,
  superviseScript,
  systemdUnit,
  sysvinitScript,
} from './guest-config.ts';
import { detectInit, type InitDetection } from './init-detect.ts';
import { BIN_DIR, OCI_INIT, OCI_PATHS, writeOciInit } from './oci-init.ts';
import type { NodeRuntime } from './runtime.ts';

export type PrepareStep = 'detect-init' | 'hostname' | 'network' | 'credentials' | 'guest-agent' | 'service' | 'commit';

/** Rootfs preparation failed; `step` says which part, `cause` the underlying error. Nothing is skipped silently. */
export class RootfsPrepareError extends Error {
  constructor(
    readonly step: PrepareStep,
    override readonly cause: unknown,
  ) {
    super(`rootfs preparation failed at ${step}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'RootfsPrepareError';
  }
}

export interface UserPlan {
  username: string;
  password?: string;
  ssh_authorized_keys?: string[];
}

export interface GuestAgentPlan {
  /** `tools-drive` (default): the runtime comes from the shared `nqvm-tools` drive; `copy`: into this rootfs. */
  mode?: AgentMode;
  config: AgentConfig;
  /** Host path of the bundled guest agent; required in copy mode. */
  guestAgentJs?: string;
  /** From buildNodeRuntime; required in copy mode. */
  runtime?: NodeRuntime;
}

export interface RootfsPlan {
  hostname?: string;
  network?: NetworkPlan;
  user?: UserPlan;
  guestAgent?: GuestAgentPlan;
  /** An OCI image's service: nqvm's init (the host's static busybox at `busybox`) runs it through the guest agent. */
  service?: { spec: AgentService; busybox: string };
}

export interface PrepareDeps {
  now?: () => Date;
  /** Password hashing; default SHA-512 crypt with a random salt. */
  hash?: (password: string) => string;
}

export interface PrepareResult {
  init: InitDetection;
  user?: { username: string; uid: number; gid: number; home: string };
  /** debugfs write commands applied. */
  commands: number;
}

const STEPS = new Set<string>([
  'detect-init',
  'hostname',
  'network',
  'credentials',
  'guest-agent',
  'service',
  'commit',
]);

async function step<T>(name: PrepareStep, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RootfsPrepareError) throw e;
    throw new RootfsPrepareError(name, e);
  }
}

async function firstExisting(image: Ext4Image, paths: readonly string[]): Promise<string | undefined> {
  for (const p of paths) if (await image.exists(p)) return p;
  return undefined;
}

async function requireFile(image: Ext4Image, path: string, why: string): Promise<void> {
  if (!(await image.exists(path))) throw new Error(`${path} is missing (${why})`);
}

async function writeNetwork(image: Ext4Image, b: Ext4Batch, init: InitDetection, n: ParsedNetwork): Promise<void> {
  if (n.dns.length) await b.writeFile('/etc/resolv.conf', resolvConf(n), { mode: 0o644 });
  if (init.kind === 'systemd') {
    const unit = await firstExisting(image, [
      '/lib/systemd/system/systemd-networkd.service',
      '/usr/lib/systemd/system/systemd-networkd.service',
    ]);
    if (!unit)
      throw new Error('systemd-networkd.service is not installed, so a static address cannot be applied at boot');
    await b.mkdirP('/etc/systemd/network');
    await b.writeFile('/etc/systemd/network/10-nqvm.network', networkdFile(n));
    await b.mkdirP('/etc/systemd/system/multi-user.target.wants');
    await b.symlink('/etc/systemd/system/multi-user.target.wants/systemd-networkd.service', unit);
    return;
  }
  await b.mkdirP('/etc/network');
  await b.writeFile('/etc/network/interfaces', interfacesFile(n));
  if (init.kind === 'busybox') {
    await b.mkdirP(CONFIG_DIR, { mode: 0o755 });
    await b.writeFile(NETWORK_SCRIPT, networkScript(n), { mode: 0o755 });
    return;
  }
  await requireFile(image, '/etc/init.d/networking', 'the ifupdown service that applies /etc/network/interfaces');
  if (init.kind === 'openrc') {
    await b.mkdirP('/etc/runlevels/boot');
    await b.symlink('/etc/runlevels/boot/networking', '/etc/init.d/networking');
    return;
  }
  const rcS = (await image.exists('/etc/rcS.d')) ? await image.listDir('/etc/rcS.d') : [];
  if (!rcS.some((e) => /^S\d\dnetworking$/.test(e.name))) {
    await b.mkdirP('/etc/rcS.d');
    await b.symlink('/etc/rcS.d/S10networking', '/etc/init.d/networking');
  }
}

async function writeCredentials(
  image: Ext4Image,
  b: Ext4Batch,
  user: UserPlan,
  deps: PrepareDeps,
): Promise<NonNullable<PrepareResult['user']>> {
  const read = async (p: string) => ((await image.exists(p)) ? image.readText(p) : undefined);
  const passwd = await read('/etc/passwd');
  const group = await read('/etc/group');
  if (passwd === undefined || group === undefined) throw new Error('/etc/passwd or /etc/group is missing');
  const gshadow = await read('/etc/gshadow');
  const files: AccountFiles = {
    passwd,
    group,
    shadow: (await read('/etc/shadow')) ?? '',
    ...(gshadow !== undefined ? { gshadow } : {}),
  };
  const hash = user.password === undefined ? undefined : (deps.hash ?? hashPassword)(user.password);
  const keys = user.ssh_authorized_keys?.length ? authorizedKeys(user.ssh_authorized_keys) : undefined;
  const now = (deps.now ?? (() => new Date()))();
  const result = ensureUser(files, {
    username: user.username,
    shadowHash: shadowField(hash),
    shell: (await image.exists('/bin/bash')) ? '/bin/bash' : '/bin/sh',
    today: Math.floor(now.getTime() / 86_400_000),
  });
  const shadowGid = findGroupId(result.files.group, 'shadow');
  const secret = shadowGid === undefined ? { mode: 0o600, uid: 0, gid: 0 } : { mode: 0o640, uid: 0, gid: shadowGid };
  await b.writeFile('/etc/passwd', result.files.passwd, { mode: 0o644 });
  await b.writeFile('/etc/group', result.files.group, { mode: 0o644 });
  await b.writeFile('/etc/shadow', result.files.shadow, secret);
  if (result.files.gshadow !== undefined) await b.writeFile('/etc/gshadow', result.files.gshadow, secret);
  const own = { uid: result.uid, gid: result.gid };
  if (!(await image.exists(result.home)))
    await b.mkdirP(result.home, { ...own, mode: result.uid === 0 ? 0o700 : 0o755 });
  if (keys !== undefined) {
    await b.mkdirP(`${result.home}/.ssh`, { ...own, mode: 0o700 });
    await b.writeFile(`${result.home}/.ssh/authorized_keys`, keys, { ...own, mode: 0o600 });
  }
  return { username: user.username, uid: result.uid, gid: result.gid, home: result.home };
}

async function writeAgent(b: Ext4Batch, agent: GuestAgentPlan): Promise<void> {
  const mode = agent.mode ?? 'tools-drive';
  const config = agentConfigJson(agent.config);
  await b.mkdirP(CONFIG_DIR, { mode: 0o755 });
  await b.writeFile(AGENT_CONFIG, config, { mode: 0o600 });
  await b.writeFile(RUN_AGENT, runAgentScript(mode), { mode: 0o755 });
  await b.mkdirP(AGENT_DIR, { mode: 0o755 });
  if (mode === 'copy') {
    if (!agent.guestAgentJs || !agent.runtime) throw new Error('copy mode needs guestAgentJs and a built node runtime');
    await b.writeFile(AGENT_JS, { hostFile: agent.guestAgentJs }, { mode: 0o644 });
    await b.mkdirP(RUNTIME_DIR, { mode: 0o755 });
    for (const f of agent.runtime.files)
      await b.writeFile(`${RUNTIME_DIR}/${f}`, { hostFile: `${agent.runtime.dir}/${f}` }, { mode: 0o755 });
  }
}

async function writeService(
  image: Ext4Image,
  b: Ext4Batch,
  init: InitDetection,
  want: { agent: boolean; network: boolean },
): Promise<void> {
  if (init.kind === 'busybox') {
    const existing = (await image.exists('/etc/inittab')) ? await image.readText('/etc/inittab') : undefined;
    await b.writeFile('/etc/inittab', busyboxInittab(existing, want), { mode: 0o644 });
    return;
  }
  if (!want.agent) return;
  const initScript = `/etc/init.d/${SERVICE_NAME}`;
  switch (init.kind) {
    case 'systemd': {
      const unit = `/etc/systemd/system/${SERVICE_NAME}.service`;
      await b.mkdirP('/etc/systemd/system/multi-user.target.wants');
      await b.writeFile(unit, systemdUnit());
      await b.symlink(`/etc/systemd/system/multi-user.target.wants/${SERVICE_NAME}.service`, unit);
      return;
    }
    case 'openrc':
      await b.mkdirP('/etc/init.d');
      await b.writeFile(initScript, openrcScript(), { mode: 0o755 });
      await b.mkdirP('/etc/runlevels/default');
      await b.symlink(`/etc/runlevels/default/${SERVICE_NAME}`, initScript);
      return;
    case 'sysvinit':
      await b.writeFile(SUPERVISE, superviseScript(), { mode: 0o755 });
      await b.writeFile(initScript, sysvinitScript(), { mode: 0o755 });
      for (const rl of ['2', '3', '4', '5']) {
        await b.mkdirP(`/etc/rc${rl}.d`);
        await b.symlink(`/etc/rc${rl}.d/S99${SERVICE_NAME}`, `../init.d/${SERVICE_NAME}`);
      }
      for (const rl of ['0', '1', '6']) {
        await b.mkdirP(`/etc/rc${rl}.d`);
        await b.symlink(`/etc/rc${rl}.d/K01${SERVICE_NAME}`, `../init.d/${SERVICE_NAME}`);
      }
      for (const f of INSSERV_MAKEFILES)
        if (await image.exists(f)) await b.writeFile(f, insservDepend(await image.readText(f), SERVICE_NAME));
      return;
  }
}

/** Where Debian's rc looks for the boot order insserv computed (see insservDepend). */
const INSSERV_MAKEFILES = ['/etc/init.d/.depend.start', '/etc/init.d/.depend.stop'];
const READ_AHEAD = [
  '/etc/passwd',
  '/etc/group',
  '/etc/shadow',
  '/etc/gshadow',
  '/etc/hosts',
  '/etc/inittab',
  ...INSSERV_MAKEFILES,
];

/** Every path preparation may look at, so one debugfs run answers them instead of one run each. */
function prefetchPaths(plan: RootfsPlan): string[] {
  const paths = [
    '/sbin/init',
    '/lib/systemd/systemd',
    '/usr/lib/systemd/systemd',
    '/sbin/openrc',
    '/etc/rc.conf',
    '/bin/bash',
    '/etc',
    '/etc/hostname',
    '/etc/resolv.conf',
    '/etc/network',
    '/etc/network/interfaces',
    '/etc/init.d',
    '/etc/init.d/networking',
    `/etc/init.d/${SERVICE_NAME}`,
    ...INSSERV_MAKEFILES,
    '/etc/runlevels',
    '/etc/runlevels/boot',
    '/etc/runlevels/boot/networking',
    '/etc/runlevels/default',
    `/etc/runlevels/default/${SERVICE_NAME}`,
    '/etc/rcS.d',
    '/etc/rcS.d/S10networking',
    '/etc/systemd',
    '/etc/systemd/network',
    '/etc/systemd/network/10-nqvm.network',
    '/etc/systemd/system',
    `/etc/systemd/system/${SERVICE_NAME}.service`,
    '/etc/systemd/system/multi-user.target.wants',
    `/etc/systemd/system/multi-user.target.wants/${SERVICE_NAME}.service`,
    '/etc/systemd/system/multi-user.target.wants/systemd-networkd.service',
    '/lib/systemd/system/systemd-networkd.service',
    '/usr/lib/systemd/system/systemd-networkd.service',
    CONFIG_DIR,
    AGENT_CONFIG,
    RUN_AGENT,
    SUPERVISE,
    NETWORK_SCRIPT,
    '/opt',
    AGENT_DIR,
  ];
  for (const rl of ['0', '1', '6']) paths.push(`/etc/rc${rl}.d`, `/etc/rc${rl}.d/K01${SERVICE_NAME}`);
  for (const rl of ['2', '3', '4', '5']) paths.push(`/etc/rc${rl}.d`, `/etc/rc${rl}.d/S99${SERVICE_NAME}`);
  if (plan.service) paths.push('/sbin', BIN_DIR, ...OCI_PATHS);
  const name = plan.user?.username;
  if (name && /^[a-z_][a-z0-9_-]{0,31}$/.test(name)) {
    const home = name === 'root' ? '/root' : `/home/${name}`;
    paths.push('/home', home, `${home}/.ssh`, `${home}/.ssh/authorized_keys`);
  }
  return paths;
}

/**
 * Writes hostname, static network, credentials, the guest agent and its init service into a VM's own copy of
 * a rootfs, without mounting it. All reads happen first; all writes go to debugfs as one batch.
 */
export async function prepareRootfs(
  image: Ext4Image,
  plan: RootfsPlan,
  deps: PrepareDeps = {},
): Promise<PrepareResult> {
  const init = await step('detect-init', async () => {
    await image.prefetch(prefetchPaths(plan), READ_AHEAD);
    return plan.service ? OCI_INIT : detectInit(image);
  });
  const b = image.batch();
  let user: PrepareResult['user'];

  if (plan.hostname !== undefined) {
    const hostname = plan.hostname;
    await step('hostname', async () => {
      assertHostname(hostname);
      b.setStep('hostname');
      await b.writeFile('/etc/hostname', `${hostname}\n`);
      await b.writeFile(
        '/etc/hosts',
        hostsFile((await image.exists('/etc/hosts')) ? await image.readText('/etc/hosts') : undefined, hostname),
      );
    });
  }
  if (plan.network) {
    const network = plan.network;
    await step('network', async () => {
      const parsed = parseNetwork(network);
      b.setStep('network');
      await writeNetwork(image, b, init, parsed);
    });
  }
  if (plan.user) {
    const u = plan.user;
    user = await step('credentials', async () => {
      b.setStep('credentials');
      return writeCredentials(image, b, u, deps);
    });
  }
  if (plan.guestAgent) {
    const agent = plan.guestAgent;
    await step('guest-agent', async () => {
      b.setStep('guest-agent');
      await writeAgent(b, agent);
    });
  }
  if (plan.service) {
    const service = plan.service;
    await step('service', async () => {
      b.setStep('service');
      await writeOciInit(b, service.spec, { busybox: service.busybox, network: plan.network !== undefined });
    });
  } else if (plan.guestAgent || (init.kind === 'busybox' && plan.network)) {
    await step('service', async () => {
      b.setStep('service');
      await writeService(image, b, init, { agent: plan.guestAgent !== undefined, network: plan.network !== undefined });
    });
  }

  const commands = b.size;
  try {
    await b.commit();
  } catch (e) {
    const failed = e instanceof Ext4CommandError ? e.errors[0]?.step : undefined;
    throw new RootfsPrepareError(failed && STEPS.has(failed) ? (failed as PrepareStep) : 'commit', e);
  }
  return { init, ...(user ? { user } : {}), commands };
}
