import type { Vm } from '@nqvm/api';
import { Card, DefinitionList } from '../../components/ui.tsx';
import { DeviceCards } from './config-devices.tsx';
import { CpuTemplateCard, MachineCard } from './config-machine.tsx';
import { RestartBanner } from './restart-banner.tsx';

export function ConfigTab({ vm }: { vm: Vm }) {
  return (
    <div className="flex flex-col gap-4">
      <RestartBanner vm={vm} />
      <MachineCard vm={vm} />
      <CpuTemplateCard vm={vm} />
      <DeviceCards vm={vm} />
      <Card title="Boot source">
        <DefinitionList
          items={[
            ['VMM', vm.vmm],
            ['Kernel image', <code key="k">{vm.kernel_image_id}</code>],
            ['Initrd image', vm.initrd_image_id ? <code key="i">{vm.initrd_image_id}</code> : 'none'],
            ['Root filesystem image', <code key="r">{vm.rootfs_image_id}</code>],
            ['Boot arguments', <code key="b">{vm.boot_args || '(default)'}</code>],
          ]}
        />
      </Card>
    </div>
  );
}
