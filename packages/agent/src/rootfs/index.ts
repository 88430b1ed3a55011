export * from './accounts.ts';
export * from './crypt.ts';
export * from './ext4.ts';
export * from './guest-config.ts';
export * from './init-detect.ts';
export * from './prepare.ts';
export * from './runtime.ts';
