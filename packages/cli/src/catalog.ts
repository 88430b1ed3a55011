import { allRoutes, type RouteDef } from '@nqvm/api';
import { type FlagSpec, flagsOf } from './flags.ts';

/** One generated command: `nqvm <group> <verb> [PATH PARAMS…] [--flags]`, calling one route. */
export interface Command {
  group: string;
  verb: string;
  def: RouteDef;
  /** Path parameters in order, given as positional arguments. */
  positionals: string[];
  flags: FlagSpec[];
}

/** Tags whose CLI group reads better under another name. */
const GROUP_OF_TAG: Record<string, string> = { 'vm-devices': 'devices' };

/** The few operations whose derived name reads badly (kebab(operationId) minus the group's noun). */
const OVERRIDES: Record<string, { group?: string; verb: string }> = {
  saveVmAsTemplate: { group: 'vms', verb: 'save-as-template' },
  listVmSnapshots: { verb: 'list' },
  tailLog: { verb: 'tail' },
  getVmShellCredentials: { verb: 'shell-credentials' },
  getVmMetricsHistory: { verb: 'metrics' },
  getImageContent: { verb: 'content' },
  bulkVmAction: { verb: 'bulk-action' },
  createJoinToken: { verb: 'create' },
  listJoinTokens: { verb: 'list' },
  deleteJoinToken: { verb: 'delete' },
  deleteToken: { verb: 'revoke' },
  listFunctionInvocations: { verb: 'invocations' },
  listFunctionVersions: { verb: 'versions' },
  getInvocation: { group: 'functions', verb: 'invocation' },
};

/** Routes that are not a user's to call: agents and guests use them, or a dedicated command wraps them. */
const HIDDEN = new Set(['registerHost', 'login']);

const words = (operationId: string) =>
  operationId
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(' ');

/** Nouns dropped from a verb: the group's own name (singular and plural), and `vm` inside the devices group. */
function nounsOf(group: string): Set<string> {
  const base = group.replace(/s$/, '');
  const set = new Set([group, base, `${base}s`]);
  if (group === 'devices' || group === 'snapshots' || group === 'mmds') set.add('vm').add('vms');
  return set;
}

export function verbOf(operationId: string, group: string): string {
  const nouns = nounsOf(group);
  const kept = words(operationId).filter((w) => !nouns.has(w));
  return kept.join('-') || words(operationId).join('-');
}

function commandOf(def: RouteDef): Command {
  const o = OVERRIDES[def.operationId];
  const group = o?.group ?? GROUP_OF_TAG[def.tag] ?? def.tag;
  const verb = o?.verb ?? verbOf(def.operationId, group);
  const positionals = [...def.path.matchAll(/:([a-zA-Z_]+)/g)].map((m) => m[1]!);
  const flags = [...flagsOf(def.query, 'query'), ...flagsOf(def.body, 'body')];
  return { group, verb, def, positionals, flags };
}

let cached: Command[] | undefined;

/** Every user-callable route as a command, in route-table order. */
export function commands(): Command[] {
  cached ??= allRoutes()
    .filter((d) => d.auth === 'user' || (d.auth === 'public' && !HIDDEN.has(d.operationId)))
    .filter((d) => !HIDDEN.has(d.operationId))
    .map(commandOf);
  return cached;
}

export function groups(): string[] {
  return [...new Set(commands().map((c) => c.group))];
}

export function findCommand(group: string, verb: string): Command | undefined {
  return commands().find((c) => c.group === group && c.verb === verb);
}

/** `vm` → `vms`, `image` → `images`: a singular group name is accepted too. */
export function groupOf(name: string): string | undefined {
  const all = groups();
  return all.find((g) => g === name) ?? all.find((g) => g === `${name}s` || g.replace(/s$/, '') === name);
}
