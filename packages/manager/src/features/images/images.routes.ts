import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { api, type CreateImageRequest, type UploadImageQuery } from '@nqvm/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Unauthorized } from '../../domain/errors.ts';
import { authHook, bearerOf, mount, mountJson, type RouteGuard, schemaOf } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import { sendProblem } from '../../http/problem.ts';
import { createIn, visibleProjects } from '../../http/scope.ts';
import { parseRange } from './images.range.ts';
import type { ImagesService } from './images.service.ts';

export const HOST_ID_HEADER = 'x-nqvm-host-id';

/** Users as usual; a host agent with its secret as Bearer and its id in `x-nqvm-host-id` (image downloads). */
function userOrHost(authn: Authenticator, route: RouteGuard) {
  const asUser = authHook(route, authn);
  return async function (this: FastifyInstance, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const hostId = req.headers[HOST_ID_HEADER];
    if (hostId === undefined) return asUser.call(this, req, reply, () => {});
    const secret = bearerOf(req);
    const p = typeof hostId === 'string' && secret ? await authn.host(hostId, secret) : null;
    if (!p) throw new Unauthorized('invalid host credentials');
    req.principal = p;
  };
}

export function imagesRoutes(app: FastifyInstance, authn: Authenticator, images: ImagesService) {
  // Upload bodies reach the handler as the raw request stream, never buffered.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  mount(app, authn, api.images.get, async ({ params }) => images.get(params.id));
  mount(app, authn, api.images.update, async ({ params, body, principal }) =>
    images.update(params.id, body, actorOf(principal)),
  );
  mount(app, authn, api.images.rollback, async ({ params, principal }) =>
    images.rollback(params.id, actorOf(principal)),
  );
  mount(app, authn, api.images.delete, async ({ params, principal }) => images.delete(params.id, actorOf(principal)));

  mountJson(app, authn, api.images.list, async ({ query, principal }) =>
    images.listJson(query, visibleProjects(principal)),
  );

  const create = api.images.create;
  app.route({
    method: create.method,
    url: create.path,
    schema: schemaOf(create),
    onRequest: authHook(create, authn),
    handler: async (req, reply) => {
      const body = req.body as CreateImageRequest;
      const projectId = await createIn(authn, req.principal, body.project_id, 'image:write');
      const { image, status } = await images.create({ ...body, project_id: projectId }, actorOf(req.principal));
      return reply.code(status).send(image);
    },
  });

  const upload = api.images.upload;
  app.route({
    method: upload.method,
    url: upload.path,
    schema: schemaOf(upload),
    onRequest: authHook(upload, authn),
    handler: async (req, reply) => {
      if (!req.headers['content-type']?.startsWith('application/octet-stream') || !req.body)
        return sendProblem(reply, req, 415, 'unsupported_media_type', 'send an application/octet-stream body', {
          field: 'headers.content-type',
        });
      const declared = req.headers['content-length'];
      try {
        const query = req.query as UploadImageQuery;
        const projectId = await createIn(authn, req.principal, query.project_id, 'image:write');
        const image = await images.upload(
          { ...query, project_id: projectId },
          req.body as Readable,
          declared !== undefined ? Number(declared) : undefined,
          actorOf(req.principal),
        );
        return reply.code(201).send(image);
      } catch (err) {
        // The rest of the body is not read: close the connection once the problem is sent.
        if (!req.raw.complete) reply.header('connection', 'close');
        throw err;
      }
    },
  });

  const content = api.images.content;
  app.route({
    method: content.method,
    url: content.path,
    schema: schemaOf(content),
    onRequest: userOrHost(authn, content),
    handler: async (req, reply) => serveContent(images, req, reply),
  });
}

async function serveContent(images: ImagesService, req: FastifyRequest, reply: FastifyReply) {
  const { path, size, sha256 } = await images.content((req.params as { id: string }).id);
  reply.header('accept-ranges', 'bytes').header('etag', `"${sha256}"`).type('application/octet-stream');
  const range = parseRange(req.headers.range, size);
  if (range.kind === 'invalid')
    return sendProblem(
      reply.header('content-range', `bytes */${size}`),
      req,
      416,
      'range_not_satisfiable',
      `the range does not fit a file of ${size} bytes`,
      { field: 'headers.range' },
    );
  if (range.kind === 'full') {
    reply.header('content-length', size);
    return reply.code(200).send(size === 0 ? '' : createReadStream(path));
  }
  reply.header('content-range', `bytes ${range.start}-${range.end}/${size}`);
  reply.header('content-length', range.end - range.start + 1);
  return reply.code(206).send(createReadStream(path, { start: range.start, end: range.end }));
}
