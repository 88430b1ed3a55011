import { ttyLogDestination } from '@nqvm/api';
import pino from 'pino';
import { startAgent } from './agent.ts';
import { AgentConfigError, loadAgentConfig } from './config.ts';

/** `nqvm-agent`: runs until SIGTERM/SIGINT, then stops serving and leaves every VM running. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: ReturnType<typeof loadAgentConfig>;
  try {
    config = loadAgentConfig(env);
  } catch (e) {
    if (e instanceof AgentConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  const log = pino({ name: 'nqvm-agent', level: env.AGENT_LOG_LEVEL || 'info' }, ttyLogDestination());
  const agent = await startAgent(config, { logger: log });
  log.info({ url: agent.url, host_id: agent.hostId, data_dir: config.dataDir }, 'nqvm-agent ready');
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down; VMs keep running');
    agent.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
