import type {
  CreateFunctionRequest,
  FunctionResource,
  Invocation,
  InvocationState,
  RuntimeName,
  UpdateFunctionRequest,
} from '@nqvm/api';
import { DEFAULT_PROJECT_ID } from '../../db/schema.ts';
import { Conflict, NotFound, Unprocessable } from '../../domain/errors.ts';
import type { SecretBox } from '../../security/secret-box.ts';
import { hashToken } from '../../security/tokens.ts';
import type { EventsService } from '../events/events.service.ts';
import type { Tx } from '../operations/operations.repository.ts';
import type { FunctionRow, FunctionsRepository, NewVersion, VersionRow } from './functions.repository.ts';
import { decodeCursor, page, toFunction, toInvocation, toVersion } from './functions.view.ts';

/** What runs invocations and keeps warm snapshots and instances (functions.runner.ts). */
export interface FunctionEngine {
  invoke(
    fn: FunctionRow,
    version: VersionRow,
    event: unknown,
    opts: { trigger: 'api' | 'http'; wait: boolean },
  ): Promise<Invocation>;
  /** A version became current: build its warm snapshot; older versions' snapshots go once unused. */
  versionAdded(fn: FunctionRow, version: VersionRow): void;
  /** Before the rows go: every snapshot, pooled instance and running instance of the function. */
  removeFunction(fn: FunctionRow): Promise<void>;
}

const DEFAULT_FILE: Record<RuntimeName, string> = { node20: 'index.js', python3: 'main.py' };
const DEFAULT_HANDLER: Record<RuntimeName, string> = { node20: 'index.handler', python3: 'main.handler' };
const HANDLER_EXTENSIONS: Record<RuntimeName, string[]> = { node20: ['.js', '.mjs', '.cjs'], python3: ['.py'] };
const MAX_CODE_BYTES = 1024 * 1024;
/** Relative, `/`-separated, no `.` or `..` segment (the guest checks again before it writes). */
const SAFE_PATH = /^(?!\.{1,2}(\/|$))(?!.*\/\.{1,2}(\/|$))[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** The version's code from a request: one file (`code`) or a file map (`files`), holding the handler's file. */
function codeOf(
  runtime: RuntimeName,
  req: { code?: string; files?: Record<string, string>; handler?: string },
  current?: VersionRow,
): { files: Record<string, string>; handler: string } {
  if (req.code !== undefined && req.files !== undefined)
    throw new Unprocessable('function_code_invalid', 'give either code or files, not both', 'body.code');
  const files =
    req.code !== undefined ? { [DEFAULT_FILE[runtime]]: req.code } : (req.files ?? current?.files ?? undefined);
  if (!files) throw new Unprocessable('function_code_invalid', 'the function needs code (or files)', 'body.code');
  for (const path of Object.keys(files))
    if (!SAFE_PATH.test(path) || path.length > 255)
      throw new Unprocessable(
        'function_code_invalid',
        `the file path ${JSON.stringify(path)} is not allowed`,
        'body.files',
      );
  const bytes = Object.entries(files).reduce((n, [p, c]) => n + Buffer.byteLength(p) + Buffer.byteLength(c), 0);
  if (bytes > MAX_CODE_BYTES)
    throw new Unprocessable('function_code_invalid', 'the code is larger than 1 MiB together', 'body.files');
  const handler = req.handler ?? current?.handler ?? DEFAULT_HANDLER[runtime];
  const module = handler.slice(0, handler.lastIndexOf('.'));
  if (!HANDLER_EXTENSIONS[runtime].some((ext) => Object.hasOwn(files, module + ext)))
    throw new Unprocessable(
      'function_code_invalid',
      `the handler ${handler} needs the file ${module}${HANDLER_EXTENSIONS[runtime].join(' or ')}`,
      'body.handler',
    );
  return { files, handler };
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Refuses, in the transaction of its insert, a function past its project's quota. */
export interface FunctionQuotaCheck {
  enforceIn(tx: Tx, projectId: string, adds: { functions: number }): Promise<void>;
}

export class FunctionsService {
  constructor(
    private readonly repo: FunctionsRepository,
    private readonly secrets: SecretBox,
    private readonly events: EventsService,
    private readonly engine: FunctionEngine,
  ) {}

  private quota: FunctionQuotaCheck | undefined;

  /** Function creates count against their project's `functions` quota (quotas feature). */
  useQuotaCheck(check: FunctionQuotaCheck): void {
    this.quota = check;
  }

  private sealAll(plain: Record<string, string | null>, current: Record<string, string> = {}) {
    const out = { ...current };
    for (const [k, v] of Object.entries(plain)) {
      if (v === null) delete out[k];
      else out[k] = this.secrets.seal(v);
    }
    return out;
  }

  async row(id: string): Promise<{ fn: FunctionRow; version: VersionRow }> {
    const fn = await this.repo.get(id);
    const version = fn && (await this.repo.version(fn.id, fn.version));
    if (!fn || !version) throw new NotFound('function', id);
    return { fn, version };
  }

  /** `projects`: the projects the caller sees (null: all, a global admin's). */
  async list(q: { limit?: number; cursor?: string; project_id?: string }, projects: string[] | null = null) {
    const limit = q.limit ?? 50;
    const after = decodeCursor(q.cursor, /^[a-z0-9-]{1,63}$/);
    const rows = await this.repo.list(limit + 1, after, q.project_id, projects);
    const withVersions = await Promise.all(
      rows.map(async (fn) => ({ fn, version: await this.repo.version(fn.id, fn.version) })),
    );
    return page(
      withVersions.filter((r): r is { fn: FunctionRow; version: VersionRow } => r.version !== undefined),
      limit,
      (r) => toFunction(r.fn, r.version),
      (r) => r.fn.name,
    );
  }

  byName(name: string): Promise<FunctionRow | undefined> {
    return this.repo.byName(name);
  }

  async get(id: string): Promise<FunctionResource> {
    const { fn, version } = await this.row(id);
    return toFunction(fn, version);
  }

  async create(req: CreateFunctionRequest, actor: string): Promise<FunctionResource> {
    const code = codeOf(req.runtime, req);
    // The route checked the caller's project (createIn): it exists and the caller may write there.
    const projectId = req.project_id ?? DEFAULT_PROJECT_ID;
    const made = await this.repo.insert(
      {
        projectId,
        name: req.name,
        description: req.description ?? '',
        runtime: req.runtime,
        concurrency: req.concurrency ?? 4,
        queueLimit: req.queue_limit ?? 16,
        httpEnabled: req.http_enabled ?? false,
        httpTokenHash: req.http_token ? hashToken(req.http_token) : null,
      },
      {
        runtime: req.runtime,
        ...code,
        vcpu: req.vcpu ?? 1,
        memMib: req.mem_mib ?? 256,
        timeoutMs: req.timeout_ms ?? 10_000,
        network: req.network ?? false,
        env: req.env ?? {},
        secretsEnc: this.sealAll(req.secrets ?? {}),
      },
      this.quota && ((tx) => this.quota!.enforceIn(tx, projectId, { functions: 1 })),
    );
    if (!made) throw new Conflict('function_name_taken', `a function named ${req.name} exists`, 'body.name');
    await this.events.record({
      actor,
      resourceType: 'function',
      resourceId: made.fn.id,
      action: 'create',
      detail: { name: made.fn.name, runtime: made.fn.runtime, version: 1 },
    });
    this.engine.versionAdded(made.fn, made.version);
    return toFunction(made.fn, made.version);
  }

  async update(id: string, req: UpdateFunctionRequest, actor: string): Promise<FunctionResource> {
    const { fn, version: cur } = await this.row(id);
    const code = codeOf(fn.runtime, req, cur);
    const next: NewVersion = {
      runtime: fn.runtime,
      ...code,
      vcpu: req.vcpu ?? cur.vcpu,
      memMib: req.mem_mib ?? cur.memMib,
      timeoutMs: req.timeout_ms ?? cur.timeoutMs,
      network: req.network ?? cur.network,
      env: req.env ?? cur.env,
      secretsEnc: req.secrets ? this.sealAll(req.secrets, cur.secretsEnc) : cur.secretsEnc,
    };
    const changed =
      req.secrets !== undefined ||
      !sameJson(
        [next.files, next.handler, next.vcpu, next.memMib, next.timeoutMs, next.network, next.env],
        [cur.files, cur.handler, cur.vcpu, cur.memMib, cur.timeoutMs, cur.network, cur.env],
      );
    const updated = await this.repo.update(
      id,
      {
        ...(req.description !== undefined ? { description: req.description } : {}),
        ...(req.concurrency !== undefined ? { concurrency: req.concurrency } : {}),
        ...(req.queue_limit !== undefined ? { queueLimit: req.queue_limit } : {}),
        ...(req.http_enabled !== undefined ? { httpEnabled: req.http_enabled } : {}),
        ...(req.http_token !== undefined
          ? { httpTokenHash: req.http_token === null ? null : hashToken(req.http_token) }
          : {}),
      },
      changed ? next : undefined,
    );
    if (!updated) throw new NotFound('function', id);
    const version = updated.version ?? cur;
    await this.events.record({
      actor,
      resourceType: 'function',
      resourceId: id,
      action: 'update',
      detail: { fields: Object.keys(req), version: version.version },
    });
    if (updated.version) this.engine.versionAdded(updated.fn, updated.version);
    return toFunction(updated.fn, version);
  }

  async delete(id: string, actor: string): Promise<void> {
    const { fn } = await this.row(id);
    await this.engine.removeFunction(fn);
    if (!(await this.repo.delete(id))) throw new NotFound('function', id);
    await this.events.record({ actor, resourceType: 'function', resourceId: id, action: 'delete' });
  }

  async versions(id: string, q: { limit?: number; cursor?: string }) {
    await this.row(id);
    const limit = q.limit ?? 50;
    const before = decodeCursor(q.cursor, /^[0-9]{1,9}$/);
    const rows = await this.repo.versions(id, limit + 1, before === undefined ? undefined : Number(before));
    return page(rows, limit, toVersion, (r) => String(r.version));
  }

  async invoke(id: string, event: unknown, opts: { trigger: 'api' | 'http'; wait: boolean }): Promise<Invocation> {
    const { fn, version } = await this.row(id);
    return this.engine.invoke(fn, version, event, opts);
  }

  async invocations(id: string, q: { limit?: number; cursor?: string; state?: InvocationState }) {
    await this.row(id);
    const limit = q.limit ?? 50;
    const before = decodeCursor(q.cursor, /^[0-9]{1,19}$/);
    const rows = await this.repo.invocations(id, limit + 1, before === undefined ? undefined : BigInt(before), q.state);
    return page(rows, limit, toInvocation, (r) => r.seq.toString());
  }

  async invocation(id: string): Promise<Invocation> {
    const row = await this.repo.invocation(id);
    if (!row) throw new NotFound('invocation', id);
    return toInvocation(row);
  }
}
