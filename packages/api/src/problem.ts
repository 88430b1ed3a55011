import { STATUS_TITLES } from './errors.ts';

/** An `application/problem+json` answer as the manager and the agents send it (RFC 9457 plus `code`). */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  field?: string;
  request_id: string;
  errors?: { field: string; message: string }[];
  [extra: string]: unknown;
}

export interface ProblemInput {
  status: number;
  code: string;
  detail: string;
  requestId: string;
  field?: string | undefined;
  /** More members (e.g. `errors`, `hosts`, `retry_after_s`); they never replace the standard ones. */
  extra?: Record<string, unknown> | undefined;
}

/** The part of a server's reply the writer needs (a Fastify reply has it). */
export interface ProblemReply {
  code(status: number): unknown;
  type(contentType: string): unknown;
  header(name: string, value: string | number): unknown;
  send(body: unknown): unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemBody(p: ProblemInput): ProblemBody {
  return {
    ...p.extra,
    type: `https://nqvm.dev/problems/${p.code}`,
    title: STATUS_TITLES[p.status] ?? 'Error',
    status: p.status,
    code: p.code,
    detail: p.detail,
    ...(p.field ? { field: p.field } : {}),
    request_id: p.requestId,
  };
}

/** The one problem+json writer of the manager and the agent. */
export function writeProblem<R extends ProblemReply>(reply: R, p: ProblemInput): R {
  const body = problemBody(p);
  if (p.status === 429 && typeof body.retry_after_s === 'number') reply.header('retry-after', body.retry_after_s);
  reply.code(p.status);
  reply.type(PROBLEM_CONTENT_TYPE);
  reply.send(body);
  return reply;
}

/** One schema violation as Ajv (Fastify's validator) reports it. */
export interface SchemaViolation {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `body.vcpu`, `query.limit`, `body.drives.0.path`: the field a validation error is about. */
export function fieldOf(context: string | undefined, e: SchemaViolation): string {
  const parts = e.instancePath.split('/').filter(Boolean);
  const extra =
    (e.params.missingProperty as string | undefined) ??
    (e.params.additionalProperty as string | undefined) ??
    (e.params.propertyName as string | undefined);
  if (extra) parts.push(extra);
  const where = context === 'querystring' ? 'query' : (context ?? 'body');
  return [where, ...parts].join('.');
}

function violationMessage(e: SchemaViolation): string {
  if (e.keyword === 'additionalProperties') return `unknown field "${String(e.params.additionalProperty)}"`;
  if (e.keyword === 'required') return `is required`;
  return e.message ?? 'is invalid';
}

/** The `validation_failed` problem (400) for a request that does not match its route's schema. */
export function validationProblem(
  context: string | undefined,
  violations: readonly SchemaViolation[],
  requestId: string,
): ProblemInput {
  const errors = violations.map((e) => ({ field: fieldOf(context, e), message: violationMessage(e) }));
  const first = errors[0] ?? { field: context ?? 'body', message: 'is invalid' };
  return {
    status: 400,
    code: 'validation_failed',
    detail: `${first.field} ${first.message}`,
    requestId,
    field: first.field,
    extra: { errors },
  };
}
