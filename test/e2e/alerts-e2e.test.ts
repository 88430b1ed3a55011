import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertRule, WebhookPayload } from '@nqvm/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack, until } from './support/stack.ts';

/** An alert rule on a real microVM: its VMM killed fires it, the VM running again resolves it, both as deliveries. */
describe('alert rules on a real microVM', () => {
  let s: Stack;
  let vmId: string;
  let server: Server;
  const got: WebhookPayload[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
      });
      req.on('end', () => {
        got.push(JSON.parse(body) as WebhookPayload);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    s = await startStack({
      ...TEST_NETWORKS.alertsE2e,
      env: { NQVM_ALERT_INTERVAL_S: '1', NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.1/32' },
    });
    const made = await s.api<{ id: string }>('POST', '/v1/vms', {
      name: 'alerted',
      vcpu: 1,
      mem_mib: 256,
      kernel_image_id: s.images.kernel,
      initrd_image_id: s.images.initrd,
      rootfs_image_id: s.images.rootfs,
    });
    expect(made.status, JSON.stringify(made.body)).toBe(202);
    vmId = made.body.id;
    const up = await s.api('GET', `/v1/vms/${vmId}/wait?state=running&timeout=300`);
    expect(up.body, JSON.stringify(up.body)).toMatchObject({ state: 'running' });
    const port = (server.address() as AddressInfo).port;
    const hook = await s.api('POST', '/v1/webhooks', { url: `http://127.0.0.1:${port}/alerts`, events: ['alert.*'] });
    expect(hook.status, JSON.stringify(hook.body)).toBe(201);
  });
  afterAll(async () => {
    await s?.close();
    await new Promise((r) => server?.close(r));
  });

  it('fires when the VMM is killed and resolves when the VM runs again, each as an event and a delivery', async () => {
    const made = await s.api<AlertRule>('POST', '/v1/alert-rules', {
      name: 'vmm-down',
      kind: 'vm_crashed',
      vm_id: vmId,
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const ruleId = made.body.id;
    const rule = async () => (await s.api<AlertRule>('GET', `/v1/alert-rules/${ruleId}`)).body;
    const vm = await s.api<{ pid: number | null }>('GET', `/v1/vms/${vmId}`);
    expect(vm.body.pid).toBeGreaterThan(1);
    process.kill(vm.body.pid!, 'SIGKILL');

    const firing = await until('the rule to fire', async () => (await rule()).firing[0], 60_000);
    expect(firing).toMatchObject({ subject_type: 'vm', subject_id: vmId, subject_name: 'alerted' });
    expect(firing.reason).toMatch(/SIGKILL|killed/);
    const fired = await until('the firing delivery', async () => got.find((p) => p.event.action === 'firing'), 30_000);
    expect(fired.event).toMatchObject({ resource_type: 'alert', detail: { rule_id: ruleId, subject_id: vmId } });
    const down = await s.api<{ state: string; last_error: string | null }>('GET', `/v1/vms/${vmId}`);
    expect(down.body.state).toBe('stopped');
    expect(down.body.last_error).toMatch(/killed/);

    expect((await s.api('POST', `/v1/vms/${vmId}/start`)).status).toBe(202);
    // Still firing while it boots: it resolves when the VM runs, not when it is asked to.
    expect((await rule()).firing).toHaveLength(1);
    const again = await s.api('GET', `/v1/vms/${vmId}/wait?state=running&timeout=300`);
    expect(again.body).toMatchObject({ state: 'running' });
    await until('the rule to resolve', async () => ((await rule()).firing.length === 0 ? true : undefined), 30_000);
    const resolved = await until(
      'the resolved delivery',
      async () => got.find((p) => p.event.action === 'resolved'),
      30_000,
    );
    expect(resolved.event).toMatchObject({ resource_id: fired.event.resource_id, result: 'ok' });
    expect(got.map((p) => p.event.action)).toEqual(['firing', 'resolved']);
    const events = await s.api<{ items: { action: string }[] }>('GET', `/v1/events?resource_type=alert&limit=10`);
    expect(events.body.items.map((e) => e.action).sort()).toEqual(['firing', 'resolved']);
  });
});
