import { readFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { ConfigError, configPathFromEnv, parseConfig, type ResolvedConfig } from './config';
import { createLogger, type Logger } from './log';
import { MetricsSampler } from './metrics';
import { abortableSleep, firstIpv4, postJson, type Reporter, startReporter } from './report';
import { createGuestServer, listen, startCpuSampling } from './server';
import { GUEST_AGENT_PORT, GUEST_AGENT_VERSION } from './version';

const SHUTDOWN_DEADLINE_MS = 3000;

async function loadConfig(path: string, logger: Logger): Promise<ResolvedConfig | null> {
  try {
    return parseConfig(await readFile(path, 'utf8'), path);
  } catch (err) {
    const reason =
      err instanceof ConfigError ? err.problems.join('; ') : err instanceof Error ? err.message : String(err);
    logger.error('config_unavailable', { path, reason });
    return null;
  }
}

/**
 * Runs the guest agent until SIGTERM/SIGINT. Without a usable config it still serves /health and /metrics
 * (so the host can see the guest is alive) but does not report.
 */
export async function main(): Promise<void> {
  const logger = createLogger();
  const configPath = configPathFromEnv();
  const config = await loadConfig(configPath, logger);
  const port = config?.port ?? GUEST_AGENT_PORT;

  const sampler = new MetricsSampler();
  const stopSampling = startCpuSampling(sampler, logger);
  const server = createGuestServer({ sampler, logger });
  try {
    await listen(server, port);
  } catch (err) {
    logger.error('listen_failed', { port, error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  logger.info('started', { version: GUEST_AGENT_VERSION, port, pid: process.pid, config: configPath });

  let reporter: Reporter | undefined;
  if (config) {
    reporter = startReporter(config, {
      post: postJson,
      guestIp: () => firstIpv4(networkInterfaces()),
      hostname,
      bootId: () => readFile('/proc/sys/kernel/random/boot_id', 'utf8'),
      sleep: abortableSleep,
      logger,
    });
  }

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    setTimeout(() => {
      logger.error('shutdown_timeout', { deadline_ms: SHUTDOWN_DEADLINE_MS });
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    stopSampling();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    Promise.all([reporter?.stop(), closed]).then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
