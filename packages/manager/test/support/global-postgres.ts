import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgBaseUrl: string;
  }
}

/** One PostgreSQL cluster for the whole integration run; each test file makes its own database. */
export default async function setup(project: TestProject) {
  const pg = await startPostgres();
  project.provide('pgBaseUrl', pg.baseUrl);
  return () => pg.stop();
}
