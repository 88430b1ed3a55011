import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { followChanges } from '../../src/db/change-cache.ts';
import { type Database, openPglite, openPostgres } from '../../src/db/client.ts';
import { migrate } from '../../src/db/migrate.ts';
import { IMAGES_CHANGED, ImagesRepository } from '../../src/features/images/images.repository.ts';
import { DB_KINDS } from '../support/harness.ts';
import { createDatabase } from '../support/postgres.ts';

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Two handles on one database: "this manager" and "someone else" (another manager, or an operator's SQL). */
async function openPair(kind: (typeof DB_KINDS)[number]): Promise<[Database, Database]> {
  if (kind === 'pglite') {
    const d = openPglite(new PGlite());
    return [d, d];
  }
  const url = await createDatabase(inject('pgBaseUrl'));
  return [openPostgres(url), openPostgres(url)];
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup(kind: (typeof DB_KINDS)[number]) {
  const [mine, other] = await openPair(kind);
  await migrate(mine);
  cleanup.push(async () => {
    await mine.close();
    if (other !== mine) await other.close();
  });
  const repo = new ImagesRepository(mine.db);
  for (const name of ['alpha', 'beta', 'gamma']) {
    const row = await repo.insert({ name, kind: 'volume', description: '', source: { type: 'blank' } });
    await repo.markReady(row.id, 'a'.repeat(64), 1024);
  }
  // Listening after the rows exist: no notification of the setup's own writes is still on its way.
  const stop = followChanges(mine, IMAGES_CHANGED, repo.pages, { retryMs: 50 });
  cleanup.push(stop);
  await until('the change feed', () => repo.pages.isLive);
  return { repo, mine, other };
}

const names = (page: { items: string }) => (JSON.parse(page.items) as { name: string }[]).map((i) => i.name);

describe.each(DB_KINDS)('cached image list pages on %s', (kind) => {
  it('serves a repeated page from memory and shows this manager its own writes at once', async () => {
    const { repo } = await setup(kind);
    const first = await repo.listJson({}, 100);
    expect(await repo.listJson({}, 100)).toBe(first);
    const beta = JSON.parse(first.items)[1] as { id: string };
    await repo.update(beta.id, { name: 'beta-renamed' });
    expect(names(await repo.listJson({}, 100))).toEqual(['alpha', 'beta-renamed', 'gamma']);
  });

  it('drops cached pages when someone else changes the table (another manager, or SQL by hand)', async () => {
    const { repo, other } = await setup(kind);
    expect(names(await repo.listJson({ kind: 'volume' }, 2))).toEqual(['alpha', 'beta']);
    await other.db.execute(sql`UPDATE images SET name = 'aaa' WHERE name = 'gamma'`);
    await until('the other change to show', async () => names(await repo.listJson({ kind: 'volume' }, 2))[0] === 'aaa');
  });
});

describe('cached image list pages on postgres, when the change feed breaks', () => {
  it('serves nothing from memory while the feed is down, and recovers', async () => {
    const { repo, other } = await setup('postgres');
    await repo.listJson({}, 100);
    await other.db.execute(
      sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN nqvm_images_changed%'`,
    );
    await until('the loss to be noticed', () => !repo.pages.isLive);
    await other.db.execute(sql`UPDATE images SET name = 'zzz' WHERE name = 'alpha'`);
    expect(names(await repo.listJson({}, 100))).toEqual(['beta', 'gamma', 'zzz']);
    await until('the feed to come back', () => repo.pages.isLive);
    await repo.listJson({}, 100);
    await other.db.execute(sql`UPDATE images SET name = 'yyy' WHERE name = 'zzz'`);
    await until('the change after recovery to show', async () => names(await repo.listJson({}, 100)).includes('yyy'));
  });
});
