import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { api, type Invocation, type RuntimeName } from '@nqvm/api';
import { defaultTakesValue, last, type ParsedArgv, parseArgv } from './argv.ts';
import type { CliConfig } from './config.ts';
import { UsageError } from './flags.ts';
import { EXIT } from './help.ts';
import { render } from './output.ts';
import { resolveId } from './resolve.ts';
import { clientFor, type Io, outputMode } from './run.ts';

const FLAGS = new Set(['runtime', 'handler', 'limit', 'file']);

/** `--file PATH` (repeatable): each file by its base name, the function's code. */
function filesOf(p: ParsedArgv): Record<string, string> {
  const paths = p.flags.get('file') ?? [];
  if (!paths.length) throw new UsageError('give the code with --file PATH (once per file)');
  return Object.fromEntries(paths.map((path) => [basename(path), readFileSync(path, 'utf8')]));
}

/**
 * The functions commands the route table alone does not make: `create NAME --runtime R --file F…` and
 * `deploy FUNCTION --file F…` read code from files (a new version), `logs FUNCTION` prints recent invocations'
 * output.
 */
export async function functionsCommand(cfg: CliConfig, argv: string[], io: Io): Promise<number> {
  const p = parseArgv(argv, (name) => FLAGS.has(name) || defaultTakesValue(name));
  const [, verb, target] = p.positionals;
  if (!target) throw new UsageError(`functions ${verb} needs a function (name or id)`);
  const client = clientFor(cfg);
  const handler = last(p, 'handler');
  if (verb === 'create') {
    const runtime = last(p, 'runtime');
    if (runtime !== 'node20' && runtime !== 'python3') throw new UsageError('give --runtime node20 or python3');
    const fn = await client.call(api.functions.create, {
      body: { name: target, runtime: runtime as RuntimeName, files: filesOf(p), ...(handler ? { handler } : {}) },
    });
    io.out(render(fn, outputMode(p), 'functions'));
    return EXIT.ok;
  }
  const id = await resolveId(client, '/v1/functions', target);
  if (verb === 'deploy') {
    const fn = await client.call(api.functions.update, {
      params: { id },
      body: { files: filesOf(p), ...(handler ? { handler } : {}) },
    });
    io.out(render(fn, outputMode(p), 'functions'));
    return EXIT.ok;
  }
  const limit = Number(last(p, 'limit') ?? 10);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new UsageError('--limit takes 1 to 500');
  const page = await client.call(api.functions.invocations, { params: { id }, query: { limit } });
  if (outputMode(p) !== 'table') {
    io.out(render(page.items, outputMode(p), 'functions'));
    return EXIT.ok;
  }
  for (const inv of [...page.items].reverse()) io.out(logOf(inv));
  return EXIT.ok;
}

function logOf(inv: Invocation): string {
  const head = `=== ${inv.created_at} ${inv.id} v${inv.version} ${inv.state} ${inv.start ?? '-'} ${inv.duration_ms ?? '-'} ms`;
  const lines = [head];
  if (inv.stdout) lines.push(inv.stdout.trimEnd());
  if (inv.stderr) lines.push(inv.stderr.trimEnd());
  if (inv.error) lines.push(`${inv.error.type}: ${inv.error.message}`, ...(inv.error.stack ? [inv.error.stack] : []));
  return lines.join('\n');
}
