import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log';

describe('createLogger', () => {
  it('writes one JSON object per line with time, level and message', () => {
    const lines: string[] = [];
    createLogger((l) => lines.push(l)).info('started', { port: 9000 });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 'info', msg: 'started', port: 9000 });
  });

  it('drops fields whose names look secret', () => {
    const lines: string[] = [];
    createLogger((l) => lines.push(l)).warn('x', { token: 's3cr3t', Authorization: 'Bearer s3cr3t', vm_id: 'v' });
    expect(lines[0]).not.toContain('s3cr3t');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ vm_id: 'v' });
  });
});
