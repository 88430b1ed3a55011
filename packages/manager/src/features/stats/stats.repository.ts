import type { StatCount, Stats } from '@nqvm/api';
import { type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';

/** VM states that hold vCPU and memory on their host. */
export const ALLOCATING_STATES = ['creating', 'starting', 'running', 'paused', 'stopping', 'unknown'];

type Row = Record<string, unknown>;

/** Aggregates for the dashboard, computed in the database (GROUP BY), never from a client-side list. */
export class StatsRepository {
  constructor(private readonly db: Db) {}

  private async rows<T extends Row>(query: SQL): Promise<T[]> {
    const res = (await this.db.execute(query)) as unknown as { rows: T[] };
    return res.rows;
  }

  private counts(query: SQL): Promise<StatCount[]> {
    return this.rows<{ key: string; label: string; count: number }>(query).then((rows) =>
      rows.map((r) => ({ key: String(r.key), label: String(r.label), count: Number(r.count) })),
    );
  }

  async stats(heartbeatTimeoutS: number, overcommit: { cpu: number; mem: number }, tagLimit = 50): Promise<Stats> {
    const allocating = sql.join(
      ALLOCATING_STATES.map((s) => sql`${s}`),
      sql`, `,
    );
    const [byState, byHost, byOwner, byEnv, byTag, hosts, alloc] = await Promise.all([
      this.counts(
        sql`SELECT state AS key, state AS label, count(*)::int AS count FROM vms GROUP BY state ORDER BY count DESC, key`,
      ),
      this.counts(sql`SELECT coalesce(v.host_id::text, '') AS key, coalesce(h.name, 'not placed') AS label, count(*)::int AS count
        FROM vms v LEFT JOIN hosts h ON h.id = v.host_id GROUP BY 1, 2 ORDER BY count DESC, label`),
      this.counts(
        sql`SELECT owner AS key, owner AS label, count(*)::int AS count FROM vms GROUP BY owner ORDER BY count DESC, key`,
      ),
      this.counts(
        sql`SELECT environment AS key, environment AS label, count(*)::int AS count FROM vms GROUP BY environment ORDER BY count DESC, key`,
      ),
      this.counts(sql`SELECT t AS key, t AS label, count(*)::int AS count FROM vms, unnest(tags) AS t
        GROUP BY t ORDER BY count DESC, key LIMIT ${tagLimit}`),
      this.rows<{ hosts: number; healthy: number; cpus: number; mem: number }>(sql`SELECT count(*)::int AS hosts,
        count(*) FILTER (WHERE last_seen_at > now() - make_interval(secs => ${heartbeatTimeoutS}))::int AS healthy,
        coalesce(sum((capacity->>'cpus')::int), 0)::int AS cpus,
        coalesce(sum((capacity->>'memory_mib')::int), 0)::int AS mem FROM hosts`),
      this.rows<{
        vcpu: number;
        mem: number;
      }>(sql`SELECT coalesce(sum(vcpu), 0)::int AS vcpu, coalesce(sum(mem_mib), 0)::int AS mem
        FROM vms WHERE state IN (${allocating})`),
    ]);
    const h = hosts[0] ?? { hosts: 0, healthy: 0, cpus: 0, mem: 0 };
    const a = alloc[0] ?? { vcpu: 0, mem: 0 };
    return {
      vms: {
        total: byState.reduce((n, c) => n + c.count, 0),
        by_state: byState,
        by_host: byHost,
        by_owner: byOwner,
        by_environment: byEnv,
        by_tag: byTag,
      },
      capacity: {
        hosts: Number(h.hosts),
        hosts_healthy: Number(h.healthy),
        vcpu_total: Number(h.cpus),
        vcpu_allocated: Number(a.vcpu),
        mem_mib_total: Number(h.mem),
        mem_mib_allocated: Number(a.mem),
        cpu_overcommit: overcommit.cpu,
        mem_overcommit: overcommit.mem,
      },
    };
  }
}
