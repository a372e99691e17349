// The import rules of ARCHITECTURE.md ("Allowed imports") hold for every file of
// runtime/, connectors/ and plugins/. The table is read from ARCHITECTURE.md itself, so
// the document and the check cannot drift apart.
import t from 'tap';
import ts from 'typescript';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { root } from '../helpers/quark.js';

type Rules = Map<string, Set<string>>;

interface Import {
  file: string;
  specifier: string;
}

/** The rows of the "Allowed imports" table: unit → the units and files it may import. */
function parseRules(markdown: string): Rules {
  // the first table after the heading: from its header row to the first line that is not a row
  const section = /^### Allowed imports\n[\s\S]*?^(\| unit \| may import \|\n(?:\|.*\n)+)/m.exec(markdown)?.[1] ?? '';
  const rules: Rules = new Map();
  for (const [, unit, allowed] of section.matchAll(/^\| `([^`]+)` \| (.+) \|$/gm)) {
    rules.set(unit!, new Set([...allowed!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!)));
  }
  return rules;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : tsFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every module specifier of a file: static imports, re-exports, import() with a literal, type imports. */
function importsOf(file: string): Import[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((i) => ({ file, specifier: i.fileName }));
}

/** `runtime/<x>/…` → its unit: the folder, `sdk/testing`, or `index.ts`. */
function unitOf(pathInRuntime: string): string {
  const parts = pathInRuntime.split(sep);
  if (parts.length === 1) return parts[0]!;
  if (parts[0] === 'sdk' && parts[1] === 'testing' && parts.length > 2) return 'sdk/testing';
  return parts[0]!;
}

/** The file a relative specifier names, relative to `base`, with its .ts name. */
function target(from: string, specifier: string, base: string): string {
  return relative(base, normalize(join(dirname(from), specifier))).replace(/\.js$/, '.ts');
}

/** Problems with one runtime import, in words; none when the table allows it. */
function runtimeProblem(rules: Rules, { file, specifier }: Import): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const runtimeDir = join(root, 'runtime');
  const from = relative(runtimeDir, file);
  const to = target(file, specifier, runtimeDir);
  if (to.startsWith('..')) return `runtime/${from} imports ${specifier}, outside runtime/`;
  const [fromUnit, toUnit] = [unitOf(from), unitOf(to)];
  if (fromUnit === toUnit) return undefined;
  const allowed = rules.get(fromUnit);
  if (!allowed) return `runtime/${from}: its unit "${fromUnit}" has no row in ARCHITECTURE.md's Allowed imports`;
  if (allowed.has(toUnit) || allowed.has(to.split(sep).join('/'))) return undefined;
  return `runtime/${from} imports runtime/${to} ("${toUnit}"), which "${fromUnit}" may not import`;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Problems with one plugin import: only quark/sdk, node:, its own folder and the package's dependencies. */
function pluginProblem(dependencies: Set<string>, pluginDir: string, { file, specifier }: Import): string | undefined {
  const name = relative(root, file);
  if (specifier === 'quark/sdk' || specifier.startsWith('node:')) return undefined;
  if (specifier.startsWith('.')) {
    const to = target(file, specifier, pluginDir);
    return to.startsWith('..') ? `${name} imports ${specifier}, outside its plugin folder` : undefined;
  }
  if (specifier.startsWith('quark/')) return `${name} imports ${specifier}: plugins may use quark/sdk only`;
  return dependencies.has(packageName(specifier)) ? undefined : `${name} imports ${specifier}, which is not among the package's dependencies`;
}

function pluginDirs(): string[] {
  return ['connectors', 'plugins'].flatMap((top) =>
    readdirSync(join(root, top), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(root, top, e.name)),
  );
}

const rules = parseRules(readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8'));
const runtimeFiles = tsFiles(join(root, 'runtime'));

t.test('ARCHITECTURE.md has the table, and it keeps STYLE.md\'s rule', async (t) => {
  t.ok(rules.size >= 10, 'the Allowed imports table is there and parsed');
  t.same([...(rules.get('core') ?? ['missing'])], [], 'core imports nothing else of runtime/');
  t.same([...(rules.get('sdk') ?? ['missing'])], [], 'sdk imports nothing else of runtime/');
  for (const [unit, allowed] of rules) t.notOk(allowed.has('cli'), `${unit} may not import cli`);
  const facadeOnly = { api: ['core', 'index.ts', 'console'], cli: ['core', 'index.ts', 'api/server.ts'], console: ['core'] };
  for (const [unit, expected] of Object.entries(facadeOnly)) {
    t.same([...(rules.get(unit) ?? [])].sort(), expected.sort(), `${unit} reaches the runtime through the facade (and core) only`);
  }
  const units = new Set(runtimeFiles.map((f) => unitOf(relative(join(root, 'runtime'), f))));
  t.same([...units].filter((u) => !rules.has(u)), [], 'every unit of runtime/ has a row');
  t.same([...rules.keys()].filter((u) => !units.has(u)), [], 'and every row is a unit that exists');
});

t.test('every import in runtime/ is one the table allows', async (t) => {
  const imports = runtimeFiles.flatMap(importsOf);
  t.ok(imports.length > 100, `${imports.length} imports read`);
  t.same(imports.map((i) => runtimeProblem(rules, i)).filter(Boolean), []);
});

t.test('connectors/ and plugins/ import only quark/sdk, node:, their own files and their dependencies', async (t) => {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const dependencies = new Set(Object.keys(manifest.dependencies));
  const dirs = pluginDirs();
  t.ok(dirs.length >= 3, `${dirs.length} plugin folders`);
  const problems = dirs.flatMap((dir) => tsFiles(dir).flatMap(importsOf).map((i) => pluginProblem(dependencies, dir, i)));
  t.same(problems.filter(Boolean), []);
});

t.test('the check finds what breaks the rule', async (t) => {
  const file = (path: string) => join(root, 'runtime', path);
  t.match(runtimeProblem(rules, { file: file('core/errors.ts'), specifier: '../store/types.js' }), /core" may not import/);
  t.match(runtimeProblem(rules, { file: file('api/routes/connections.ts'), specifier: '../../store/sqlite-store.js' }), /"api" may not import/);
  t.match(runtimeProblem(rules, { file: file('index.ts'), specifier: './cli/main.js' }), /"index.ts" may not import/);
  t.match(runtimeProblem(rules, { file: file('engine/walker.ts'), specifier: '../processes/executions.js' }), /"engine" may not import/, 'engine may read processes/definition.ts, nothing else of processes');
  t.equal(runtimeProblem(rules, { file: file('engine/walker.ts'), specifier: '../processes/definition.js' }), undefined);
  t.match(runtimeProblem(rules, { file: file('engine/worker.ts'), specifier: '../../connectors/local-files/index.js' }), /outside runtime/);
  const plugin = join(root, 'connectors', 'local-files');
  const deps = new Set(['undici']);
  t.match(pluginProblem(deps, plugin, { file: join(plugin, 'index.ts'), specifier: '../../runtime/core/errors.js' }), /outside its plugin folder/);
  t.match(pluginProblem(deps, plugin, { file: join(plugin, 'index.ts'), specifier: 'quark/sdk/testing' }), /quark\/sdk only/);
  t.match(pluginProblem(deps, plugin, { file: join(plugin, 'index.ts'), specifier: 'left-pad' }), /not among the package's dependencies/);
  t.equal(pluginProblem(deps, plugin, { file: join(plugin, 'index.ts'), specifier: 'undici' }), undefined);
});
