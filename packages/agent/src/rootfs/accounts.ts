/** Pure editing of /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow text: no I/O, fully unit-testable. */

export class AccountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AccountError';
  }
}

const USERNAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const FIRST_UID = 1000;
const LAST_UID = 59999;

export function assertUsername(name: string): string {
  if (!USERNAME.test(name)) throw new AccountError(`invalid username ${JSON.stringify(name)}`);
  return name;
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

function join(ls: readonly string[]): string {
  return ls.length ? `${ls.join('\n')}\n` : '';
}

function fields(line: string): string[] {
  return line.split(':');
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export function parsePasswd(text: string): PasswdEntry[] {
  return lines(text)
    .map(fields)
    .filter((f) => f.length >= 7)
    .map((f) => ({ name: f[0] ?? '', uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '', shell: f[6] ?? '' }));
}

function groupIds(groupText: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const f of lines(groupText).map(fields)) if (f.length >= 3) m.set(f[0] ?? '', Number(f[2]));
  return m;
}

export function findGroupId(groupText: string, name: string): number | undefined {
  return groupIds(groupText).get(name);
}

function nextFree(used: Set<number>, preferred?: number): number {
  if (preferred !== undefined && preferred >= FIRST_UID && !used.has(preferred)) return preferred;
  let max = FIRST_UID - 1;
  for (const id of used) if (id >= FIRST_UID && id <= LAST_UID && id > max) max = id;
  let next = max + 1;
  while (used.has(next)) next++;
  if (next > LAST_UID) throw new AccountError('no free id in 1000..59999');
  return next;
}

export interface AccountFiles {
  passwd: string;
  group: string;
  shadow: string;
  /** Only edited when the image has one. */
  gshadow?: string;
}

export interface EnsureUserInput {
  username: string;
  /** The shadow password field: a `$6$` hash, or `*` for no password login (keys only). */
  shadowHash: string;
  /** Shell for a new user. */
  shell: string;
  /** Days since the epoch, for the shadow "last change" field. */
  today: number;
}

export interface EnsureUserResult {
  files: AccountFiles;
  uid: number;
  gid: number;
  home: string;
}

function upsert(ls: string[], name: string, line: string): string[] {
  const i = ls.findIndex((l) => fields(l)[0] === name);
  if (i === -1) return [...ls, line];
  const copy = [...ls];
  copy[i] = line;
  return copy;
}

/**
 * Adds the user (next free uid ≥ 1000, own group) or updates an existing one's password in place; running it
 * twice yields the same files. For an existing user (root included) only the shadow entry changes, plus
 * the passwd field becoming `x` so the shadow entry is the one consulted.
 */
export function ensureUser(files: AccountFiles, input: EnsureUserInput): EnsureUserResult {
  const name = assertUsername(input.username);
  if (/[:\n]/.test(input.shadowHash)) throw new AccountError('shadow field contains ":" or newline');
  if (/[:\n]/.test(input.shell)) throw new AccountError('shell contains ":" or newline');
  let passwd = lines(files.passwd);
  let group = lines(files.group);
  let gshadow = files.gshadow === undefined ? undefined : lines(files.gshadow);

  const existing = passwd.map(fields).find((f) => f[0] === name && f.length >= 7);
  let uid: number;
  let gid: number;
  let home: string;
  if (existing) {
    uid = Number(existing[2]);
    gid = Number(existing[3]);
    home = existing[5] ?? `/home/${name}`;
    const updated = [...existing];
    updated[1] = 'x';
    passwd = upsert(passwd, name, updated.join(':'));
  } else {
    if (groupIds(files.group).has(name)) throw new AccountError(`group ${name} exists without a user of that name`);
    const usedUids = new Set(parsePasswd(files.passwd).map((e) => e.uid));
    uid = nextFree(usedUids);
    const usedGids = new Set(groupIds(files.group).values());
    gid = nextFree(usedGids, uid);
    home = `/home/${name}`;
    passwd = [...passwd, `${name}:x:${uid}:${gid}::${home}:${input.shell}`];
    group = [...group, `${name}:x:${gid}:`];
    if (gshadow) gshadow = upsert(gshadow, name, `${name}:!::`);
  }

  let shadow = lines(files.shadow);
  // Users whose passwd field says "x" need a shadow entry; a fresh shadow file gets locked ones.
  for (const f of passwd.map(fields)) {
    const n = f[0] ?? '';
    if (f[1] === 'x' && !shadow.some((l) => fields(l)[0] === n)) shadow.push(`${n}:*:${input.today}:0:99999:7:::`);
  }
  const current = shadow.map(fields).find((f) => f[0] === name);
  const aging = current && current.length >= 9 ? current.slice(3) : ['0', '99999', '7', '', '', ''];
  shadow = upsert(shadow, name, [name, input.shadowHash, String(input.today), ...aging].join(':'));

  return {
    files: {
      passwd: join(passwd),
      group: join(group),
      shadow: join(shadow),
      ...(gshadow ? { gshadow: join(gshadow) } : {}),
    },
    uid,
    gid,
    home,
  };
}

/** The shadow field for a user: its crypt hash, or `*` (no password login, SSH keys still work). */
export function shadowField(hash: string | undefined): string {
  return hash ?? '*';
}

const KEY = /(^|\s)(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+=*(\s|$)/;

/** One authorized_keys file; refuses keys that would smuggle extra lines. */
export function authorizedKeys(keys: readonly string[]): string {
  for (const k of keys) {
    if (/[\r\n\0]/.test(k) || !KEY.test(k)) {
      throw new AccountError(`not a single-line SSH public key: ${JSON.stringify(k.slice(0, 40))}`);
    }
  }
  return join(keys.map((k) => k.trim()));
}
