import { randomBytes } from 'node:crypto';

/** A random locally administered unicast MAC (02:xx:…); uniqueness is enforced by the database. */
export function randomMac(random: (n: number) => Buffer = randomBytes): string {
  const b = random(5);
  return ['02', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}
