import { type Static, Type } from 'typebox';
import { MetaData, UserData } from './cloud-init.schema.ts';
import { Description, IdParams, Name, Page, ProjectFilter, ProjectIdField, Timestamp, Uuid } from './common.schema.ts';
import { VmmKind } from './host.schema.ts';
import { route } from './route.ts';

export const VmSpecDrive = Type.Object(
  {
    image_id: Type.Optional(Uuid),
    size_mib: Type.Optional(Type.Integer({ minimum: 8, maximum: 1048576, description: 'A blank ext4 drive' })),
    read_only: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, description: 'Exactly one of image_id (a volume or rootfs image) or size_mib' },
);
export type VmSpecDrive = Static<typeof VmSpecDrive>;

export const VmSpecNic = Type.Object(
  {
    network: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]*$' })),
    mac: Type.Optional(Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' })),
  },
  { additionalProperties: false },
);
export type VmSpecNic = Static<typeof VmSpecNic>;

/** The VM create spec: what a template stores and what a VM is created from. */
export const VmSpec = Type.Object(
  {
    vcpu: Type.Integer({ minimum: 1, maximum: 32 }),
    mem_mib: Type.Integer({ minimum: 128, maximum: 65536 }),
    vmm: Type.Optional(VmmKind),
    kernel_image_id: Uuid,
    initrd_image_id: Type.Optional(Uuid),
    rootfs_image_id: Uuid,
    boot_args: Type.Optional(Type.String({ maxLength: 1024 })),
    drives: Type.Optional(Type.Array(VmSpecDrive, { maxItems: 16 })),
    nics: Type.Optional(Type.Array(VmSpecNic, { maxItems: 8 })),
    network: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]*$' })),
    tags: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-zA-Z0-9._:/=-]+$' }), { maxItems: 32 }),
    ),
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown())),
    user_data: Type.Optional(UserData),
    meta_data: Type.Optional(MetaData),
  },
  { additionalProperties: false },
);
export type VmSpec = Static<typeof VmSpec>;

export const Template = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    description: Type.String(),
    spec: VmSpec,
    project_id: Uuid,
    public: Type.Boolean({ description: 'Readable by every project (writable only by its own)' }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);
export type Template = Static<typeof Template>;

export const TemplateRequest = Type.Object(
  {
    name: Name,
    description: Type.Optional(Description),
    spec: VmSpec,
    project_id: Type.Optional(ProjectIdField),
    public: Type.Optional(Type.Boolean({ description: 'Readable by every project (default false)' })),
  },
  { additionalProperties: false },
);
export type TemplateRequest = Static<typeof TemplateRequest>;

export const ListTemplatesQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    project_id: Type.Optional(ProjectFilter),
  },
  { additionalProperties: false },
);

export const templateRoutes = {
  list: route({
    method: 'GET',
    path: '/v1/templates',
    operationId: 'listTemplates',
    permission: 'template:read',
    summary: 'Templates by name, with cursor pagination',
    tag: 'templates',
    auth: 'user',
    status: 200,
    query: ListTemplatesQuery,
    response: Page(Template),
  }),
  create: route({
    method: 'POST',
    path: '/v1/templates',
    operationId: 'createTemplate',
    permission: 'template:write',
    summary: 'Create a template; its images must exist, be ready and be of the right kind',
    tag: 'templates',
    auth: 'user',
    status: 201,
    body: TemplateRequest,
    response: Template,
  }),
  get: route({
    method: 'GET',
    path: '/v1/templates/:id',
    operationId: 'getTemplate',
    permission: 'template:read',
    summary: 'One template',
    tag: 'templates',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Template,
  }),
  replace: route({
    method: 'PUT',
    path: '/v1/templates/:id',
    operationId: 'replaceTemplate',
    permission: 'template:write',
    summary: 'Replace a template (name, description and spec)',
    tag: 'templates',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: TemplateRequest,
    response: Template,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/templates/:id',
    operationId: 'deleteTemplate',
    permission: 'template:write',
    summary: 'Delete a template',
    tag: 'templates',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
};
