// Copies the non-TypeScript parts of built-in connectors (manifests, schemas, READMEs)
// next to their compiled modules in dist/, so a built-in connector folder in dist/ is a
// complete plugin folder, laid out exactly like an external one.
import { cpSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'connectors');
const to = join(root, 'dist', 'connectors');
if (existsSync(from)) {
  cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith('.ts') || src.endsWith('.d.ts') });
}
