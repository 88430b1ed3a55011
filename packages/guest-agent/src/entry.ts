import { main } from './main';

main().catch((err: unknown) => {
  process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: 'crashed', error: String(err) })}\n`);
  process.exit(1);
});
