import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConsoleControl } from './console.routes.ts';
import { ConsoleHub } from './console-hub.ts';
import { Scrollback, trimScrollback } from './scrollback.ts';

describe('scrollback trimming', () => {
  it('keeps short output whole', () => {
    expect(trimScrollback(Buffer.from('login: '), 64).toString()).toBe('login: ');
  });

  it('keeps the last bytes, starting at a line start when one is near', () => {
    const buf = Buffer.from(`${'a'.repeat(100)}\nline two\nlogin: `);
    const out = trimScrollback(buf, 20).toString();
    expect(out).toBe('line two\nlogin: ');
  });

  it('never starts inside a UTF-8 character', () => {
    const buf = Buffer.from(`${'é'.repeat(3000)}`);
    const out = trimScrollback(buf, 1001);
    expect(out.length).toBeLessThanOrEqual(1001);
    expect(out.toString()).toBe('é'.repeat(out.length / 2));
  });

  it('a scrollback buffer holds at most its size of the latest output', () => {
    const sb = new Scrollback(1000);
    for (let i = 0; i < 500; i++) sb.append(Buffer.from(`line ${i}\n`));
    const snap = sb.snapshot().toString();
    expect(snap.length).toBeLessThanOrEqual(1000);
    expect(snap.endsWith('line 499\n')).toBe(true);
    expect(snap.startsWith('line ')).toBe(true);
  });
});

describe('console control frames', () => {
  it('accepts a well-formed resize', () => {
    expect(parseConsoleControl('{"type":"resize","cols":120,"rows":40}')).toEqual({
      type: 'resize',
      cols: 120,
      rows: 40,
    });
  });

  it.each([
    'ls\n',
    '{"type":"resize","cols":0,"rows":40}',
    '{"type":"resize","cols":"80","rows":24}',
    '{"type":"exec"}',
    'null',
  ])('refuses %s', (text) => {
    expect(parseConsoleControl(text)).toBeUndefined();
  });
});

describe('console size', () => {
  afterEach(() => vi.useRealTimers());

  it('sends the last of a burst of sizes to the guest once, 250 ms after the burst', async () => {
    vi.useFakeTimers();
    const sent: Array<[string, { cols: number; rows: number }]> = [];
    const hub = new ConsoleHub('vm-1', () => undefined, {
      applySize: async (id, size) => void sent.push([id, size]),
    });
    hub.resize(100, 30);
    hub.resize(120, 35);
    await vi.advanceTimersByTimeAsync(200);
    hub.resize(132, 40);
    await vi.advanceTimersByTimeAsync(249);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toEqual([['vm-1', { cols: 132, rows: 40 }]]);
    expect(hub.size).toEqual({ cols: 132, rows: 40 });
    hub.close();
  });

  it('keeps a failing guest away from the viewer, and sends nothing after the hub closed', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const hub = new ConsoleHub('vm-1', () => undefined, {
      applySize: async () => {
        calls++;
        throw new Error('guest agent unreachable');
      },
    });
    hub.resize(90, 30);
    await vi.advanceTimersByTimeAsync(250);
    expect(calls).toBe(1);
    hub.resize(91, 30);
    hub.close();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(1);
  });
});
