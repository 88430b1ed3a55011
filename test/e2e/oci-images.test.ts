import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout, type Registry, startRegistry } from '../../packages/manager/test/support/oci-fixture.ts';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack, until } from './support/stack.ts';

const NET = TEST_NETWORKS.ociImages;
const USER = { name: 'e2e', password: 'e2e-registry-password' };
const START = `#!/bin/sh
echo "oci-marker: $GREETING in $(pwd) as $(id -u)"
env | grep -E '^(VM_ONLY|PATH)=' | sort | sed 's/^/oci-env: /'

if [ -e /app/secret.txt ]; then echo "oci-secret: present"; else echo "oci-secret: absent"; fi
mkdir -p /tmp/www
echo "hello from an OCI image" > /tmp/www/index.html
exec httpd -f -p 8080 -h /tmp/www
`;

let s: Stack;
let registry: Registry;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nqvm-oci-e2e-'));
  s = await startStack({ ...NET, env: { NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.0/8' } });
  registry = await startRegistry(NET.registryPort, USER);
  const layout = new OciLayout(dir);
  const applets = ['sh', 'httpd', 'mkdir', 'id', 'echo', 'cat', 'env', 'grep', 'sort', 'sed'];
  layout.tag('1.0', [
    layout.image({
      layers: [
        {
          compression: 'gzip',
          files: {
            'bin/busybox': { content: readFileSync('/bin/busybox'), mode: 0o755 },
            'app/start.sh': { content: START, mode: 0o755 },
            'app/secret.txt': 'a file the upper layer deletes\n',
            'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
            'etc/group': 'root:x:0:\n',
          },
          symlinks: Object.fromEntries(applets.map((a) => [`bin/${a}`, 'busybox'])),
        },
        { compression: 'zstd', files: { 'app/.wh.secret.txt': '' } },
      ],
      config: {
        Entrypoint: ['/bin/sh', '/app/start.sh'],
        Env: ['PATH=/bin', 'GREETING=hello-oci'],
        WorkingDir: '/app',
      },
    }),
  ]);
  await registry.push(layout, '1.0', 'nqvm/web');
}, 600_000);
afterAll(async () => {
  await s?.close();
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a VM from an OCI image (demo kernel, real QEMU)', () => {
  it('boots with nqvm init running the entrypoint with the VM env over the image env: marker on the console, HTTP from the host, whiteout applied', async () => {
    const pulled = await s.api<{ id: string; state: string }>('POST', '/v1/images', {
      name: 'oci-web',
      kind: 'rootfs',
      source: { type: 'oci', reference: `${registry.host}/nqvm/web:1.0`, username: USER.name, password: USER.password },
    });
    expect(pulled.status, JSON.stringify(pulled.body)).toBe(202);
    await until(
      'the pull to finish',
      async () => (await s.api<{ state: string }>('GET', `/v1/images/${pulled.body.id}`)).body.state === 'ready',
      120_000,
    );
    const vm = await s.api<{ id: string; nics: Array<{ ip: string }> }>('POST', '/v1/vms', {
      name: 'oci-web',
      vcpu: 1,
      mem_mib: 256,
      kernel_image_id: s.images.kernel,
      initrd_image_id: s.images.initrd,
      rootfs_image_id: pulled.body.id,
      restart_policy: 'always',
      // The VM's environment over the image's Env: GREETING overridden, VM_ONLY added, PATH kept.
      env: { GREETING: 'hello-vm', VM_ONLY: 'set by the VM' },
    });
    expect(vm.status, JSON.stringify(vm.body)).toBe(202);
    const text = await until(
      'the service marker on the console',
      async () => {
        const t = await s.consoleText(vm.body.id);
        return /oci-secret: (absent|present)\r?\n/.test(t) ? t : undefined;
      },
      300_000,
    );
    expect(text).toContain('oci-marker: hello-vm in /app as 0');
    // The service's environment as `env` prints it in the guest (Debian's busybox has no printenv applet).
    expect(text).toContain('oci-env: PATH=/bin');
    expect(text).toContain('oci-env: VM_ONLY=set by the VM');
    expect(text).toContain('oci-secret: absent');
    const ip = (vm.body.nics[0]?.ip ?? '').split('/')[0];
    const page = await until(
      'the HTTP answer from the guest',
      async () => {
        const r = await fetch(`http://${ip}:8080/`).catch(() => undefined);
        return r?.ok ? r.text() : undefined;
      },
      60_000,
    );
    expect(page).toBe('hello from an OCI image\n');
  });
});
