import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import type { Authenticator } from '../../http/principal.ts';
import type { StatsRepository } from './stats.repository.ts';

export function statsRoutes(
  app: FastifyInstance,
  authn: Authenticator,
  stats: StatsRepository,
  opts: { heartbeatTimeoutS: number; cpuOvercommit: number; memOvercommit: number },
): void {
  mount(app, authn, api.stats.get, async () =>
    stats.stats(opts.heartbeatTimeoutS, { cpu: opts.cpuOvercommit, mem: opts.memOvercommit }),
  );
}
