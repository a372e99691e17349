import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { consoleDir, consoleFileNames, consolePlugin, loadConsoleFiles } from '../../runtime/console/plugin.js';
// the files the build generates next to the console's own (scripts/console-assets.mjs)
const vendorFiles = ['vendor-elk-api.js', 'vendor-elk-worker.js', 'vendor-codemirror.js', 'vendor-process-schema.js'];

t.test('the console is served at / with a strict Content-Security-Policy, without auth', async (t) => {
  const app = Fastify();
  app.register(consolePlugin());
  t.teardown(() => app.close());
  const index = await app.inject({ method: 'GET', url: '/' });
  t.equal(index.statusCode, 200);
  t.match(index.headers['content-type'], /^text\/html/);
  t.match(index.headers['content-security-policy'], /default-src 'self'/);
  t.match(index.headers['content-security-policy'], /script-src 'self';/);
  t.notMatch(index.headers['content-security-policy'], /unsafe-inline|unsafe-eval|https?:/, 'no inline code, no other origin');
  t.equal(index.headers['x-content-type-options'], 'nosniff');
  t.equal(index.headers['x-frame-options'], 'DENY');
  for (const name of ['app.js', 'api.js', 'form.js', 'dom.js', 'pages/tokens.js']) {
    const file = await app.inject({ method: 'GET', url: `/${name}` });
    t.equal(file.statusCode, 200, name);
    t.match(file.headers['content-type'], /^text\/javascript/, `${name} is served as a module script`);
  }
  t.match((await app.inject({ method: 'GET', url: '/style.css' })).headers['content-type'], /^text\/css/);
  t.equal((await app.inject({ method: 'GET', url: '/../package.json' })).statusCode, 404, 'nothing outside the console folder');
});

t.test('the console files hold no inline script or style and load nothing from another origin', async (t) => {
  const names = consoleFileNames();
  t.ok(names.includes('pages/tokens.js'), 'files in subfolders are found');
  t.same([...loadConsoleFiles().keys()].sort(), names.sort(), 'every file is served');
  for (const name of vendorFiles) t.ok(names.includes(name), `the build made ${name}`);
  for (const name of names) {
    const text = readFileSync(join(consoleDir, name), 'utf8');
    if (vendorFiles.includes(name)) {
      // elkjs, CodeMirror and the process schema's standalone ajv code, bundled at build
      // time: namespace names, license URLs and the schema's $id are in their text, but
      // they must not need eval or `new Function` (the CSP has no 'unsafe-eval') nor build
      // HTML
      t.notMatch(text, /\beval\(|new Function\(|innerHTML|document\.write/, `${name}: no eval, no HTML from strings`);
      continue;
    }
    if (name.endsWith('.html')) {
      t.notMatch(text, /<script(?![^>]*\bsrc=)[^>]*>/, `${name}: every script has a src`);
      t.notMatch(text, /\son[a-z]+=|\sstyle=/, `${name}: no inline handlers or styles`);
    }
    // the SVG namespace is a name, not an address
    t.notMatch(text.replaceAll('http://www.w3.org/2000/svg', ''), /https?:\/\/(?!127\.0\.0\.1)/, `${name}: no URL of another site`);
    if (name.endsWith('.js')) t.notMatch(text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/, `${name}: no HTML from strings`);
  }
});
