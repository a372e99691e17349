// Copies the non-TypeScript parts of connectors (manifests, schemas, READMEs) next to
// their compiled modules in dist/, so a connector folder in dist/ is a complete plugin
// folder: built-in ones from connectors/, external ones (loaded through plugins.paths,
// never built in) from plugins/.
import { cpSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const folder of ['connectors', 'plugins']) {
  const from = join(root, folder);
  if (existsSync(from)) {
    cpSync(from, join(root, 'dist', folder), { recursive: true, filter: (src) => !src.endsWith('.ts') || src.endsWith('.d.ts') });
  }
}

// the console's vendored browser files (elkjs), bundled next to its static files
const { buildConsoleAssets } = await import('./console-assets.mjs');
await buildConsoleAssets();
