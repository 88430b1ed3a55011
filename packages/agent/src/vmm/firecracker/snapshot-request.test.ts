import { describe, expect, test } from 'vitest';
import { FirecrackerSpec } from '../../../test/support/firecracker-spec.ts';
import { snapshotCreateParams } from './control.ts';
import { fc } from './requests.ts';
import { InvalidFirecrackerValue } from './validate.ts';

const spec = new FirecrackerSpec();

describe('Firecracker snapshot create request', () => {
  test('a Diff maps to the native snapshot_type Diff, valid against the official spec', () => {
    const body = snapshotCreateParams({ statePath: '/vms/a/d.state', type: 'Diff', trackDirtyPages: true });
    expect(body).toEqual({
      snapshot_path: '/vms/a/d.state',
      mem_file_path: '/vms/a/d.state.mem',
      snapshot_type: 'Diff',
    });
    const req = fc.snapshotCreate(body);
    expect(spec.validateRequest(req.method, req.path, req.body)).toMatchObject({ valid: true, errors: [] });
  });

  test('a Full needs no dirty-page tracking', () => {
    const body = snapshotCreateParams({ statePath: '/vms/a/f.state', memPath: '/vms/a/f.mem' });
    expect(body.snapshot_type).toBe('Full');
    const req = fc.snapshotCreate(body);
    expect(spec.validateRequest(req.method, req.path, req.body)).toMatchObject({ valid: true, errors: [] });
  });

  test('a Diff without track_dirty_pages is refused before any request, saying what to set', () => {
    expect(() => snapshotCreateParams({ statePath: '/vms/a/d.state', type: 'Diff' })).toThrow(InvalidFirecrackerValue);
    expect(() => snapshotCreateParams({ statePath: '/vms/a/d.state', type: 'Diff', trackDirtyPages: false })).toThrow(
      /track_dirty_pages/,
    );
  });
});
