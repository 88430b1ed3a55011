export * from './auth.schema.ts';
export * from './client.ts';
export * from './common.schema.ts';
export * from './event.schema.ts';
export * from './host.schema.ts';
export * from './openapi.ts';
export * from './route.ts';
export * from './routes.ts';
