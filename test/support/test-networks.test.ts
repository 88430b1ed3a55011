import { describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from './test-networks.ts';

const toInt = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
function range(cidr: string): [number, number] {
  const [ip = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const start = toInt(ip) - (toInt(ip) % size);
  return [start, start + size - 1];
}

describe('test networks', () => {
  const nets = Object.entries(TEST_NETWORKS);

  it('gives every test its own subnet: no two overlap', () => {
    for (const [i, [a, na]] of nets.entries())
      for (const [b, nb] of nets.slice(i + 1)) {
        const [s1, e1] = range(na.cidr);
        const [s2, e2] = range(nb.cidr);
        expect(s1 > e2 || s2 > e1, `${a} ${na.cidr} overlaps ${b} ${nb.cidr}`).toBe(true);
      }
  });

  it('gives every test its own bridge and ports', () => {
    const bridges = nets.map(([, n]) => n.bridge);
    expect(new Set(bridges).size).toBe(bridges.length);
    const ports = nets.flatMap(([, n]) => [
      n.agentPort,
      ...('managerPort' in n ? [n.managerPort] : []),
      ...('registryPort' in n ? [n.registryPort] : []),
    ]);
    expect(new Set(ports).size).toBe(ports.length);
  });
});
