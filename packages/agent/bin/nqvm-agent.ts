#!/usr/bin/env -S node --import tsx
import { main } from '../src/main.ts';

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
