import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../domain/errors.ts';

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  field?: string;
  request_id: string;
  errors?: { field: string; message: string }[];
  [extra: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  507: 'Insufficient Storage',
};

export function sendProblem(
  reply: FastifyReply,
  req: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  extra: Partial<ProblemBody> = {},
): FastifyReply {
  const body: ProblemBody = {
    type: `https://nqvm.dev/problems/${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    code,
    detail,
    request_id: String(req.id),
    ...extra,
  };
  if (status === 429 && typeof extra.retry_after_s === 'number') reply.header('retry-after', extra.retry_after_s);
  return reply.code(status).type('application/problem+json').send(body);
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `body.vcpu`, `query.limit`, `body.drives.0.path`: the field a validation error is about. */
export function fieldOf(context: string | undefined, e: AjvError): string {
  const parts = e.instancePath.split('/').filter(Boolean);
  const extra =
    (e.params.missingProperty as string | undefined) ??
    (e.params.additionalProperty as string | undefined) ??
    (e.params.propertyName as string | undefined);
  if (extra) parts.push(extra);
  const where = context === 'querystring' ? 'query' : (context ?? 'body');
  return [where, ...parts].join('.');
}

function validationMessage(e: AjvError): string {
  if (e.keyword === 'additionalProperties') return `unknown field "${String(e.params.additionalProperty)}"`;
  if (e.keyword === 'required') return `is required`;
  return e.message ?? 'is invalid';
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof DomainError) {
      return sendProblem(reply, req, err.status, err.code, err.message, {
        ...(err.field ? { field: err.field } : {}),
        ...(err.extra ?? {}),
      });
    }
    if (err.validation) {
      const errors = (err.validation as AjvError[]).map((e) => ({
        field: fieldOf(err.validationContext, e),
        message: validationMessage(e),
      }));
      const first = errors[0]!;
      return sendProblem(reply, req, 400, 'validation_failed', `${first.field} ${first.message}`, {
        field: first.field,
        errors,
      });
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'body_too_large' : mapFastifyCode(err.code);
      const field = err.code?.startsWith('FST_ERR_CTP') ? 'body' : undefined;
      return sendProblem(reply, req, status, code, err.message, field ? { field } : {});
    }
    req.log.error({ err }, 'unhandled error');
    return sendProblem(reply, req, 500, 'internal', 'an internal error occurred; see the manager log');
  });

  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, req, 404, 'route_not_found', `no route ${req.method} ${req.url.split('?')[0]}`),
  );
}

function mapFastifyCode(code: string | undefined): string {
  switch (code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'invalid_json';
    default:
      return 'bad_request';
  }
}
