import Value from 'typebox/value';
import { describe, expect, it } from 'vitest';
import {
  FUNCTION_LIMITS,
  FunctionInvokeRequest,
  FunctionLoadRequest,
  type FunctionLoadRequest as LoadBody,
} from '../../src/function-runner.schema.ts';

const load = (over: Partial<LoadBody> = {}): LoadBody => ({
  runtime: 'node20',
  handler: 'index.handler',
  files: { 'index.js': 'exports.handler = async (e) => e;' },
  env: {},
  ...over,
});
const ok = (body: unknown) => Value.Check(FunctionLoadRequest, body);

describe('function runner contract: load', () => {
  it('takes relative paths of safe segments, at any depth', () => {
    for (const p of ['index.js', 'lib/util.js', 'a/b-c_d.py', 'pkg/.hidden', 'x/...', 'package.json'])
      expect(ok(load({ files: { [p]: '' } })), p).toBe(true);
  });

  it('refuses absolute paths, `.` and `..` segments, empty segments and other characters', () => {
    for (const p of [
      '/etc/passwd',
      '../x',
      'a/../b',
      'a/..',
      './a',
      'a/./b',
      '.',
      '..',
      'a//b',
      'a/',
      '',
      'a b',
      'a\\b',
      'é.js',
    ])
      expect(ok(load({ files: { [p]: '' } })), JSON.stringify(p)).toBe(false);
  });

  it('bounds the file count, the runtime, the handler and the environment', () => {
    const many = Object.fromEntries(Array.from({ length: FUNCTION_LIMITS.maxFiles + 1 }, (_, i) => [`f${i}.js`, '']));
    expect(ok(load({ files: many }))).toBe(false);
    expect(ok(load({ files: {} }))).toBe(false);
    expect(ok({ ...load(), runtime: 'ruby' })).toBe(false);
    for (const h of ['index', '../index.handler', '/index.handler', 'index.', 'in dex.handler', 'index.1x'])
      expect(ok(load({ handler: h })), h).toBe(false);
    expect(ok(load({ handler: 'src/app.main' }))).toBe(true);
    expect(ok(load({ env: { GOOD_NAME: 'v' } }))).toBe(true);
    for (const name of ['1BAD', 'BAD-NAME', 'A=B', '']) expect(ok(load({ env: { [name]: 'v' } })), name).toBe(false);
    expect(ok(load({ env: { BIG: 'x'.repeat(FUNCTION_LIMITS.maxEnvValueBytes + 1) } }))).toBe(false);
    expect(ok({ ...load(), extra: 1 })).toBe(false);
  });
});

describe('function runner contract: invoke', () => {
  const invoke = { event: { any: ['json', 1, null] }, timeout_ms: 3000, output_limit_bytes: 65536 };
  it('takes any JSON event with a bounded timeout and output limit', () => {
    expect(Value.Check(FunctionInvokeRequest, invoke)).toBe(true);
    expect(Value.Check(FunctionInvokeRequest, { ...invoke, event: null })).toBe(true);
    for (const bad of [
      { ...invoke, timeout_ms: FUNCTION_LIMITS.maxTimeoutMs + 1 },
      { ...invoke, timeout_ms: 0 },
      { ...invoke, output_limit_bytes: FUNCTION_LIMITS.maxOutputLimitBytes + 1 },
      { ...invoke, output_limit_bytes: 10 },
    ])
      expect(Value.Check(FunctionInvokeRequest, bad), JSON.stringify(bad)).toBe(false);
  });
});
