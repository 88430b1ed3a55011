import {
  FUNCTION_ENV_NAME_PATTERN,
  FUNCTION_HANDLER_PATTERN,
  FUNCTION_LIMITS,
  FUNCTION_PATH_PATTERN,
  statusOfCode,
} from '@nqvm/api';
import { describe, expect, it } from 'vitest';
import {
  ENV_NAME_PATTERN,
  HANDLER_PATTERN,
  LIMITS,
  PATH_PATTERN,
  parseInvoke,
  parseLoad,
  RequestRefused,
  safeRelativePath,
} from '../../src/function-request.ts';

const load = (over: Record<string, unknown> = {}) => ({
  runtime: 'python3',
  handler: 'main.handler',
  files: { 'main.py': 'def handler(e, c):\n    return e\n' },
  env: {},
  ...over,
});
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (e instanceof RequestRefused) return { status: e.status, code: e.code, field: e.field };
    throw e;
  }
  throw new Error('not refused');
};

describe('guest function requests', () => {
  it('hold the bounds and patterns of the @nqvm/api contract, and send catalogued codes', () => {
    expect(LIMITS).toEqual(FUNCTION_LIMITS);
    expect(PATH_PATTERN.source).toBe(FUNCTION_PATH_PATTERN.replaceAll('/', '\\/'));
    expect(HANDLER_PATTERN.source).toBe(FUNCTION_HANDLER_PATTERN.replaceAll('/', '\\/'));
    expect(ENV_NAME_PATTERN.source).toBe(FUNCTION_ENV_NAME_PATTERN);
    for (const [code, status] of [
      ['validation_failed', 400],
      ['runner_too_large', 413],
      ['function_not_loaded', 409],
      ['runner_busy', 409],
      ['function_load_failed', 422],
    ] as const)
      expect(statusOfCode(code), code).toBe(status);
  });

  it('takes relative paths only: no absolute path, no . or .. segment, no empty segment', () => {
    for (const p of ['main.py', 'pkg/util.py', 'a/b/c-d_e.js', 'x/...', '.env'])
      expect(safeRelativePath(p), p).toBe(true);
    for (const p of [
      '/etc/passwd',
      '../x',
      'a/../../b',
      'a/..',
      './a',
      'a/./b',
      '.',
      '..',
      'a//b',
      'a/',
      '',
      'a\\b',
      'a\0b',
    ])
      expect(safeRelativePath(p), JSON.stringify(p)).toBe(false);
    expect(refusal(() => parseLoad(load({ files: { '../evil.py': '' } })))).toEqual({
      status: 400,
      code: 'validation_failed',
      field: 'body.files.../evil.py',
    });
    expect(refusal(() => parseLoad(load({ files: { a: '', 'a/b': '' } }))).field).toBe('body.files.a/b');
    expect(safeRelativePath('x'.repeat(256))).toBe(false);
  });

  it('bounds files, code size, env and the handler', () => {
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`f${i}.py`, '']));
    expect(refusal(() => parseLoad(load({ files: many })))).toMatchObject({ status: 413, code: 'runner_too_large' });
    const big = { 'a.py': 'x'.repeat(600 * 1024), 'b.py': 'é'.repeat(300 * 1024) };
    expect(refusal(() => parseLoad(load({ files: big })))).toMatchObject({ status: 413, field: 'body.files' });
    expect(refusal(() => parseLoad(load({ files: {} }))).field).toBe('body.files');
    expect(refusal(() => parseLoad(load({ runtime: 'ruby' }))).field).toBe('body.runtime');
    expect(refusal(() => parseLoad(load({ handler: '../main.handler' }))).field).toBe('body.handler');
    expect(refusal(() => parseLoad(load({ env: { PATH: '/evil' } }))).field).toBe('body.env.PATH');
    expect(refusal(() => parseLoad(load({ env: { 'A-B': 'x' } }))).field).toBe('body.env.A-B');
    expect(refusal(() => parseLoad(load({ env: { A: 'x'.repeat(16 * 1024 + 1) } }))).field).toBe('body.env.A');
    expect(refusal(() => parseLoad(load({ extra: 1 }))).field).toBe('body.extra');
    expect(parseLoad(load({ handler: 'pkg/app.main', env: { A_1: 'v' } }))).toMatchObject({
      file: 'pkg/app',
      name: 'main',
    });
  });

  it('bounds the event, the timeout and the output limit', () => {
    const ok = { event: [1, 'two', { three: null }], timeout_ms: 1000, output_limit_bytes: 2048 };
    expect(parseInvoke(ok)).toEqual({ eventJson: '[1,"two",{"three":null}]', timeoutMs: 1000, outputLimitBytes: 2048 });
    expect(refusal(() => parseInvoke({ ...ok, event: 'x'.repeat(1024 * 1024) }))).toMatchObject({ status: 413 });
    expect(refusal(() => parseInvoke({ timeout_ms: 1000, output_limit_bytes: 2048 })).field).toBe('body.event');
    expect(refusal(() => parseInvoke({ ...ok, timeout_ms: 99 })).field).toBe('body.timeout_ms');
    expect(refusal(() => parseInvoke({ ...ok, timeout_ms: 1.5 })).field).toBe('body.timeout_ms');
    expect(refusal(() => parseInvoke({ ...ok, output_limit_bytes: 5 * 1024 * 1024 })).field).toBe(
      'body.output_limit_bytes',
    );
  });
});
