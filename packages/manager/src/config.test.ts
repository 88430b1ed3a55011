import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('manager config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c.bind).toEqual({ host: '127.0.0.1', port: 18080 });
    expect(c.databaseUrl).toBeUndefined();
    expect(c.enableMetrics).toBe(true);
    expect(c.network).toMatchObject({ cidr: '10.88.0.0/24', gateway: '10.88.0.1', bridge: 'nqbr0' });
  });

  it('lists every problem at once', () => {
    try {
      loadConfig({
        MANAGER_BIND: 'nope',
        DATABASE_URL: 'mysql://x',
        MANAGER_ENABLE_METRICS: 'maybe',
        MANAGER_ALLOW_IMAGE_PATHS: 'true',
        NQVM_ADMIN_PASSWORD: 'short',
        NQVM_NETWORK_CIDR: '10.0.0.0/40',
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const p = (err as ConfigError).problems.join('\n');
      for (const name of [
        'MANAGER_BIND',
        'DATABASE_URL',
        'MANAGER_ENABLE_METRICS',
        'MANAGER_IMAGE_ROOT',
        'NQVM_ADMIN_PASSWORD',
        'NQVM_NETWORK_CIDR',
      ])
        expect(p).toContain(name);
    }
  });
});
