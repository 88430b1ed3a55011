import { describe, expect, it } from 'vitest';
import { AccountError, authorizedKeys, ensureUser, findGroupId, parsePasswd } from '../../src/rootfs/accounts.ts';

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`;
const GROUP = `root:x:0:
shadow:x:42:
nogroup:x:65534:
`;
const SHADOW = `root:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
`;
const HASH = '$6$salt$abc';

describe('ensureUser', () => {
  it('adds a new user with uid/gid 1000, its own group, a home and a shadow entry', () => {
    const r = ensureUser(
      { passwd: PASSWD, group: GROUP, shadow: SHADOW },
      { username: 'alice', shadowHash: HASH, shell: '/bin/bash', today: 20000 },
    );
    expect(r).toMatchObject({ uid: 1000, gid: 1000, home: '/home/alice' });
    expect(r.files.passwd).toContain('alice:x:1000:1000::/home/alice:/bin/bash\n');
    expect(r.files.group).toContain('alice:x:1000:\n');
    expect(r.files.shadow).toContain('alice:$6$salt$abc:20000:0:99999:7:::\n');
    expect(r.files.passwd.startsWith(PASSWD)).toBe(true);
  });

  it('takes the next free uid above existing ones and skips a gid already used', () => {
    const passwd = `${PASSWD}bob:x:1000:1000::/home/bob:/bin/sh\ncarol:x:1004:1004::/home/carol:/bin/sh\n`;
    const group = `${GROUP}bob:x:1000:\ncarol:x:1004:\nstaff:x:1005:\n`;
    const r = ensureUser(
      { passwd, group, shadow: SHADOW },
      { username: 'dave', shadowHash: HASH, shell: '/bin/sh', today: 1 },
    );
    expect(r.uid).toBe(1005);
    expect(r.gid).toBe(1006);
  });

  it('is idempotent: a second run replaces the entries instead of adding lines', () => {
    const files = { passwd: PASSWD, group: GROUP, shadow: SHADOW, gshadow: 'root:*::\n' };
    const once = ensureUser(files, { username: 'alice', shadowHash: HASH, shell: '/bin/sh', today: 5 });
    const twice = ensureUser(once.files, { username: 'alice', shadowHash: '$6$salt$new', shell: '/bin/sh', today: 5 });
    expect(twice.uid).toBe(once.uid);
    expect(twice.files.passwd).toBe(once.files.passwd);
    expect(twice.files.group).toBe(once.files.group);
    expect(twice.files.gshadow).toBe('root:*::\nalice:!::\n');
    expect(twice.files.shadow.match(/^alice:/gm)).toHaveLength(1);
    expect(twice.files.shadow).toContain('alice:$6$salt$new:5:');
  });

  it("updates root's own entry rather than adding a user, keeping its aging fields", () => {
    const shadow = 'root:!:19000:1:2:3:4:5:\n';
    const r = ensureUser(
      { passwd: PASSWD, group: GROUP, shadow },
      { username: 'root', shadowHash: HASH, shell: '/bin/sh', today: 7 },
    );
    expect(r).toMatchObject({ uid: 0, gid: 0, home: '/root' });
    expect(r.files.passwd).toBe(PASSWD);
    expect(r.files.group).toBe(GROUP);
    expect(r.files.shadow.split('\n')[0]).toBe('root:$6$salt$abc:7:1:2:3:4:5:');
  });

  it('creates shadow entries for users whose hash moved out of passwd', () => {
    const r = ensureUser(
      { passwd: 'root::0:0:root:/root:/bin/sh\n', group: 'root:x:0:\n', shadow: '' },
      { username: 'root', shadowHash: HASH, shell: '/bin/sh', today: 3 },
    );
    expect(r.files.passwd).toBe('root:x:0:0:root:/root:/bin/sh\n');
    expect(r.files.shadow).toBe('root:$6$salt$abc:3:0:99999:7:::\n');
  });

  it('refuses usernames and fields that would corrupt the files', () => {
    const files = { passwd: PASSWD, group: GROUP, shadow: SHADOW };
    for (const username of ['Alice', 'a:b', 'x\nroot', '../x', '', '$(touch /tmp/MARK)']) {
      expect(() => ensureUser(files, { username, shadowHash: HASH, shell: '/bin/sh', today: 1 })).toThrow(AccountError);
    }
    expect(() => ensureUser(files, { username: 'eve', shadowHash: 'a:b', shell: '/bin/sh', today: 1 })).toThrow(
      AccountError,
    );
    expect(() => ensureUser(files, { username: 'shadow', shadowHash: HASH, shell: '/bin/sh', today: 1 })).toThrow(
      /group shadow exists/,
    );
  });

  it('parses passwd and finds group ids', () => {
    expect(parsePasswd(PASSWD).map((e) => e.uid)).toEqual([0, 1, 65534]);
    expect(findGroupId(GROUP, 'shadow')).toBe(42);
    expect(findGroupId(GROUP, 'wheel')).toBeUndefined();
  });
});

describe('authorizedKeys', () => {
  it('writes one key per line', () => {
    const keys = ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabc user@host', 'ecdsa-sha2-nistp256 AAAAE2VjZHNh= x'];
    expect(authorizedKeys(keys)).toBe(`${keys.join('\n')}\n`);
  });

  it('refuses keys that smuggle extra lines or are not keys', () => {
    expect(() => authorizedKeys(['ssh-ed25519 AAAA x\ncommand="touch /tmp/MARK" ssh-rsa AAAA y'])).toThrow(
      AccountError,
    );
    expect(() => authorizedKeys(['not a key'])).toThrow(AccountError);
  });
});
