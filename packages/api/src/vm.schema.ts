import { type Static, Type } from 'typebox';
import { MetaData, UserData } from './cloud-init.schema.ts';
import {
  Description,
  IdParams,
  Labels,
  Name,
  Page,
  ProjectFilter,
  ProjectIdField,
  Timestamp,
  Uuid,
} from './common.schema.ts';
import { VmmKind } from './host.schema.ts';
import { route } from './route.ts';

export const VmState = Type.Union(
  [
    Type.Literal('creating'),
    Type.Literal('starting'),
    Type.Literal('running'),
    Type.Literal('paused'),
    Type.Literal('stopping'),
    Type.Literal('stopped'),
    Type.Literal('deleting'),
    Type.Literal('error'),
    Type.Literal('unknown'),
  ],
  { description: 'unknown: the host is unreachable, the VM is never started twice meanwhile' },
);
export type VmState = Static<typeof VmState>;
export const VM_STATES: VmState[] = [
  'creating',
  'starting',
  'running',
  'paused',
  'stopping',
  'stopped',
  'deleting',
  'error',
  'unknown',
];

export const RestartPolicy = Type.Union([Type.Literal('never'), Type.Literal('on-failure'), Type.Literal('always')]);
export type RestartPolicy = Static<typeof RestartPolicy>;

export const CpuTemplate = Type.Union([
  Type.Literal('C3'),
  Type.Literal('T2'),
  Type.Literal('T2S'),
  Type.Literal('T2CL'),
  Type.Literal('T2A'),
  Type.Literal('None'),
]);

const Tag = Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-zA-Z0-9._:/=-]+$' });
const Username = Type.String({ minLength: 1, maxLength: 32, pattern: '^[a-z_][a-z0-9_-]*$' });
const SshKey = Type.String({ minLength: 16, maxLength: 8192, pattern: '^(ssh-|ecdsa-|sk-)[^\\n\\r]+$' });
export const Mac = Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$', description: 'Lower-case MAC address' });

export const VmNic = Type.Object(
  {
    iface_id: Type.String(),
    network: Type.String(),
    mac: Mac,
    ip: Type.String({ description: 'Address with prefix, e.g. 10.88.0.5/24' }),
    gateway: Type.String(),
    tap: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const Vm = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    description: Type.String(),
    state: VmState,
    project_id: Uuid,
    host_id: Type.Union([Uuid, Type.Null()]),
    vmm: VmmKind,
    vcpu: Type.Integer(),
    mem_mib: Type.Integer(),
    smt: Type.Boolean(),
    cpu_template: CpuTemplate,
    kernel_image_id: Uuid,
    initrd_image_id: Type.Union([Uuid, Type.Null()]),
    rootfs_image_id: Uuid,
    boot_args: Type.String(),
    nics: Type.Array(VmNic),
    guest_ip: Type.Union([Type.String(), Type.Null()]),
    tags: Type.Array(Type.String()),
    owner: Type.String(),
    environment: Type.String(),
    restart_policy: RestartPolicy,
    username: Type.Union([Type.String(), Type.Null()]),
    template_id: Type.Union([Uuid, Type.Null()]),
    source_snapshot_id: Type.Union([Uuid, Type.Null()]),
    pid: Type.Union([Type.Integer(), Type.Null()]),
    last_error: Type.Union([Type.String(), Type.Null()]),
    restart_count: Type.Integer(),
    created_at: Timestamp,
    updated_at: Timestamp,
    booted_at: Type.Union([Timestamp, Type.Null()]),
    guest_ready_at: Type.Union([Timestamp, Type.Null()]),
    operation_id: Type.Optional(
      Type.String({
        format: 'uuid',
        description: 'The operation this request started (create and actions); follow it at /v1/operations/{id}',
      }),
    ),
  },
  { additionalProperties: false },
);
export type Vm = Static<typeof Vm>;

/** A VM's environment for its image's service: POSIX-style names, values without NUL. */
export const VmEnv = Type.Record(
  Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' }),
  Type.String({ maxLength: 8192, pattern: '^[^\\x00]*$' }),
  {
    maxProperties: 128,
    additionalProperties: false,
    description:
      "Environment of the service of a VM made from an OCI image, applied over the image's own `Env` (a VM key wins)",
  },
);
export type VmEnv = Static<typeof VmEnv>;

/** An image by name instead of id: `name` (the version `latest` points at), `name:tag` or `name@version`. */
export const ImageRef = Type.String({
  maxLength: 200,
  pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}(?::[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}|@[1-9][0-9]{0,8})?$',
  description:
    'An image by name: `name` (its latest version), `name:tag` or `name@version`; instead of the `_id` field',
});

export const CreateVmRequest = Type.Object(
  {
    name: Name,
    description: Type.Optional(Description),
    vcpu: Type.Integer({ minimum: 1, maximum: 32 }),
    mem_mib: Type.Integer({ minimum: 128, maximum: 65536 }),
    vmm: Type.Optional(VmmKind),
    smt: Type.Optional(Type.Boolean()),
    cpu_template: Type.Optional(CpuTemplate),
    kernel_image_id: Type.Optional(Uuid),
    initrd_image_id: Type.Optional(Uuid),
    rootfs_image_id: Type.Optional(Uuid),
    kernel_image: Type.Optional(ImageRef),
    initrd_image: Type.Optional(ImageRef),
    rootfs_image: Type.Optional(ImageRef),
    env: Type.Optional(VmEnv),
    boot_args: Type.Optional(Type.String({ maxLength: 1024, pattern: '^[\\x20-\\x7e]*$' })),
    network: Type.Optional(
      Type.Union([Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' }), Type.Null()], {
        description: 'Managed network name (default "default"); null for no network',
      }),
    ),
    mac: Type.Optional(Mac),
    tags: Type.Optional(Type.Array(Tag, { maxItems: 32, uniqueItems: true })),
    owner: Type.Optional(Type.String({ maxLength: 64 })),
    environment: Type.Optional(Type.String({ maxLength: 64 })),
    restart_policy: Type.Optional(RestartPolicy),
    username: Type.Optional(Username),
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    ssh_authorized_keys: Type.Optional(Type.Array(SshKey, { maxItems: 32 })),
    user_data: Type.Optional(UserData),
    meta_data: Type.Optional(MetaData),
    host_id: Type.Optional(Uuid),
    host_labels: Type.Optional(Labels),
    project_id: Type.Optional(ProjectIdField),
    start: Type.Optional(Type.Boolean({ default: true, description: 'Boot right after creation' })),
  },
  { additionalProperties: false },
);
export type CreateVmRequest = Static<typeof CreateVmRequest>;

export const UpdateVmRequest = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Description),
    tags: Type.Optional(Type.Array(Tag, { maxItems: 32, uniqueItems: true })),
    owner: Type.Optional(Type.String({ maxLength: 64 })),
    environment: Type.Optional(Type.String({ maxLength: 64 })),
    restart_policy: Type.Optional(RestartPolicy),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateVmRequest = Static<typeof UpdateVmRequest>;

export const VmSort = Type.Union([
  Type.Literal('name'),
  Type.Literal('-name'),
  Type.Literal('created_at'),
  Type.Literal('-created_at'),
  Type.Literal('state'),
  Type.Literal('-state'),
]);

export const ListVmsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 400 })),
    search: Type.Optional(Type.String({ maxLength: 100 })),
    state: Type.Optional(VmState),
    host_id: Type.Optional(Uuid),
    tag: Type.Optional(Tag),
    owner: Type.Optional(Type.String({ maxLength: 64 })),
    environment: Type.Optional(Type.String({ maxLength: 64 })),
    project_id: Type.Optional(ProjectFilter),
    sort: Type.Optional(VmSort),
  },
  { additionalProperties: false },
);

export const WaitQuery = Type.Object(
  {
    state: VmState,
    timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 600, default: 60, description: 'Seconds' })),
  },
  { additionalProperties: false },
);

export const VmAction = Type.Union([
  Type.Literal('start'),
  Type.Literal('stop'),
  Type.Literal('pause'),
  Type.Literal('resume'),
  Type.Literal('ctrl-alt-del'),
]);
export type VmAction = Static<typeof VmAction>;

const action = (name: VmAction, summary: string) =>
  route({
    method: 'POST',
    path: `/v1/vms/:id/${name}`,
    operationId: `${name.replace(/-(.)/g, (_, c: string) => c.toUpperCase())}Vm`,
    permission: 'vm:write',
    summary,
    tag: 'vms',
    auth: 'user',
    status: 202,
    params: IdParams,
    response: Vm,
  });

export const StopVmRequest = Type.Object(
  {
    force: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'Kill the VMM at once (SIGKILL) instead of an ACPI power-down: like pulling the plug, the guest gets no chance to shut down',
      }),
    ),
  },
  { additionalProperties: false },
);
export type StopVmRequest = Static<typeof StopVmRequest>;

export const BulkActionRequest = Type.Object(
  {
    ids: Type.Array(Uuid, { minItems: 1, maxItems: 500, uniqueItems: true }),
    action: Type.Union([...VmAction.anyOf, Type.Literal('delete')]),
  },
  { additionalProperties: false },
);

export const BulkActionResult = Type.Object(
  {
    results: Type.Array(
      Type.Object(
        {
          id: Uuid,
          ok: Type.Boolean(),
          state: Type.Optional(VmState),
          operation_id: Type.Optional(Uuid),
          code: Type.Optional(Type.String()),
          detail: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const vmRoutes = {
  bulk: route({
    method: 'POST',
    path: '/v1/vms/actions',
    operationId: 'bulkVmAction',
    permission: 'vm:write',
    summary: 'Apply one action to many VMs; answers with a result per VM',
    tag: 'vms',
    auth: 'user',
    status: 200,
    body: BulkActionRequest,
    response: BulkActionResult,
  }),
  create: route({
    method: 'POST',
    path: '/v1/vms',
    operationId: 'createVm',
    permission: 'vm:write',
    summary: 'Create a VM; answers at once with the VM in `creating`',
    tag: 'vms',
    auth: 'user',
    status: 202,
    body: CreateVmRequest,
    response: Vm,
  }),
  list: route({
    method: 'GET',
    path: '/v1/vms',
    operationId: 'listVms',
    permission: 'vm:read',
    summary: 'List VMs with search, filters, sort and cursor pagination',
    tag: 'vms',
    auth: 'user',
    status: 200,
    query: ListVmsQuery,
    response: Page(Vm),
  }),
  get: route({
    method: 'GET',
    path: '/v1/vms/:id',
    operationId: 'getVm',
    permission: 'vm:read',
    summary: 'One VM',
    tag: 'vms',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Vm,
  }),
  update: route({
    method: 'PATCH',
    path: '/v1/vms/:id',
    operationId: 'updateVm',
    permission: 'vm:write',
    summary:
      'Rename a VM or change its description, tags, owner, environment or restart policy; applies at once, in any state',
    tag: 'vms',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: UpdateVmRequest,
    response: Vm,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/vms/:id',
    operationId: 'deleteVm',
    permission: 'vm:write',
    summary: 'Stop and delete a VM with its disks, TAPs and addresses',
    tag: 'vms',
    auth: 'user',
    status: 202,
    params: IdParams,
    response: Vm,
  }),
  wait: route({
    method: 'GET',
    path: '/v1/vms/:id/wait',
    operationId: 'waitVm',
    permission: 'vm:read',
    summary: 'Wait until the VM reaches a state (or the timeout passes: 408)',
    tag: 'vms',
    auth: 'user',
    status: 200,
    params: IdParams,
    query: WaitQuery,
    response: Vm,
  }),
  start: action('start', 'Boot a stopped VM (cold boot from its own disk)'),
  stop: route({
    ...action(
      'stop',
      'ACPI power-down, then force after a timeout; `force: true` kills the VMM at once (the body may be left out)',
    ),
    body: StopVmRequest,
  }),
  pause: action('pause', 'Freeze the vCPUs'),
  resume: action('resume', 'Continue a paused VM'),
  ctrlAltDel: action('ctrl-alt-del', 'Send Ctrl-Alt-Del (QEMU: ACPI power button)'),
  instantiateTemplate: route({
    method: 'POST',
    path: '/v1/templates/:id/instantiate',
    operationId: 'instantiateTemplate',
    permission: 'vm:write',
    summary: 'Create a VM from a template, with optional overrides',
    tag: 'templates',
    auth: 'user',
    status: 202,
    params: IdParams,
    body: Type.Object(
      {
        name: Name,
        overrides: Type.Optional(Type.Partial(Type.Omit(CreateVmRequest, ['name']), { additionalProperties: false })),
      },
      { additionalProperties: false },
    ),
    response: Vm,
  }),
};
