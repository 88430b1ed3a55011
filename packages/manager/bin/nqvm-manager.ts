#!/usr/bin/env -S node --import tsx
import { main } from '../src/main.ts';

await main();
