// Builds the console's vendored browser files next to its static files (the console
// plugin serves that folder; no CDN): elkjs's API as an ES module bundled by esbuild, and
// elkjs's layout worker as it ships (elk-worker.min.js: no eval, no `new Function`, no
// inline worker, so it runs under the console's `default-src 'self'` as a same-origin
// Worker). The outputs are generated (git ignores them), by `npm run build` through
// copy-assets.mjs.
import { copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const staticDir = join(root, 'runtime', 'console', 'static');
const require = createRequire(import.meta.url);

/** The generated files, by name: the console plugin test checks them as vendored code. */
export const vendorFiles = ['vendor-elk-api.js', 'vendor-elk-worker.js'];

export async function buildConsoleAssets() {
  await build({
    stdin: { contents: "export { default } from 'elkjs/lib/elk-api.js';", resolveDir: root, loader: 'js' },
    bundle: true,
    format: 'esm',
    minify: true,
    legalComments: 'inline',
    target: 'es2022',
    outfile: join(staticDir, vendorFiles[0]),
    logLevel: 'warning',
  });
  copyFileSync(require.resolve('elkjs/lib/elk-worker.min.js'), join(staticDir, vendorFiles[1]));
}
