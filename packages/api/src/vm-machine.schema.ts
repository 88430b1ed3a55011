import { Type } from 'typebox';
import { IdParams } from './common.schema.ts';
import { route } from './route.ts';
import { CpuTemplate } from './vm.schema.ts';
import { Changed, deviceRoute } from './vm-device-common.schema.ts';

export const HugePages = Type.Union([Type.Literal('None'), Type.Literal('2M')]);
export const MachineConfig = Type.Object(
  {
    vcpu: Type.Integer(),
    mem_mib: Type.Integer(),
    smt: Type.Boolean(),
    track_dirty_pages: Type.Boolean(),
    huge_pages: HugePages,
  },
  { additionalProperties: false },
);
export const UpdateMachineConfigRequest = Type.Object(
  {
    vcpu: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
    mem_mib: Type.Optional(Type.Integer({ minimum: 128, maximum: 65536 })),
    smt: Type.Optional(Type.Boolean()),
    track_dirty_pages: Type.Optional(Type.Boolean()),
    huge_pages: Type.Optional(HugePages),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const CpuConfigRequest = Type.Object(
  {
    template: CpuTemplate,
    cpuid_modifiers: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: 64 })),
    msr_modifiers: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: 64 })),
  },
  { additionalProperties: false },
);
export const CpuConfig = Type.Object({ template: CpuTemplate }, { additionalProperties: false });
export const machineRoutes = {
  machineConfig: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'PATCH',
    path: '/v1/vms/:id/machine-config',
    operationId: 'updateMachineConfig',
    summary: 'vCPUs, memory, SMT, dirty page tracking, huge pages (stopped VM only)',
    status: 200,
    params: IdParams,
    body: UpdateMachineConfigRequest,
    response: Changed(MachineConfig),
  }),
  cpuConfig: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'PUT',
    path: '/v1/vms/:id/cpu-config',
    operationId: 'putCpuConfig',
    summary: 'CPU template (stopped VM only)',
    status: 200,
    params: IdParams,
    body: CpuConfigRequest,
    response: Changed(CpuConfig),
  }),
};
