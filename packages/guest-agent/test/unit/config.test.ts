import { describe, expect, it } from 'vitest';
import { ConfigError, configPathFromEnv, parseConfig } from '../../src/config';

const TOKEN = 'tok_9f8e7d6c5b4a';

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, '/etc/nqvm/guest-agent.json');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('guest agent config', () => {
  it('reads vm_id, token, host_url and defaults the port to 9000', () => {
    const c = parseConfig(JSON.stringify({ vm_id: 'vm-1', token: TOKEN, host_url: 'http://10.0.0.1:19090' }), 'x');
    expect(c).toMatchObject({ vm_id: 'vm-1', token: TOKEN, host_url: 'http://10.0.0.1:19090', port: 9000 });
    expect(c.hostUrl.host).toBe('10.0.0.1:19090');
  });

  it('lists every problem together', () => {
    const problems = problemsOf(JSON.stringify({ vm_id: '../x', token: 'a b', host_url: 'file:///etc', port: 0 }));
    expect(problems).toHaveLength(4);
  });

  it('refuses vm ids that could change the report URL path', () => {
    for (const vm_id of ['../../admin', 'a/b', 'a?b', '$(touch /tmp/MARK)', '', 'x'.repeat(129)]) {
      expect(problemsOf(JSON.stringify({ vm_id, token: TOKEN, host_url: 'http://h' }))).toEqual([
        'vm_id must match [A-Za-z0-9_-]{1,128}',
      ]);
    }
  });

  it('refuses tokens that could split the Authorization header, without echoing them', () => {
    const bad = `${TOKEN}\r\nX-Evil: 1`;
    try {
      parseConfig(JSON.stringify({ vm_id: 'v', token: bad, host_url: 'http://h' }), 'p');
      expect.unreachable();
    } catch (err) {
      expect(String(err)).not.toContain(TOKEN);
    }
  });

  it('rejects text that is not a JSON object', () => {
    expect(problemsOf('not json')[0]).toMatch(/^not JSON/);
    expect(problemsOf('[1]')).toEqual(['not an object']);
  });

  it('takes the path from NQVM_GUEST_CONFIG, else /etc/nqvm/guest-agent.json', () => {
    expect(configPathFromEnv({ NQVM_GUEST_CONFIG: '/tmp/c.json' })).toBe('/tmp/c.json');
    expect(configPathFromEnv({})).toBe('/etc/nqvm/guest-agent.json');
  });
});
