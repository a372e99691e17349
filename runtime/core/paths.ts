import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';

/** The folder of the quark package (the one holding package.json), whether run from dist/ or not. */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'schemas'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('quark package root not found');
    dir = parent;
  }
  return dir;
}

export const packageRoot = findPackageRoot();

/** Built-in connectors, compiled: dist/connectors holds complete plugin folders. */
export const builtInConnectorsDir = join(packageRoot, 'dist', 'connectors');

/** The version of this quark package, from its package.json. */
export const quarkVersion = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
