import type { AgentVmSpec, OciImageSource } from '@nqvm/api';
import type { VmRow } from '../../vms/vms.repository.ts';
import type { ImageRow } from '../images.repository.ts';

/**
 * A VM whose rootfs was pulled from a registry runs the image's entrypoint + cmd as its service (the agent spec's
 * `service`), restarted per the VM's restart policy, with the VM's `env` over the image's. A VM of any other image
 * boots as before.
 */
export async function withOciService(
  rootfsOf: (id: string) => Promise<ImageRow | undefined>,
  row: VmRow,
  spec: AgentVmSpec,
): Promise<AgentVmSpec> {
  const image = await rootfsOf(row.rootfsImageId);
  const source = image?.source as OciImageSource | undefined;
  if (source?.type !== 'oci') return spec;
  const argv = [...source.config.entrypoint, ...source.config.cmd];
  if (argv.length === 0) return spec;
  const vmEnv = (row.config as { env?: Record<string, string> }).env ?? {};
  return {
    ...spec,
    service: {
      argv,
      env: source.config.env,
      vm_env: Object.entries(vmEnv).map(([k, v]) => `${k}=${v}`),
      working_dir: source.config.working_dir,
      user: source.config.user,
      restart: row.restartPolicy,
    },
  };
}
