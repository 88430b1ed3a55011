import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  compressionOf,
  convertToRaw,
  type DiskTools,
  diskFormatOf,
  type ExecResult,
  ImageFormatInvalid,
} from './images.formats.ts';
import { TooLarge } from './images.store.ts';

/** Records every command and answers `qemu-img info` with `info`. */
function fakeTools(info: Record<string, unknown>, codes: Record<string, number> = {}) {
  const calls: string[][] = [];
  const tools: DiskTools = {
    async exec(cmd, args): Promise<ExecResult> {
      calls.push([cmd, ...args]);
      const sub = args[0] ?? '';
      return { code: codes[sub] ?? 0, stdout: sub === 'info' ? JSON.stringify(info) : '', stderr: `${sub} said no` };
    },
    filter: () => new PassThrough(),
  };
  return { tools, calls };
}

describe('image formats', () => {
  it('knows gzip, xz and zstd by their magic, and nothing else', () => {
    expect(compressionOf(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0]))).toBe('gzip');
    expect(compressionOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe('xz');
    expect(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]))).toBe('zstd');
    expect(compressionOf(Buffer.alloc(6))).toBeUndefined();
    expect(compressionOf(Buffer.from([0x1f]))).toBeUndefined();
  });

  it('knows qcow2, VMDK and VHDX by their magic, and refuses a VMDK descriptor', () => {
    expect(diskFormatOf(Buffer.from('QFI\xfb\0\0\0\x03', 'latin1'))).toBe('qcow2');
    expect(diskFormatOf(Buffer.from('KDMV\x01\0\0\0', 'latin1'))).toBe('vmdk');
    expect(diskFormatOf(Buffer.from('vhdxfile', 'latin1'))).toBe('vhdx');
    expect(diskFormatOf(Buffer.alloc(512))).toBeUndefined();
    expect(() => diskFormatOf(Buffer.from('# Disk DescriptorFile\nversion=1\n'))).toThrow(ImageFormatInvalid);
  });

  it('runs info, then check, then convert, each with the format given and never probed', async () => {
    const { tools, calls } = fakeTools({ 'virtual-size': 1024 });
    await convertToRaw(tools, '/store/tmp/a', 'qcow2', '/store/tmp/b', 4096);
    expect(calls).toEqual([
      ['qemu-img', 'info', '--output=json', '-f', 'qcow2', '/store/tmp/a'],
      ['qemu-img', 'check', '-q', '-f', 'qcow2', '/store/tmp/a'],
      ['qemu-img', 'convert', '-q', '-f', 'qcow2', '-O', 'raw', '/store/tmp/a', '/store/tmp/b'],
    ]);
  });

  it.each([
    ['a backing file', { 'backing-filename': '/etc/shadow' }, /backing file \(\/etc\/shadow\)/],
    ['an external data file', { 'format-specific': { type: 'qcow2', data: { 'data-file': '/dev/sda' } } }, /data file/],
    [
      'an extent elsewhere',
      { 'format-specific': { type: 'vmdk', data: { extents: [{ filename: '/x' }] } } },
      /extents/,
    ],
  ])('refuses an image with %s before check or convert open it', async (_what, info, message) => {
    const { tools, calls } = fakeTools(info);
    await expect(convertToRaw(tools, '/store/tmp/a', 'qcow2', '/store/tmp/b', 4096)).rejects.toThrow(message);
    expect(calls.map((c) => c[1])).toEqual(['info']);
  });

  it('refuses a virtual size over the limit before converting', async () => {
    const { tools, calls } = fakeTools({ 'virtual-size': 2 ** 40 });
    await expect(convertToRaw(tools, '/store/tmp/a', 'vhdx', '/store/tmp/b', 4096)).rejects.toThrow(TooLarge);
    expect(calls.map((c) => c[1])).toEqual(['info']);
  });

  it('takes leaked clusters (check exit 3) but not corruption (exit 2)', async () => {
    await convertToRaw(fakeTools({}, { check: 3 }).tools, '/a', 'qcow2', '/b', 1);
    const damaged = fakeTools({}, { check: 2 });
    await expect(convertToRaw(damaged.tools, '/a', 'qcow2', '/b', 1)).rejects.toThrow(/damaged: check said no/);
    expect(damaged.calls.map((c) => c[1])).toEqual(['info', 'check']);
  });
});
