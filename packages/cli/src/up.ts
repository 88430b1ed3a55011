import { createReadStream, existsSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildDemoImages, loadAgentConfig, startAgent, systemRunner } from '@nqvm/agent';
import { buildApp, loadConfig } from '@nqvm/manager';

type Env = Record<string, string | undefined>;

function dataDirOf(env: Env, flags: Record<string, string | boolean> = {}): string {
  return resolve(typeof flags['data-dir'] === 'string' ? flags['data-dir'] : env.NQVM_DATA_DIR || '/var/lib/nqvm');
}

export async function buildDemo(out: string | undefined, env: Env) {
  const dataDir = dataDirOf(env);
  return buildDemoImages({
    outDir: out ? resolve(out) : join(dataDir, 'demo-images'),
    cacheDir: join(dataDir, 'cache', 'debs'),
    runner: systemRunner,
  });
}

const log = (s: string) => process.stdout.write(`${s}\n`);

/**
 * Registers the function runtimes' rootfs images (`runtime-node20`, `runtime-python3`) that are missing: from
 * `$NQVM_RUNTIME_IMAGES`, `<data dir>/runtime-images` or `.cache/runtime-images` in the working directory (what
 * `scripts/build-runtime-images.ts` builds); node20 is the demo rootfs as it is, so that one is always there.
 */
async function registerRuntimes(
  images: Awaited<ReturnType<typeof buildApp>>['services']['images'],
  names: Set<string>,
  dataDir: string,
  env: Env,
): Promise<void> {
  // The last one: where scripts/build-runtime-images.ts puts them, from the checkout `npm start` runs in.
  const dirs = [env.NQVM_RUNTIME_IMAGES, join(dataDir, 'runtime-images'), resolve('.cache', 'runtime-images')];
  const registered: string[] = [];
  for (const runtime of ['node20', 'python3'] as const) {
    const name = `runtime-${runtime}`;
    if (names.has(name)) continue;
    const file = [
      ...dirs.filter((d): d is string => !!d).map((d) => join(d, runtime, 'rootfs.ext4')),
      ...(runtime === 'node20' ? [join(dataDir, 'demo-images', 'rootfs.ext4')] : []),
    ].find((f) => existsSync(f));
    if (!file) {
      log(`function runtime ${runtime}: no image (build it: node --import tsx scripts/build-runtime-images.ts)`);
      continue;
    }
    await images.upload(
      { name, kind: 'rootfs', description: `nqvm function runtime ${runtime}` },
      createReadStream(file),
      statSync(file).size,
      'system',
    );
    registered.push(name);
  }
  if (registered.length) log(`function runtime images registered: ${registered.join(', ')}`);
}

/** `nqvm up`: manager on the embedded database, a local agent, demo images registered; prints URL and credentials. */
export async function up(env: Env, flags: Record<string, string | boolean>): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'nqvm up needs root: the local agent creates a bridge and TAP devices, runs QEMU with /dev/kvm or TCG, ' +
        'and edits VM disks with e2fsprogs. Run it as root (sudo npm start).',
    );
  }
  const dataDir = dataDirOf(env, flags);
  const config = loadConfig({
    ...env,
    NQVM_DATA_DIR: join(dataDir, 'manager'),
    MANAGER_BIND: typeof flags.bind === 'string' ? flags.bind : env.MANAGER_BIND,
    NQVM_LOG_LEVEL: env.NQVM_LOG_LEVEL || 'warn',
  });
  const built = await buildApp(config, { deferOperations: true });
  const url = `http://${config.bind.host}:${config.bind.port}`;
  // Shown and saved before anything that can fail (listening, the agent, the demo build): a failed first start
  // must not lose the only copy of a password nothing can show again.
  const credentials = join(dataDir, 'admin-credentials');
  if (built.generatedAdminPassword) {
    writeFileSync(credentials, `url=${url}\nusername=admin\npassword=${built.generatedAdminPassword}\n`, {
      mode: 0o600,
    });
    log(`admin credentials (shown once): admin / ${built.generatedAdminPassword}`);
    log(`  saved in ${credentials} (readable by root only)`);
  } else if (existsSync(credentials)) log(`admin user exists: its credentials are in ${credentials}`);
  else log('admin user exists (its password came from NQVM_ADMIN_PASSWORD or was shown on the first start)');
  await built.app.listen({ host: config.bind.host, port: config.bind.port });
  log(`manager  ${url}  (database: ${built.services.database.kind}, data: ${dataDir})`);

  // The local agent joins with a join token made here (it registers only the first time, and only then spends
  // it); one it did not need is revoked at once.
  const joinToken = await built.services.joinTokens.create(
    { ttl_s: 600, description: 'nqvm up: the local agent' },
    'system',
  );
  const agent = await startAgent(
    loadAgentConfig({
      ...env,
      AGENT_DATA_DIR: env.AGENT_DATA_DIR || join(dataDir, 'agent'),
      MANAGER_BASE: url,
      NQVM_JOIN_TOKEN: joinToken.token,
      AGENT_BIND: env.AGENT_BIND || '127.0.0.1:19090',
    }),
  ).finally(() => built.services.joinTokens.revokeUnused(joinToken.id));
  log(`agent    ${agent.url}  (host ${agent.hostId})`);
  // Operations a previous run left (a crash) resume now that the local agent answers.
  built.services.operations.start();

  const images = built.services.images;
  const existing = JSON.parse(await images.listJson({ limit: 500 })) as { items: { name: string }[] };
  const names = new Set(existing.items.map((i) => i.name));
  if (!['demo-kernel', 'demo-initrd', 'demo-rootfs'].every((n) => names.has(n))) {
    log('building demo images from Debian packages (first run only)…');
    const demo = await buildDemo(undefined, { ...env, NQVM_DATA_DIR: dataDir }).catch(async (err: unknown) => {
      await agent.close();
      await built.app.close();
      throw new Error(
        `building the demo images failed: ${err instanceof Error ? err.message : String(err)}\n` +
          `Everything else is set up; run the same command again once that is fixed (it needs apt to reach Debian's mirrors once). ` +
          `The admin credentials ${existsSync(credentials) ? `are in ${credentials}` : 'are unchanged'}.`,
      );
    });
    for (const [kind, name, file] of [
      ['kernel', 'demo-kernel', demo.kernel],
      ['initrd', 'demo-initrd', demo.initrd],
      ['rootfs', 'demo-rootfs', demo.rootfs],
    ] as const) {
      if (names.has(name)) continue;
      await images.upload(
        { name, kind, description: `nqvm demo ${kind} (${demo.version})` },
        createReadStream(file),
        statSync(file).size,
        'system',
      );
    }
    log('demo images registered: demo-kernel, demo-initrd, demo-rootfs');
  }
  await registerRuntimes(images, names, dataDir, env);
  log(`\nnqvm is up: open ${url} (API docs at ${url}/docs); admin credentials: see above`);

  const shutdown = async () => {
    await agent.close();
    await built.app.close();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
