import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';

/** `nqvm-manager`: parse the environment, build, listen; print first-start credentials once. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const built = await buildApp(config).catch((err: unknown) => {
    console.error(`nqvm-manager failed to start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
  const { app } = built;
  await app.listen({ host: config.bind.host, port: config.bind.port });
  const url = `http://${config.bind.host}:${config.bind.port}`;
  const lines = [`nqvm manager listening on ${url} (database: ${built.services.database.kind})`];
  if (built.generatedAdminPassword)
    lines.push(`admin credentials (shown once): admin / ${built.generatedAdminPassword}`);
  lines.push('agents join with a token an admin creates: nqvm join-tokens create (expires, joins one host once)');
  if (process.env.NQVM_JOIN_TOKEN)
    lines.push('NQVM_JOIN_TOKEN is set but no longer used: join tokens now expire and join one host each');
  process.stdout.write(`${lines.join('\n')}\n`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      app.close().then(() => process.exit(0));
    });
}
