import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { codeForStatus, ERROR_CODES, STATUS_TITLES, statusOfCode } from '../../src/errors.ts';
import { problemBody, validationProblem } from '../../src/problem.ts';
import { agentApi, allAgentRoutes, allRoutes, guestApi } from '../../src/routes.ts';
import { emittedCodes } from '../support/emitted-codes.ts';

const packages = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const sources = [join(packages, 'manager', 'src'), join(packages, 'agent', 'src')];

/**
 * Places that send a code they did not make: each forwards codes checked where they are made. Anything else
 * must name its status and code literally.
 */
const FORWARDERS: Record<string, string> = {
  'manager/src/domain/errors.ts': 'NotFound / Conflict / BadRequest / Unprocessable: codes come from each call site',
  'manager/src/http/scope.ts':
    "answers a resource of another project as its kind's <kind>_not_found, made literally by that kind's service",
  'manager/src/http/problem.ts': 'sends DomainError codes and the framework codes of codeForStatus',
  'manager/src/features/vms/agent-client.ts': "passes an agent's own 4xx code through",
  'agent/src/mount.ts': 'sends AgentError codes and the framework codes of codeForStatus',
  'agent/src/functions/function-relay.ts': "passes a guest agent's own 4xx code through when it is catalogued",
};

describe('error code catalogue', () => {
  it('gives every code one status, an HTTP error status with a title, and a meaning', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(code, code).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(info.status >= 400 && info.status <= 599, code).toBe(true);
      expect(STATUS_TITLES[info.status], `${code} ${info.status}`).toBeDefined();
      expect(info.meaning.length, code).toBeGreaterThan(5);
      expect(statusOfCode(code)).toBe(info.status);
    }
    expect(statusOfCode('toString')).toBeUndefined();
  });

  it('the manager and the agents send only catalogued codes, each with its catalogued status', () => {
    const sites = sources.flatMap((dir) => emittedCodes(dir, packages));
    expect(sites.length).toBeGreaterThan(100);
    const wrong: string[] = [];
    for (const s of sites) {
      const where = `${s.file}:${s.line} ${s.text.replace(/\s+/g, ' ')}`;
      if (s.code === undefined || s.status === undefined || s.code.includes('*')) {
        if (!FORWARDERS[s.file]) wrong.push(`not a literal status and code: ${where}`);
        continue;
      }
      const status = statusOfCode(s.code);
      if (status === undefined) wrong.push(`${s.code} is not in ERROR_CODES (packages/api/src/errors.ts): ${where}`);
      else if (status !== s.status)
        wrong.push(`${s.code} is ${status} in the catalogue, sent as ${s.status}: ${where}`);
    }
    expect(wrong).toEqual([]);
  }, 60_000); // parsing every source file of two packages takes a few seconds on a busy machine

  it('framework errors map to catalogued codes, and the writer fills the problem from the code', () => {
    for (const status of [400, 401, 403, 404, 405, 406, 408, 409, 413, 415, 416, 418, 422, 429, 431, 500, 503])
      expect(statusOfCode(codeForStatus(status)), String(status)).toBeDefined();
    for (const code of ['body_too_large', 'unsupported_media_type', 'invalid_json', 'validation_failed'])
      expect(statusOfCode(code), code).toBeDefined();
    const v = validationProblem(
      'querystring',
      [{ instancePath: '', keyword: 'required', params: { missingProperty: 'x' } }],
      'r1',
    );
    expect(problemBody(v)).toEqual({
      type: 'https://nqvm.dev/problems/validation_failed',
      title: 'Bad Request',
      status: 400,
      code: 'validation_failed',
      detail: 'query.x is required',
      field: 'query.x',
      request_id: 'r1',
      errors: [{ field: 'query.x', message: 'is required' }],
    });
    const p = problemBody({
      status: 409,
      code: 'vm_busy',
      detail: 'd',
      requestId: 'r',
      extra: { status: 200, state: 'x' },
    });
    expect([p.status, p.state]).toEqual([409, 'x']);
  });
});

describe('internal contracts', () => {
  it('keep the agent and guest routes out of the public OpenAPI document, with unique operation ids', () => {
    const publicPaths = new Set(allRoutes().map((r) => r.path));
    const internal = [...allAgentRoutes(), ...Object.values(guestApi).flatMap((g) => Object.values(g))];
    for (const r of internal) expect(publicPaths.has(r.path), r.path).toBe(false);
    const ids = [...allRoutes(), ...internal].map((r) => r.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('give every agent route a timeout and a response (a schema, a stream, a WebSocket or 204)', () => {
    for (const r of allAgentRoutes()) {
      expect(r.timeoutMs, r.operationId).toBeGreaterThan(0);
      expect(!!r.response || !!r.rawResponse || !!r.websocket || r.status === 204, r.operationId).toBe(true);
      expect(r.path.startsWith('/agent/v1/'), r.path).toBe(true);
    }
    expect(agentApi.vms.boot.auth).toBe('host');
  });
});
