import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CryptSettingError, hashPassword, randomSalt, sha512Crypt, verifyPassword } from '../../src/rootfs/crypt.ts';

// Test vectors from Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" specification.
const VECTORS: [string, string, string][] = [
  [
    '$6$saltstring',
    'Hello world!',
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  ],
  [
    '$6$rounds=10000$saltstringsaltstring',
    'Hello world!',
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
  ],
  [
    '$6$rounds=5000$toolongsaltstring',
    'This is just a test',
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
  ],
  [
    '$6$rounds=1400$anotherlongsaltstring',
    'a very much longer text to encrypt.  This one even stretches over morethan one line.',
    '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
  ],
  [
    '$6$rounds=77777$short',
    'we have a short salt string but not a short password',
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
  ],
  [
    '$6$rounds=123456$asaltof16chars..',
    'a short string',
    '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1',
  ],
  [
    '$6$rounds=10$roundstoolow',
    'the minimum number is still observed',
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
  ],
];

describe('sha512Crypt', () => {
  it.each(VECTORS)('matches the glibc spec vector for %s', (setting, password, expected) => {
    expect(sha512Crypt(password, setting)).toBe(expected);
  });

  it('takes the salt from a full hash, so a stored hash verifies its own password', () => {
    const stored = VECTORS[0]?.[2] ?? '';
    expect(sha512Crypt('Hello world!', stored)).toBe(stored);
    expect(verifyPassword('Hello world!', stored)).toBe(true);
    expect(verifyPassword('hello world!', stored)).toBe(false);
    expect(verifyPassword('x', '$1$md5$whatever')).toBe(false);
  });

  it('refuses settings that are not $6$', () => {
    expect(() => sha512Crypt('pw', '$5$salt')).toThrow(CryptSettingError);
    expect(() => hashPassword('pw', { salt: 'bad salt' })).toThrow(CryptSettingError);
  });

  it('hashes with a random 16-character salt that differs each time', () => {
    const a = hashPassword('secret');
    const b = hashPassword('secret');
    expect(a).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    expect(a).not.toBe(b);
    expect(verifyPassword('secret', a)).toBe(true);
    expect(randomSalt()).toMatch(/^[./0-9A-Za-z]{16}$/);
  });

  it('handles empty and multibyte passwords like glibc', () => {
    expect(hashPassword('', { salt: 'abc' })).toMatch(/^\$6\$abc\$/);
    expect(verifyPassword('pässwörd ✓', hashPassword('pässwörd ✓', { rounds: 2000 }))).toBe(true);
  });

  it.runIf(existsSync('/usr/bin/openssl'))('agrees with `openssl passwd -6`', () => {
    for (const [salt, password] of [
      ['saltstring', 'Hello world!'],
      ['Zx8.Q/abc', 'correct horse battery staple'],
      ['a', 'x'],
      ['0123456789abcdef', 'pässwörd ✓'],
    ] as const) {
      const expected = execFileSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], { input: password })
        .toString()
        .trim();
      expect(hashPassword(password, { salt })).toBe(expected);
    }
  });
});
