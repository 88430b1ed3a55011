import { codeForStatus, type ProblemBody, statusOfCode, validationProblem, writeProblem } from '@nqvm/api';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../domain/errors.ts';

/** Sends a problem+json answer through the writer shared with the agent (`@nqvm/api`). */
export function sendProblem(
  reply: FastifyReply,
  req: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  extra: Partial<ProblemBody> = {},
): FastifyReply {
  return writeProblem(reply, { status, code, detail, requestId: String(req.id), field: extra.field, extra });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof DomainError) {
      return sendProblem(reply, req, err.status, err.code, err.message, {
        ...(err.field ? { field: err.field } : {}),
        ...(err.extra ?? {}),
      });
    }
    if (err.validation) return writeProblem(reply, validationProblem(err.validationContext, err.validation, req.id));
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = mapFastifyCode(err.code) ?? codeForStatus(status);
      const field = err.code?.startsWith('FST_ERR_CTP') ? 'body' : undefined;
      // A code has one status: a framework error with a status of its own is sent as its generic code's.
      return sendProblem(reply, req, statusOfCode(code) ?? 400, code, err.message, field ? { field } : {});
    }
    req.log.error({ err }, 'unhandled error');
    return sendProblem(reply, req, 500, 'internal', 'an internal error occurred; see the manager log');
  });

  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, req, 404, 'route_not_found', `no route ${req.method} ${req.url.split('?')[0]}`),
  );
}

function mapFastifyCode(code: string | undefined): string | undefined {
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'body_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'invalid_json';
    default:
      return undefined;
  }
}
