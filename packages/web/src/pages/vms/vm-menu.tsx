import { api, type Vm, type VmState } from '@nqvm/api';
import { useQueryClient } from '@tanstack/react-query';
import { DropdownMenu } from 'radix-ui';
import { lazy, type ReactNode, Suspense, useState } from 'react';
import { useNavigate } from 'react-router';
import { useToast } from '../../components/toast.tsx';
import { Button } from '../../components/ui.tsx';
import { call, errorMessage } from '../../lib/api.ts';
import { useCan } from '../../lib/session.tsx';
import { type Goal, trackTask } from '../../lib/tasks.ts';
import { type BulkAction, vmAction } from './vm-actions.ts';

const VmDialogs = lazy(() => import('./vm-dialogs.tsx'));

const ALIVE: VmState[] = ['creating', 'starting', 'running', 'paused', 'stopping', 'stopped', 'error', 'unknown'];

/** What each everyday action needs from the VM's state, what it does, and where it ends. */
export const LIFECYCLE: {
  action: BulkAction | 'restart' | 'force-off';
  label: string;
  when: VmState[];
  explain: string;
  goal: Goal;
  done: string;
  danger?: boolean;
}[] = [
  {
    action: 'start',
    label: 'Start',
    when: ['stopped', 'error'],
    explain: 'Boots the VM from its own disk.',
    goal: { states: ['running'] },
    done: 'is running',
  },
  {
    action: 'stop',
    label: 'Stop',
    when: ['running', 'paused', 'starting', 'unknown'],
    explain: 'ACPI power-down; the VMM is forced off if the guest does not stop within the timeout.',
    goal: { states: ['stopped'] },
    done: 'is stopped',
  },
  {
    action: 'force-off',
    label: 'Force off',
    when: ['running', 'paused', 'starting', 'unknown'],
    explain:
      'Kills the VMM at once, like pulling the plug: the guest gets no chance to shut down and unwritten data in it is lost.',
    goal: { states: ['stopped'] },
    done: 'is off',
    danger: true,
  },
  {
    action: 'restart',
    label: 'Reboot',
    when: ['running', 'paused'],
    explain:
      'Stops the VM (ACPI power-down, forced off after the stop timeout) and starts it again from its disk: a cold reboot that also applies boot-time settings.',
    goal: { states: ['running'] },
    done: 'is running again',
  },
  {
    action: 'pause',
    label: 'Pause',
    when: ['running'],
    explain: 'Freezes the vCPUs; memory stays allocated.',
    goal: { states: ['paused'] },
    done: 'is paused',
  },
  {
    action: 'resume',
    label: 'Resume',
    when: ['paused'],
    explain: 'Continues a paused VM.',
    goal: { states: ['running'] },
    done: 'is running again',
  },
  {
    action: 'ctrl-alt-del',
    label: 'Ctrl-Alt-Del',
    when: ['running'],
    explain: 'Sends Ctrl-Alt-Del (QEMU: the ACPI power button); the guest decides what to do.',
    goal: { states: ['running', 'stopped'] },
    done: 'received Ctrl-Alt-Del',
  },
  {
    action: 'delete',
    label: 'Delete',
    when: ALIVE,
    explain: 'Stops the VM and deletes its disks, TAPs and addresses. This cannot be undone.',
    goal: { gone: true },
    done: 'is deleted',
    danger: true,
  },
];

export type Lifecycle = (typeof LIFECYCLE)[number];

export type Dialog =
  | { kind: 'confirm'; action: (typeof LIFECYCLE)[number] }
  | { kind: 'clone' }
  | { kind: 'template' }
  | { kind: 'snapshot' }
  | { kind: 'edit' }
  | null;

/** Everyday actions of one VM: a menu (list rows, the VM page) and the dialogs it opens. */
export function VmActionMenu({ vm, label }: { vm: Vm; label?: ReactNode }) {
  const [dialog, setDialog] = useState<Dialog>(null);
  const can = useCan();
  const item =
    'flex cursor-default items-center rounded px-2 py-1.5 text-sm outline-none select-none data-[disabled]:text-slate-400 data-[highlighted]:bg-blue-50 data-[highlighted]:text-blue-800';
  if (!can('vm:write')) return null;
  return (
    <>
      <DropdownMenu.Root>
        <DropdownMenu.Trigger asChild>
          <Button variant="secondary" aria-label={label ? undefined : `Actions for ${vm.name}`}>
            {label ?? '⋯'}
          </Button>
        </DropdownMenu.Trigger>
        <DropdownMenu.Portal>
          <DropdownMenu.Content
            align="end"
            sideOffset={4}
            className="z-50 min-w-48 rounded-md border border-slate-200 bg-white p-1 shadow-lg"
          >
            {LIFECYCLE.filter((a) => a.action !== 'delete').map((a) => (
              <DropdownMenu.Item
                key={a.action}
                className={item}
                disabled={!a.when.includes(vm.state)}
                onSelect={() => setDialog({ kind: 'confirm', action: a })}
              >
                {a.label}
              </DropdownMenu.Item>
            ))}
            <DropdownMenu.Separator className="my-1 h-px bg-slate-200" />
            <DropdownMenu.Item
              className={item}
              disabled={!['running', 'stopped'].includes(vm.state)}
              onSelect={() => setDialog({ kind: 'clone' })}
            >
              Clone…
            </DropdownMenu.Item>
            <DropdownMenu.Item
              className={item}
              disabled={vm.state !== 'running'}
              onSelect={() => setDialog({ kind: 'snapshot' })}
            >
              Snapshot…
            </DropdownMenu.Item>
            <DropdownMenu.Item className={item} onSelect={() => setDialog({ kind: 'template' })}>
              Save as template…
            </DropdownMenu.Item>
            <DropdownMenu.Item
              className={item}
              disabled={vm.state === 'deleting'}
              onSelect={() => setDialog({ kind: 'edit' })}
            >
              Rename and edit details…
            </DropdownMenu.Item>
            <DropdownMenu.Separator className="my-1 h-px bg-slate-200" />
            <DropdownMenu.Item
              className={`${item} text-red-700`}
              disabled={vm.state === 'deleting'}
              onSelect={() => setDialog({ kind: 'confirm', action: LIFECYCLE.find((a) => a.action === 'delete')! })}
            >
              Delete…
            </DropdownMenu.Item>
          </DropdownMenu.Content>
        </DropdownMenu.Portal>
      </DropdownMenu.Root>
      {dialog ? (
        <Suspense fallback={null}>
          <VmDialogs vm={vm} dialog={dialog} close={() => setDialog(null)} />
        </Suspense>
      ) : null}
    </>
  );
}

async function restartAfterStop(vm: Vm): Promise<Vm> {
  const params = { params: { id: vm.id } };
  await call(api.vms.wait, { ...params, query: { state: 'stopped', timeout: 600 }, timeoutMs: null });
  return call(api.vms.start, params);
}

/** Runs a lifecycle action after a confirm, follows it to its end in the task panel. */
export function useRunAction(vm: Vm) {
  const qc = useQueryClient();
  const toast = useToast();
  const navigate = useNavigate();
  return async (a: Lifecycle) => {
    if (a.action === 'restart') {
      await vmAction(vm.id, 'stop');
      toast(`${a.label} ${vm.name}: stopping`);
      // The start follows in the background once the stop has ended; the task panel shows the start's operation.
      void restartAfterStop(vm)
        .then((started) => trackTask(`${a.label} ${vm.name}`, vm.id, a.goal, started.operation_id))
        .catch((err: unknown) => toast(`${a.label} ${vm.name} failed: ${errorMessage(err)}`, 'error'));
      await qc.invalidateQueries({ queryKey: ['vm', vm.id] });
      return;
    }
    const answer = await vmAction(vm.id, a.action);
    toast(`${a.label} ${vm.name}: accepted`);
    trackTask(`${a.label} ${vm.name}`, vm.id, a.goal, answer.operation_id);
    await qc.invalidateQueries({ queryKey: ['vm', vm.id] });
    await qc.invalidateQueries({ queryKey: ['vms'] });
    if (a.action === 'delete' && location.pathname.startsWith(`/vms/${vm.id}`)) navigate('/vms');
  };
}
