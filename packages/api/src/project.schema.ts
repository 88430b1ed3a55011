import { type Static, Type } from 'typebox';
import { CursorQuery, Description, IdParams, Name, Page, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';

/** A user's role in one project (a global admin needs none). */
export const ProjectRole = Type.Union([Type.Literal('owner'), Type.Literal('operator'), Type.Literal('viewer')], {
  description:
    'owner: members and everything an operator does; operator: create, change, act on and delete; viewer: read',
});
export type ProjectRole = Static<typeof ProjectRole>;

export const Project = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    description: Type.String(),
    role: Type.Union([ProjectRole, Type.Null()], {
      description: "The caller's role here; null: a global admin's view",
    }),
    created_at: Timestamp,
  },
  { additionalProperties: false },
);
export type Project = Static<typeof Project>;

export const CreateProjectRequest = Type.Object(
  { name: Name, description: Type.Optional(Description) },
  { additionalProperties: false },
);
export const UpdateProjectRequest = Type.Object(
  { name: Type.Optional(Name), description: Type.Optional(Description) },
  { additionalProperties: false, minProperties: 1 },
);

export const ProjectMember = Type.Object(
  { user_id: Uuid, username: Type.String(), role: ProjectRole, created_at: Timestamp },
  { additionalProperties: false },
);
export type ProjectMember = Static<typeof ProjectMember>;

export const MemberParams = Type.Object({ id: Uuid, user_id: Uuid }, { additionalProperties: false });
export const SetMemberRequest = Type.Object({ role: ProjectRole }, { additionalProperties: false });

export const projectRoutes = {
  list: route({
    method: 'GET',
    path: '/v1/projects',
    operationId: 'listProjects',
    permission: 'project:read',
    summary: 'The projects the caller is a member of (a global admin: all), by name',
    tag: 'projects',
    auth: 'user',
    status: 200,
    query: Type.Object({ ...CursorQuery }, { additionalProperties: false }),
    response: Page(Project),
  }),
  create: route({
    method: 'POST',
    path: '/v1/projects',
    operationId: 'createProject',
    permission: 'project:write',
    summary: 'Create a project (admin)',
    tag: 'projects',
    auth: 'user',
    status: 201,
    body: CreateProjectRequest,
    response: Project,
  }),
  get: route({
    method: 'GET',
    path: '/v1/projects/:id',
    operationId: 'getProject',
    permission: 'project:read',
    summary: 'One project',
    tag: 'projects',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Project,
  }),
  update: route({
    method: 'PATCH',
    path: '/v1/projects/:id',
    operationId: 'updateProject',
    permission: 'project:write',
    summary: 'Rename a project or change its description (admin)',
    tag: 'projects',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: UpdateProjectRequest,
    response: Project,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/projects/:id',
    operationId: 'deleteProject',
    permission: 'project:write',
    summary:
      'Delete an empty project (admin); 409 `project_not_empty` while it holds VMs, images, templates or snapshots',
    tag: 'projects',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
  members: route({
    method: 'GET',
    path: '/v1/projects/:id/members',
    operationId: 'listProjectMembers',
    permission: 'project:read',
    summary: "A project's members and their roles",
    tag: 'projects',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Type.Object({ items: Type.Array(ProjectMember) }, { additionalProperties: false }),
  }),
  setMember: route({
    method: 'PUT',
    path: '/v1/projects/:id/members/:user_id',
    operationId: 'setProjectMember',
    permission: 'member:write',
    summary: "Add a user to a project or change its role there (the project's owners, admin)",
    tag: 'projects',
    auth: 'user',
    status: 200,
    params: MemberParams,
    body: SetMemberRequest,
    response: ProjectMember,
  }),
  removeMember: route({
    method: 'DELETE',
    path: '/v1/projects/:id/members/:user_id',
    operationId: 'removeProjectMember',
    permission: 'member:write',
    summary: "Remove a user from a project (the project's owners, admin)",
    tag: 'projects',
    auth: 'user',
    status: 204,
    params: MemberParams,
  }),
};
