import { bundleGuestAgent } from '../src/index';

const outFile = process.argv[2];
const result = await bundleGuestAgent(outFile);
console.log(`guest-agent ${result.version}: ${result.outFile} (${(result.bytes / 1024).toFixed(1)} KiB)`);
