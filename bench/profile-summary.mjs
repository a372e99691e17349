#!/usr/bin/env node
// Summarises V8 CPU profiles (.cpuprofile files, as `node --cpu-prof --cpu-prof-dir D`
// writes them: one per thread, the main thread's and each worker's) by self time: the top
// functions, and the self time by area (the module a function lives in: JSONata, piscina,
// pino, the runtime's own files, Node internals, GC…), per profile and over all of them.
//   node bench/profile-summary.mjs [--top 25] [--from µs] [--to µs] [--inclusive NAME,NAME…] file.cpuprofile…
//   --from, --to       only samples between these monotonic timestamps in µs (the same
//                      clock as process.hrtime; bench/engine/quark.mjs and bench/latency.mjs
//                      print theirs on stderr)
//   --inclusive names  also the inclusive (self + callees) time of functions by name
//   --callers name     also where the self time of the functions by that name comes from:
//                      their callers, 4 frames up
// Samples only: each sample stands for the interval until the next one.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, from: { type: 'string' }, to: { type: 'string' }, inclusive: { type: 'string' }, callers: { type: 'string' } },
});
const top = Number(values.top);
const window = values.from || values.to ? [Number(values.from ?? 0), Number(values.to ?? Infinity)] : undefined;
if (window?.some(Number.isNaN)) throw new Error('--from and --to take µs');
const inclusiveNames = values.inclusive ? values.inclusive.split(',') : [];

function area(frame) {
  const url = frame.url ?? '';
  const name = frame.functionName;
  if (!url) {
    if (name.startsWith('(')) return name; // (garbage collector), (program), (idle), (root)
    return 'native';
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return `quark ${url.slice(dist + 6)}`;
  if (url.includes('/bench/')) return `bench ${url.slice(url.indexOf('/bench/') + 7)}`;
  return url.replace(/^file:\/\//, '');
}

function summarise(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map(); // node id → µs
  let t = profile.startTime;
  let total = 0;
  let first = Infinity;
  let last = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    const dt = i + 1 < profile.samples.length ? profile.timeDeltas[i + 1] : 0;
    if (window && (t < window[0] || t > window[1])) continue;
    first = Math.min(first, t);
    last = Math.max(last, t);
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const fns = new Map();
  const areas = new Map();
  const inclusive = new Map(inclusiveNames.map((n) => [n, 0]));
  const callers = new Map();
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id);
    const key = `${callFrame.functionName || '(anonymous)'} ${area(callFrame)}${callFrame.url ? `:${callFrame.lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const a = area(callFrame);
    areas.set(a, (areas.get(a) ?? 0) + us);
    if (values.callers && callFrame.functionName === values.callers) {
      const chain = [];
      for (let p = parent.get(id); p !== undefined && chain.length < 4; p = parent.get(p)) {
        const f = byId.get(p).callFrame;
        chain.push(`${f.functionName || '(anonymous)'} ${area(f)}${f.url ? `:${f.lineNumber + 1}` : ''}`);
      }
      const key = chain.join(' ← ');
      callers.set(key, (callers.get(key) ?? 0) + us);
    }
    if (inclusiveNames.length) {
      const seen = new Set();
      for (let p = id; p !== undefined; p = parent.get(p)) {
        const name = byId.get(p).callFrame.functionName;
        if (inclusive.has(name) && !seen.has(name)) {
          seen.add(name);
          inclusive.set(name, inclusive.get(name) + us);
        }
      }
    }
  }
  const idle = (areas.get('(idle)') ?? 0);
  return { file, total, busy: total - idle, fns, areas, inclusive, callers, span: last > first ? last - first : 0 };
}

const ms = (us) => (us / 1000).toFixed(1).padStart(9);
const pct = (us, of) => `${((100 * us) / (of || 1)).toFixed(1).padStart(5)}%`;
function print(title, s) {
  console.log(`\n## ${title}: ${ms(s.busy)} ms busy (of ${ms(s.total)} ms sampled${s.span ? `, ${(s.span / 1000).toFixed(1)} ms span` : ''}; idle excluded from the shares)`);
  console.log('\n  self ms   share  area');
  for (const [a, us] of [...s.areas].filter(([a]) => a !== '(idle)').sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${ms(us)}  ${pct(us, s.busy)}  ${a}`);
  console.log('\n  self ms   share  function');
  for (const [f, us] of [...s.fns].filter(([f]) => !f.startsWith('(idle)')).sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${ms(us)}  ${pct(us, s.busy)}  ${f}`);
  if (s.callers?.size) {
    console.log(`\n  self ms   share  callers of ${values.callers}`);
    for (const [c, us] of [...s.callers].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${ms(us)}  ${pct(us, s.busy)}  ${c}`);
  }
  if (s.inclusive.size) {
    console.log('\n  incl ms  share  function (self + callees)');
    for (const [f, us] of s.inclusive) console.log(`${ms(us)}  ${pct(us, s.busy)}  ${f}`);
  }
}

const all = positionals.map(summarise);
for (const s of all) print(basename(s.file), s);
if (all.length > 1) {
  const merged = { total: 0, busy: 0, fns: new Map(), areas: new Map(), inclusive: new Map(), callers: new Map() };
  for (const s of all) {
    merged.total += s.total;
    merged.busy += s.busy;
    for (const key of ['fns', 'areas', 'inclusive', 'callers']) for (const [k, v] of s[key]) merged[key].set(k, (merged[key].get(k) ?? 0) + v);
  }
  print(`all ${all.length} profiles`, merged);
}
