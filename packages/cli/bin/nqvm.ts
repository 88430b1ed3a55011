#!/usr/bin/env -S node --import tsx
import { main } from '../src/main.ts';

const code = await main(
  process.argv.slice(2),
  process.env,
  {
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
    write: (chunk) => process.stdout.write(chunk),
    errRaw: (s) => process.stderr.write(s),
    stderrIsTTY: process.stderr.isTTY === true,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  },
  { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
);
if (code !== 0 || process.argv[2] !== 'up') process.exit(code);
