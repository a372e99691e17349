// The console's diagram and first load, in the test browser (Debian's chromium through
// playwright-core): how long elkjs (in its worker, as the console runs it) takes to lay
// out processes of 20, 50 and 200 steps, median of 7 runs each after one warm-up, with
// ratios to the 20-step layout of the same run; and the script the console's first load
// fetches (the sign-in page and every module it imports), raw and gzipped; then what the
// editor page adds (pages/editor.js and what it imports: CodeMirror and the process
// schema's validator, fetched only when that page opens), how long the bundled schema
// check of a 200-step definition takes (it runs after each pause in typing) and how long
// the editor takes to open on that definition. Timed and printed, never asserted. Run
// after `npm run build`: node bench/console-diagram.mjs
import { gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { chromium } from 'playwright-core';
import { consolePlugin } from '../dist/runtime/console/plugin.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const runs = 7;

const app = Fastify();
app.register(consolePlugin());
const url = await app.listen({ host: '127.0.0.1', port: 0 });
const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  const page = await browser.newPage();
  let scripts = [];
  page.on('response', (r) => {
    if ((r.headers()['content-type'] ?? '').startsWith('text/javascript')) scripts.push(r.body().then((b) => ({ url: r.url().slice(url.length), raw: b.length, gzip: gzipSync(b, { level: 9 }).length })));
  });
  await page.goto(url + '/');
  await page.waitForLoadState('networkidle');
  const loaded = await Promise.all(scripts);
  scripts = [];
  const editor = await page.evaluate(async ({ runs }) => {
    await import('/pages/editor.js');
    const { schemaProblems } = await import('/vendor-process-schema.js');
    const { createDefinitionEditor } = await import('/definition-editor.js');
    const steps = Array.from({ length: 200 }, (_, i) => ({ id: `s${i}`, kind: 'map', expression: '$', ...(i < 199 ? { next: `s${i + 1}` } : {}) }));
    const definition = { id: 'p200', name: 'p200', start: { kind: 'documents', next: 's0' }, steps };
    const text = JSON.stringify(definition, null, 2);
    const median = (fn) => {
      const times = [];
      for (let r = 0; r < runs; r++) {
        const t0 = performance.now();
        fn();
        times.push(performance.now() - t0);
      }
      return times.sort((a, b) => a - b)[Math.floor(runs / 2)];
    };
    const check = median(() => schemaProblems(structuredClone(definition)));
    const open = median(() => {
      const e = createDefinitionEditor({ text, hints: { connections: [], connectors: [], processes: [] } });
      globalThis.document.body.append(e.element);
      e.view.destroy();
      e.element.remove();
    });
    return { lines: text.split('\n').length, check, open };
  }, { runs });
  const editorScripts = await Promise.all(scripts);
  const sizes = await page.evaluate(
    async ({ sizes, runs }) => {
      const { graphOf } = await import('/graph.js');
      const { layoutGraph } = await import('/diagram.js');
      // a process of n steps: a chain of maps with, every 10 steps, a decision whose false
      // outcome goes to a notify on a side path
      const definition = (n) => {
        const steps = [];
        let i = 0;
        while (steps.length < n) {
          const id = `s${i}`;
          const next = steps.length + 1 < n ? `s${i + 1}` : undefined;
          if (i % 10 === 5 && steps.length + 2 < n) {
            steps.push({ id, kind: 'decision', condition: 'x', ifTrue: next, ifFalse: `n${i}` });
            steps.push({ id: `n${i}`, kind: 'notify', message: 'side' });
          } else steps.push({ id, kind: 'map', expression: '$', ...(next ? { next } : {}) });
          i++;
        }
        return { id: `p${n}`, name: `p${n}`, start: { kind: 'documents', next: 's0' }, steps };
      };
      const out = {};
      for (const n of sizes) {
        const graph = graphOf(definition(n));
        await layoutGraph(graph); // warm-up (the first also starts the worker)
        const times = [];
        for (let r = 0; r < runs; r++) {
          const t0 = performance.now();
          await layoutGraph(graph);
          times.push(performance.now() - t0);
        }
        times.sort((a, b) => a - b);
        out[n] = { nodes: graph.nodes.length, edges: graph.edges.length, median: times[Math.floor(times.length / 2)], min: times[0], max: times[times.length - 1] };
      }
      return out;
    },
    { sizes: [20, 50, 200], runs },
  );
  const base = sizes[20].median;
  console.log(`chromium ${browser.version()}, Node ${process.version}; ${runs} runs per size after a warm-up`);
  console.log('| steps | nodes | edges | layout ms median | [min–max] | vs 20 steps |');
  console.log('| ---: | ---: | ---: | ---: | --- | ---: |');
  for (const [n, s] of Object.entries(sizes)) console.log(`| ${n} | ${s.nodes} | ${s.edges} | ${s.median.toFixed(1)} | ${s.min.toFixed(1)}–${s.max.toFixed(1)} | ${(s.median / base).toFixed(2)} |`);
  const total = loaded.reduce((a, s) => ({ raw: a.raw + s.raw, gzip: a.gzip + s.gzip }), { raw: 0, gzip: 0 });
  console.log('\n| first-load script | bytes | gzipped |');
  console.log('| --- | ---: | ---: |');
  for (const s of loaded.sort((a, b) => b.gzip - a.gzip)) console.log(`| ${s.url} | ${s.raw} | ${s.gzip} |`);
  console.log(`| **total** | ${total.raw} | ${total.gzip} (${(total.gzip / 1024).toFixed(1)} KiB) |`);
  const added = editorScripts.reduce((a, s) => ({ raw: a.raw + s.raw, gzip: a.gzip + s.gzip }), { raw: 0, gzip: 0 });
  console.log('\n| the editor page adds | bytes | gzipped |');
  console.log('| --- | ---: | ---: |');
  for (const s of editorScripts.sort((a, b) => b.gzip - a.gzip)) console.log(`| ${s.url} | ${s.raw} | ${s.gzip} |`);
  console.log(`| **total** | ${added.raw} | ${added.gzip} (${(added.gzip / 1024).toFixed(1)} KiB) |`);
  console.log(`\n200-step definition (${editor.lines} lines): schema check ${editor.check.toFixed(1)} ms, editor opened in ${editor.open.toFixed(1)} ms (medians of ${runs})`);
} finally {
  await browser.close();
  await app.close();
}
