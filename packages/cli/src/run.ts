import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApiError, api, NqvmClient } from '@nqvm/api';
import { last, on, type ParsedArgv } from './argv.ts';
import type { Command } from './catalog.ts';
import type { CliConfig } from './config.ts';
import { parseValues, setPath, UsageError } from './flags.ts';
import { argName } from './help.ts';
import { type OutputMode, render } from './output.ts';
import { Progress } from './progress.ts';
import { collectionOf, collectionOfField, resolveId } from './resolve.ts';

export interface Io {
  out(s: string): void;
  /** Errors and diagnostics: stderr, so `nqvm … --json | jq` never parses a failure. */
  err(s: string): void;
  readStdin(): Promise<string>;
  /** Raw bytes to stdout (downloads, log streams); defaults to out() of the text. */
  write?(chunk: Uint8Array): void;
  /** stderr is a terminal: progress bars are drawn only then. */
  stderrIsTTY?: boolean;
  /** Draws on stderr without a newline (progress bars). */
  errRaw?(s: string): void;
}

/** Flags every command takes; everything else must be one of the command's own. */
export const GLOBAL = new Set([
  'json',
  'yaml',
  'quiet',
  'all',
  'profile',
  'url',
  'token',
  'body',
  'help',
  'file',
  'output',
  'wait',
]);

export function outputMode(p: ParsedArgv): OutputMode {
  if (on(p, 'json')) return 'json';
  if (on(p, 'yaml')) return 'yaml';
  if (on(p, 'quiet')) return 'quiet';
  return 'table';
}

export function clientFor(cfg: CliConfig): NqvmClient {
  return new NqvmClient({ baseUrl: cfg.url, token: cfg.token });
}

/** Path params, query and body of a command, typed by its schemas, names resolved to ids. */
export async function requestOf(c: Command, args: string[], p: ParsedArgv, client: NqvmClient) {
  const known = new Set(c.flags.map((f) => f.flag));
  for (const name of p.flags.keys())
    if (!known.has(name) && !GLOBAL.has(name))
      throw new UsageError(`unknown flag --${name} for "${c.group} ${c.verb}" (see nqvm ${c.group} ${c.verb} --help)`);
  if (args.length > c.positionals.length)
    throw new UsageError(`"${c.group} ${c.verb}" takes ${c.positionals.length} argument(s), got ${args.length}`);
  const params: Record<string, string> = {};
  for (const [i, name] of c.positionals.entries()) {
    const given = args[i];
    if (given === undefined) throw new UsageError(`"${c.group} ${c.verb}" needs ${argName(c)(name)}`);
    params[name] = name === 'id' ? await resolveId(client, collectionOf(c.def.path, name), given) : given;
  }
  const bodyFlag = last(p, 'body');
  let body: Record<string, unknown> = {};
  if (bodyFlag !== undefined) {
    if (!c.def.body) throw new UsageError(`"${c.group} ${c.verb}" takes no body`);
    body = JSON.parse(
      bodyFlag.startsWith('@') ? (await import('node:fs')).readFileSync(bodyFlag.slice(1), 'utf8') : bodyFlag,
    );
  }
  const query: Record<string, unknown> = {};
  for (const f of c.flags) {
    const raws = p.flags.get(f.flag);
    if (!raws) continue;
    let value = parseValues(f.schema, raws, f.flag);
    const collection = collectionOfField(f.path[f.path.length - 1]!);
    if (collection && typeof value === 'string') value = await resolveId(client, collection, value);
    setPath(f.in === 'body' ? body : query, f.path, value);
  }
  if (c.def.body && !c.def.rawBody && bodyFlag === undefined) {
    const missing = c.flags.filter(
      (f) => f.in === 'body' && f.required && f.path.length === 1 && !(f.path[0]! in body),
    );
    if (missing.length)
      throw new UsageError(`"${c.group} ${c.verb}" needs ${missing.map((f) => `--${f.flag}`).join(', ')}`);
  }
  return {
    params: c.positionals.length ? params : undefined,
    query: c.def.query ? query : undefined,
    body: c.def.body && !c.def.rawBody ? body : undefined,
    rawQuery: c.def.rawBody ? { ...query, ...body } : undefined,
  };
}

/** Runs one generated command and prints its answer. */
export async function runCommand(c: Command, args: string[], p: ParsedArgv, cfg: CliConfig, io: Io): Promise<void> {
  const client = clientFor(cfg);
  const req = await requestOf(c, args, p, client);
  const mode = outputMode(p);
  if (c.def.rawBody) {
    io.out(render(await upload(c, req.params, req.rawQuery ?? {}, p, cfg, io), mode, c.group));
    return;
  }
  if (c.def.rawResponse) {
    await download(client, c, req, p, cfg, io);
    return;
  }
  let result = await client.call(c.def, req as never);
  if (on(p, 'all') && isPage(result)) {
    const items = [...result.items];
    let cursor = result.next_cursor;
    while (cursor) {
      const next = await client.call(c.def, { ...req, query: { ...req.query, cursor } } as never);
      if (!isPage(next)) break;
      items.push(...next.items);
      cursor = next.next_cursor;
    }
    result = { items, next_cursor: null };
  }
  if (c.def === api.images.create && isImporting(result) && io.stderrIsTTY && last(p, 'wait') !== 'false')
    result = await followImport(client, result.id, io);
  io.out(render(result, mode, c.group));
  if ((mode === 'table' || mode === 'quiet') && isPage(result) && result.next_cursor)
    io.err(`more: --cursor ${result.next_cursor} (or --all for every page)`);
}

function isPage(v: unknown): v is { items: unknown[]; next_cursor: string | null } {
  return !!v && typeof v === 'object' && Array.isArray((v as { items?: unknown }).items);
}

function isImporting(v: unknown): v is { id: string; state: string } {
  return !!v && typeof v === 'object' && (v as { state?: unknown }).state === 'importing';
}

/** Polls an importing image, drawing bytes_done/bytes_total, until it is ready or failed. */
async function followImport(client: NqvmClient, id: string, io: Io) {
  const bar = new Progress('import', io);
  for (;;) {
    const img = await client.call(api.images.get, { params: { id } });
    bar.update(img.bytes_done, img.bytes_total ?? undefined);
    if (img.state !== 'importing') {
      bar.done();
      return img;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function upload(
  c: Command,
  params: Record<string, string> | undefined,
  query: Record<string, unknown>,
  p: ParsedArgv,
  cfg: CliConfig,
  io: Io,
) {
  const file = last(p, 'file');
  if (!file) throw new UsageError(`"${c.group} ${c.verb}" needs --file PATH`);
  const size = statSync(file).size;
  const bar = io.stderrIsTTY ? new Progress('upload', io) : undefined;
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      bar?.update(sent, size);
      cb(null, chunk);
    },
  });
  const res = await fetch(clientFor(cfg).url(c.def, params as never, query as never), {
    method: c.def.method,
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      ...(cfg.token ? { authorization: `Bearer ${cfg.token}` } : {}),
    },
    body: Readable.toWeb(createReadStream(file).pipe(counter)) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  bar?.done();
  const answer = await res.json();
  if (!res.ok) throw new ApiError(res.status, answer as never);
  return answer;
}

/** Raw answers (image content, log tails) go to stdout or --output byte for byte, never through JSON. */
async function download(
  client: NqvmClient,
  c: Command,
  req: { params?: Record<string, string>; query?: Record<string, unknown> },
  p: ParsedArgv,
  cfg: CliConfig,
  io: Io,
) {
  const res = await fetch(client.url(c.def, req.params as never, req.query as never), {
    headers: cfg.token ? { authorization: `Bearer ${cfg.token}` } : {},
  });
  if (!res.ok) {
    const text = await res.text();
    let problem: never;
    try {
      problem = JSON.parse(text) as never;
    } catch {
      problem = {
        status: res.status,
        code: 'http_error',
        detail: text,
        title: res.statusText,
        type: 'about:blank',
      } as never;
    }
    throw new ApiError(res.status, problem);
  }
  if (!res.body) return;
  const output = last(p, 'output');
  if (output) {
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(output));
    return;
  }
  const write = io.write ?? ((chunk: Uint8Array) => io.out(Buffer.from(chunk).toString('utf8')));
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) write(chunk);
}
