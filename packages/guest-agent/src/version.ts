export const GUEST_AGENT_VERSION = '0.1.0';
export const GUEST_AGENT_PORT = 9000;
export const DEFAULT_CONFIG_PATH = '/etc/nqvm/guest-agent.json';

/** Path of the host agent's endpoint that receives a guest's report. */
export function guestReportPath(vmId: string): string {
  return `/guest/v1/vms/${encodeURIComponent(vmId)}/report`;
}
