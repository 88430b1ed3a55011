export type { BridgeInfo, BridgeSpec } from './bridge.ts';
export { NetCommands } from './commands.ts';
export { InvalidNetInput, NetConflict, type NetInputKind, UnsupportedLimit } from './errors.ts';
export { HostNetwork, type HostNetworkOptions } from './host-network.ts';
export {
  assertBridgeName,
  assertInterfaceCidr,
  assertInterfaceName,
  assertMac,
  assertMtu,
  assertNamePrefix,
  assertNetnsName,
  assertTapName,
  cidrContains,
  formatIpv4,
  generateMac,
  type Ipv4Cidr,
  ifbNameForTap,
  parseCidr,
  parseIpv4,
  type RandomSource,
  tapNameFor,
} from './names.ts';
export type { NatRule, NatSpec } from './nat.ts';
export type { TapCounters, TapInfo, TapSpec } from './tap.ts';
export { type AppliedNicLimits, type NicLimits, type TbfParams, tbfArgs, tbfParams } from './tc.ts';
