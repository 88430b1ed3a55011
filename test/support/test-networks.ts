/**
 * `npm test` runs every test file in one private network namespace, several at a time. A test that makes a
 * bridge gives it an address of its subnet, and an agent listens on its ports: two files sharing a subnet or a
 * port break each other only when they happen to overlap in time. Every such test takes its network from here;
 * `test-networks.test.ts` proves that no two overlap.
 */
export interface TestNetwork {
  /** The VM subnet; its first address goes on the bridge. */
  cidr: string;
  bridge: string;
  /** The agent's API port on 127.0.0.1. */
  agentPort: number;
  /** The manager's port on 127.0.0.1, for tests that start `nqvm up` or a release. */
  managerPort?: number;
  /** A local OCI registry's port on 127.0.0.1. */
  registryPort?: number;
}

export const TEST_NETWORKS = {
  agentE2e: { cidr: '10.213.0.0/24', bridge: 'nqbr-e2e', agentPort: 19090 },
  // These write their addresses out in the test; listed so that no other test takes them.
  netHost: { cidr: '10.213.40.0/24', bridge: 'nqbr-test', agentPort: 19190 },
  snapshotsE2e: { cidr: '10.214.0.0/24', bridge: 'nqbr-snap', agentPort: 19092 },
  guestShellMetrics: { cidr: '10.215.0.0/24', bridge: 'nqbr-guest', agentPort: 19491 },
  devicesE2e: { cidr: '10.216.0.0/24', bridge: 'nqbr-dev', agentPort: 19093 },
  guestInitSystems: { cidr: '10.217.0.0/24', bridge: 'nqbr-sysd', agentPort: 19094 },
  mmdsE2e: { cidr: '10.218.0.0/24', bridge: 'nqbr-mmds', agentPort: 19095 },
  webVms: { cidr: '10.219.0.0/24', bridge: 'nqbr-web', agentPort: 19096 },
  nqvmUp: { cidr: '10.222.0.0/24', bridge: 'nqbr-up', agentPort: 19098, managerPort: 18191 },
  crashNqvmUp: { cidr: '10.223.0.0/24', bridge: 'nqbr-crash', agentPort: 19097, managerPort: 18193 },
  cliConsole: { cidr: '10.224.0.0/24', bridge: 'nqbr-cli', agentPort: 19493 },
  guestBoundary: { cidr: '10.225.0.0/24', bridge: 'nqbr-gb', agentPort: 19100 },
  webVmPage: { cidr: '10.226.0.0/24', bridge: 'nqbr-wpage', agentPort: 19171 },
  freshClone: { cidr: '10.227.0.0/24', bridge: 'nqbr-clone', agentPort: 19621, managerPort: 18621 },
  imageFormats: { cidr: '10.233.0.0/24', bridge: 'nqbr-fmt', agentPort: 19102 },
  imageVersions: { cidr: '10.234.0.0/24', bridge: 'nqbr-ver', agentPort: 19103 },
  ociImages: { cidr: '10.235.0.0/24', bridge: 'nqbr-oci', agentPort: 19105, registryPort: 19106 },
  crashMatrix: { cidr: '10.228.0.0/24', bridge: 'nqbr-cmx', agentPort: 19631, managerPort: 18631 },
  alertsE2e: { cidr: '10.241.0.0/24', bridge: 'nqbr-alert', agentPort: 19641 },
  functionRuntimes: { cidr: '10.247.0.0/24', bridge: 'nqbr-fnrt', agentPort: 19677 },
  functionsE2e: { cidr: '10.248.0.0/24', bridge: 'nqbr-fn', agentPort: 19681 },
  usageE2e: { cidr: '10.242.0.0/24', bridge: 'nqbr-usage', agentPort: 19651 },
  // Two managers on one PostgreSQL (two-managers.test.ts): manager A on twoManagers' port, B on twoManagersB's (its
  // subnet, bridge and agent port are reserved and unused).
  twoManagers: { cidr: '10.243.0.0/24', bridge: 'nqbr-2mgr', agentPort: 19661, managerPort: 18661 },
  twoManagersB: { cidr: '10.243.1.0/24', bridge: 'nqbr-2mgrb', agentPort: 19662, managerPort: 18662 },
  productionInstall: { cidr: '10.88.0.0/24', bridge: 'nqbr-rel', agentPort: 19611, managerPort: 18611 },
  // Also written out in their tests.
  vmBootOrder: { cidr: '10.231.0.0/24', bridge: 'nqbr-order', agentPort: 19099 },
  vmmSandbox: { cidr: '10.232.0.0/24', bridge: 'nqbr-sbx', agentPort: 19101 },
} as const satisfies Record<string, TestNetwork>;

/** The gateway: the subnet's first address, which the agent puts on the bridge. */
export function gatewayOf(net: TestNetwork): string {
  const [a, b, c, d] = (net.cidr.split('/')[0] ?? '').split('.').map(Number);
  return `${a}.${b}.${c}.${(d ?? 0) + 1}`;
}
