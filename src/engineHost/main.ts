// Entry point of the engine process that the extension spawns (bundled to dist/engineHost.js):
// serves JSON-RPC on stdio (host.ts) and exits with the host's code.
import { runEngineHost } from './host';

void runEngineHost().then((code) => process.exit(code));
