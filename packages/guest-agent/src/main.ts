import { readFile, writeFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { ConfigError, configPathFromEnv, parseConfig, type ResolvedConfig } from './config';
import { applyConsoleSize } from './console-size';
import { FUNCTION_DIR, runtimeCommands } from './function-commands';
import { FunctionRunner, procMemTotal, procOomKills } from './function-runner';
import { applyIdentity, execArgv, interfaceWith } from './identity';
import { createLogger, type Logger, logSink } from './log';
import { MetricsSampler } from './metrics';
import { applyExtraNics, guestNicHost, parseNicArgs } from './nics';
import { abortableSleep, firstIpv4, postJson, type Reporter, startReporter } from './report';
import {
  type ConsoleSizeHandler,
  createGuestServer,
  type FunctionsHandler,
  type IdentityHandler,
  listen,
  type ReportNowHandler,
  startCpuSampling,
} from './server';
import { parseService, runService, SERVICE_PATH } from './service';
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
  const logger = createLogger(logSink());
  const configPath = configPathFromEnv();
  const config = await loadConfig(configPath, logger);
  const port = config?.port ?? GUEST_AGENT_PORT;

  const sampler = new MetricsSampler();
  const stopSampling = startCpuSampling(sampler, logger);
  let reporter: Reporter | undefined;
  // The host agent calls from the address guests report to: its guest endpoint on the bridge gateway.
  const host = () => (config ? new URL(config.host_url).hostname.replace(/^\[|\]$/g, '') : '');
  const identity: IdentityHandler | undefined = config
    ? {
        token: () => config.token,
        host,
        apply: async (id) => {
          const iface = interfaceWith(id.old_ip) ?? 'eth0';
          // Taken before the address changes: the host may ask for a report (with the new token) as soon as this
          // guest answers on its new address, while the rest of the identity is still being applied.
          config.vm_id = id.vm_id;
          config.token = id.token;
          await applyIdentity(id, execArgv, iface);
          await writeFile(
            configPath,
            `${JSON.stringify({ vm_id: id.vm_id, token: id.token, host_url: config.host_url, port: config.port })}\n`,
            { mode: 0o600 },
          ).catch((err: unknown) => logger.error('config_write_failed', { error: String(err) }));
          logger.info('identity_applied', { vm_id: id.vm_id, ip: id.ip, hostname: id.hostname });
          reporter?.kick();
        },
      }
    : undefined;
  const consoleSize: ConsoleSizeHandler | undefined = config
    ? { token: () => config.token, host, apply: (size) => applyConsoleSize(size, { exec: execArgv }) }
    : undefined;
  const reportNow: ReportNowHandler | undefined = config
    ? { token: () => config.token, host, kick: () => reporter?.kick() }
    : undefined;
  const runner = new FunctionRunner({
    workDir: FUNCTION_DIR,
    commands: runtimeCommands(),
    memTotalBytes: procMemTotal,
    oomKills: procOomKills,
    ...(process.getuid?.() === 0 ? { user: { uid: 65534, gid: 65534 } } : {}),
  });
  const functions: FunctionsHandler | undefined = config ? { token: () => config.token, host, runner } : undefined;
  const server = createGuestServer({
    sampler,
    logger,
    ...(functions ? { functions } : {}),
    ...(identity ? { identity } : {}),
    ...(consoleSize ? { consoleSize } : {}),
    ...(reportNow ? { reportNow } : {}),
  });
  try {
    await listen(server, port);
  } catch (err) {
    logger.error('listen_failed', { port, error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  logger.info('started', { version: GUEST_AGENT_VERSION, port, pid: process.pid, config: configPath });

  // Extra NICs get their addresses here on every init; the first NIC's comes from the injected network config.
  const addresses = () =>
    Object.fromEntries(Object.entries(networkInterfaces()).map(([dev, a]) => [dev, (a ?? []).map((x) => x.address)]));
  await applyExtraNics(
    parseNicArgs(await readFile('/proc/cmdline', 'utf8').catch(() => '')),
    guestNicHost(execArgv, addresses),
  )
    .then((nics) => nics.length > 0 && logger.info('nics_configured', { nics: nics.join(', ') }))
    .catch((err: unknown) => logger.error('nics_failed', { error: err instanceof Error ? err.message : String(err) }));

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

  // A VM of an OCI image: the image's entrypoint is this agent's service; when it ends for good, so does the VM.
  const serviceText = await readFile(SERVICE_PATH, 'utf8').catch(() => undefined);
  const stopService = serviceText
    ? runService(parseService(serviceText), {
        logger,
        readText: (p) => readFile(p, 'utf8'),
        finished: (code) => {
          logger.info('service_finished', { code });
          execArgv('/etc/nqvm/bin/busybox', ['poweroff']).catch(() => undefined);
        },
      })
    : undefined;

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
    stopService?.();
    runner.close();
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
