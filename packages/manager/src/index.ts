export { type BuildOptions, type BuiltApp, buildApp, type Services } from './app.ts';
export { ConfigError, loadConfig, type ManagerConfig } from './config.ts';
export { type Database, newPglite, openDatabase, openPglite, openPostgres } from './db/client.ts';
export { MigrationError, migrate } from './db/migrate.ts';
export { resetPassword } from './features/auth/reset-password.ts';
export { main } from './main.ts';
