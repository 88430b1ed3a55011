import { existsSync } from 'node:fs';

/** Where a runtime VM's function code lives (emptied at every load). */
export const FUNCTION_DIR = '/tmp/nqvm-function';

/** The guest tools' Node.js (the host's node 20 with its libraries, run through its own loader). */
const TOOLS_NODE_DIR = '/opt/nqvm/node';
const LOADER = 'ld-linux-x86-64.so.2';

/**
 * How each runtime is started: node20 is the node the guest agent itself runs on (through the guest tools' loader
 * when present, so it needs nothing of the rootfs), python3 the rootfs's own interpreter, unbuffered.
 */
export function runtimeCommands(exists: (p: string) => boolean = existsSync): { node20: string[]; python3: string[] } {
  const loader = `${TOOLS_NODE_DIR}/${LOADER}`;
  const node20 = exists(loader)
    ? [loader, '--library-path', TOOLS_NODE_DIR, `${TOOLS_NODE_DIR}/node`]
    : [process.execPath];
  const python = ['/usr/bin/python3', '/usr/local/bin/python3', '/bin/python3'].find((p) => exists(p)) ?? 'python3';
  return { node20, python3: [python, '-u'] };
}
