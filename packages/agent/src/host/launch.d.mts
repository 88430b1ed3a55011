import type { ChildProcess } from 'node:child_process';
import type { LaunchOptions } from './exec.ts';

export function launchProcess(opts: LaunchOptions & { cmd: string; args: readonly string[] }): Promise<ChildProcess>;
