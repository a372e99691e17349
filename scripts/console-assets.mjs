// Builds the console's vendored browser files next to its static files (the console
// plugin serves that folder; no CDN). The outputs are generated (git ignores them), by
// `npm run build` through copy-assets.mjs:
// - elkjs's API as an ES module bundled by esbuild, and elkjs's layout worker as it ships
//   (elk-worker.min.js: no eval, no `new Function`, no inline worker, so it runs under the
//   console's `default-src 'self'` as a same-origin Worker);
// - CodeMirror 6 for the definition editor (vendor-codemirror.js), only the parts the
//   editor uses, bundled by esbuild;
// - the process schema for the editor (vendor-process-schema.js): ajv's standalone code
//   for schemas/process.schema.json, compiled here with the runtime's own ajv options
//   (createAjv), so the browser validates without eval (the CSP has no 'unsafe-eval'),
//   with the runtime's reading of ajv errors (runtime/sdk/schema-problems.ts) and the
//   schema itself, for completion.
// The editor's two files are imported by pages/editor.js alone, which app.js loads with
// import() when the editor page opens: the console's first load stays without them.
import { copyFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const staticDir = join(root, 'runtime', 'console', 'static');
const require = createRequire(import.meta.url);

/** The generated files, by name: the console plugin test checks them as vendored code. */
export const vendorFiles = ['vendor-elk-api.js', 'vendor-elk-worker.js', 'vendor-codemirror.js', 'vendor-process-schema.js'];

const esm = { bundle: true, format: 'esm', minify: true, legalComments: 'inline', target: 'es2022', logLevel: 'warning' };

/** What the definition editor (pages/editor.js, definition-editor.js) takes of CodeMirror. */
const codemirrorEntry = `
export { basicSetup } from 'codemirror';
export { EditorView, keymap } from '@codemirror/view';
export { EditorState, StateEffect } from '@codemirror/state';
export { json, jsonParseLinter } from '@codemirror/lang-json';
export { linter, lintGutter } from '@codemirror/lint';
export { autocompletion, startCompletion } from '@codemirror/autocomplete';
export { syntaxTree, ensureSyntaxTree } from '@codemirror/language';
`;

/** ajv's standalone validation code for the process schema, with the runtime's options. */
async function processValidatorCode() {
  const { createAjv } = await import('../dist/runtime/sdk/json-schema.js');
  const standaloneModule = await import('ajv/dist/standalone/index.js');
  const standaloneCode = standaloneModule.default.default ?? standaloneModule.default;
  const schema = JSON.parse(readFileSync(join(root, 'schemas', 'process.schema.json'), 'utf8'));
  const ajv = createAjv({ standalone: true });
  ajv.addSchema(schema);
  return standaloneCode(ajv, ajv.getSchema(schema.$id));
}

const processSchemaEntry = `
import validate from 'quark:process-validator';
import { problemsFromAjv } from './runtime/sdk/schema-problems.ts';
export { default as processSchema } from './schemas/process.schema.json';
/** The schema's problems with a definition, worded as the runtime words them: [{path, message, keyword}]. */
export function schemaProblems(definition) {
  return validate(definition) ? [] : problemsFromAjv(validate.errors);
}
`;

/** Serves the generated validator as a module of the bundle (its ajv imports resolve from the package). */
function virtualValidator(code) {
  return {
    name: 'quark-process-validator',
    setup(b) {
      b.onResolve({ filter: /^quark:process-validator$/ }, () => ({ path: 'process-validator', namespace: 'quark' }));
      b.onLoad({ filter: /.*/, namespace: 'quark' }, () => ({ contents: code, resolveDir: root, loader: 'js' }));
    },
  };
}

export async function buildConsoleAssets() {
  await build({ ...esm, stdin: { contents: "export { default } from 'elkjs/lib/elk-api.js';", resolveDir: root, loader: 'js' }, outfile: join(staticDir, vendorFiles[0]) });
  copyFileSync(require.resolve('elkjs/lib/elk-worker.min.js'), join(staticDir, vendorFiles[1]));
  await build({ ...esm, stdin: { contents: codemirrorEntry, resolveDir: root, loader: 'js' }, outfile: join(staticDir, vendorFiles[2]) });
  await build({ ...esm, stdin: { contents: processSchemaEntry, resolveDir: root, loader: 'js' }, plugins: [virtualValidator(await processValidatorCode())], outfile: join(staticDir, vendorFiles[3]) });
}
