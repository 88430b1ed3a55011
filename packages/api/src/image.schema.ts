import { type Static, Type } from 'typebox';
import {
  Description,
  IdParams,
  Name,
  Page,
  ProjectFilter,
  ProjectIdField,
  Sha256,
  Timestamp,
  Uuid,
} from './common.schema.ts';
import { OciImageSource, OciSourceFields } from './oci.schema.ts';
import { route } from './route.ts';

export const ImageKind = Type.Union([
  Type.Literal('kernel'),
  Type.Literal('initrd'),
  Type.Literal('rootfs'),
  Type.Literal('volume'),
]);
export type ImageKind = Static<typeof ImageKind>;
export const IMAGE_KINDS: ImageKind[] = ['kernel', 'initrd', 'rootfs', 'volume'];

/** A failed or aborted import leaves no image behind: its row is removed and an `import` error event says why. */
export const ImageState = Type.Union([Type.Literal('importing'), Type.Literal('ready')]);
export type ImageState = Static<typeof ImageState>;

export const ImageSource = Type.Union([
  Type.Object({ type: Type.Literal('path'), path: Type.String() }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('url'), url: Type.String() }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('upload') }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('blank'), size_mib: Type.Integer() }, { additionalProperties: false }),
  OciImageSource,
]);
export type ImageSource = Static<typeof ImageSource>;

/** A version's label, unique within its name (`name:tag`); `latest` is not one, it moves by itself. */
export const ImageTag = Type.String({
  pattern: '^(?!latest$)[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$',
  description: 'A label for this version, unique within the name (`name:tag`); `latest` is reserved',
});

export const Image = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    version: Type.Integer({ minimum: 1, description: 'This version of the name: 1 for the first import, then 2, 3…' }),
    tag: Type.Union([Type.String(), Type.Null()], { description: "This version's label (`name:tag`), if given" }),
    latest: Type.Boolean({
      description: 'Whether the name resolves to this version: the newest import once ready, or the one rolled back to',
    }),
    kind: ImageKind,
    description: Type.String(),
    project_id: Uuid,
    public: Type.Boolean({ description: 'Readable by every project (writable only by its own)' }),
    state: ImageState,
    sha256: Type.Union([Sha256, Type.Null()], {
      description: 'Content hash, computed by the manager; null while importing',
    }),
    size_bytes: Type.Union([Type.Integer(), Type.Null()]),
    bytes_done: Type.Integer({ description: 'Bytes received so far (import progress)' }),
    bytes_total: Type.Union([Type.Integer(), Type.Null()], { description: 'Expected size when known' }),
    source: ImageSource,
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);
export type Image = Static<typeof Image>;

export const ListImagesQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    kind: Type.Optional(ImageKind),
    state: Type.Optional(ImageState),
    q: Type.Optional(Type.String({ maxLength: 63, description: 'Substring of the name' })),
    name: Type.Optional(Type.String({ maxLength: 63, description: 'Exactly this name: its versions' })),
    latest: Type.Optional(Type.Boolean({ description: 'Only the version each name resolves to' })),
    project_id: Type.Optional(ProjectFilter),
  },
  { additionalProperties: false },
);
export type ListImagesQuery = Static<typeof ListImagesQuery>;

/** One flat object rather than a union, so a validation error names the exact field; the service checks which fields each type needs. */
export const CreateImageSource = Type.Object(
  {
    type: Type.Union([Type.Literal('path'), Type.Literal('url'), Type.Literal('blank'), Type.Literal('oci')]),
    path: Type.Optional(
      Type.String({ minLength: 1, maxLength: 4096, description: 'type path: a file under MANAGER_IMAGE_ROOT' }),
    ),
    url: Type.Optional(
      Type.String({ minLength: 8, maxLength: 2048, pattern: '^[hH][tT][tT][pP][sS]?://', description: 'type url' }),
    ),
    sha256: Type.Optional(
      Type.String({ pattern: '^[a-fA-F0-9]{64}$', description: 'type url: the expected content hash, verified' }),
    ),
    size_mib: Type.Optional(
      Type.Integer({ minimum: 8, maximum: 1048576, description: 'type blank: size of the ext4 volume' }),
    ),
    ...OciSourceFields,
  },
  { additionalProperties: false },
);
export type CreateImageSource = Static<typeof CreateImageSource>;

export const CreateImageRequest = Type.Object(
  {
    name: Name,
    kind: ImageKind,
    tag: Type.Optional(ImageTag),
    description: Type.Optional(Description),
    source: CreateImageSource,
    project_id: Type.Optional(ProjectIdField),
    public: Type.Optional(Type.Boolean({ description: 'Readable by every project (default false)' })),
  },
  { additionalProperties: false },
);
export type CreateImageRequest = Static<typeof CreateImageRequest>;

export const UploadImageQuery = Type.Object(
  {
    name: Name,
    kind: ImageKind,
    tag: Type.Optional(ImageTag),
    description: Type.Optional(Description),
    project_id: Type.Optional(ProjectIdField),
    public: Type.Optional(Type.Boolean({ description: 'Readable by every project (default false)' })),
  },
  { additionalProperties: false },
);
export type UploadImageQuery = Static<typeof UploadImageQuery>;

export const UpdateImageRequest = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Description),
    public: Type.Optional(Type.Boolean({ description: 'Readable by every project (default false)' })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateImageRequest = Static<typeof UpdateImageRequest>;

export const imageRoutes = {
  list: route({
    method: 'GET',
    path: '/v1/images',
    operationId: 'listImages',
    permission: 'image:read',
    summary: 'Images by name, with kind/state/name filters and cursor pagination',
    tag: 'images',
    auth: 'user',
    status: 200,
    query: ListImagesQuery,
    response: Page(Image),
  }),
  create: route({
    method: 'POST',
    path: '/v1/images',
    operationId: 'createImage',
    permission: 'image:write',
    summary:
      'Add an image, or the next version of a name, from a path under the image root (201), a URL or an OCI registry (202, importing) or a blank ext4 volume (201)',
    tag: 'images',
    auth: 'user',
    status: 201,
    body: CreateImageRequest,
    response: Image,
  }),
  upload: route({
    method: 'POST',
    path: '/v1/images/upload',
    operationId: 'uploadImage',
    permission: 'image:write',
    summary: 'Upload an image as a raw application/octet-stream body, streamed to the store',
    tag: 'images',
    auth: 'user',
    status: 201,
    query: UploadImageQuery,
    rawBody: true,
    response: Image,
  }),
  rollback: route({
    method: 'POST',
    path: '/v1/images/:id/rollback',
    operationId: 'rollbackImage',
    permission: 'image:write',
    summary: "Point the name's `latest` at this version (an older one: a rollback); VMs keep the version they use",
    tag: 'images',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Image,
  }),
  get: route({
    method: 'GET',
    path: '/v1/images/:id',
    operationId: 'getImage',
    permission: 'image:read',
    summary: 'One image, with import progress while it is importing',
    tag: 'images',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Image,
  }),
  update: route({
    method: 'PATCH',
    path: '/v1/images/:id',
    operationId: 'updateImage',
    permission: 'image:write',
    summary: 'Rename an image (all its versions) or edit the description of this version',
    tag: 'images',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: UpdateImageRequest,
    response: Image,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/images/:id',
    operationId: 'deleteImage',
    permission: 'image:write',
    summary:
      'Delete a version (409 naming the VMs and templates using it); `latest` falls back to the newest left; its file goes when no image shares it',
    tag: 'images',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
  content: route({
    method: 'GET',
    path: '/v1/images/:id/content',
    operationId: 'getImageContent',
    permission: 'image:read',
    summary: 'The image bytes, with HTTP range requests; users, or host agents with their secret and x-nqvm-host-id',
    tag: 'images',
    auth: 'user',
    status: 200,
    params: IdParams,
    rawResponse: true,
  }),
};
