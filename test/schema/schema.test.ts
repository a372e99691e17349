import t from 'tap';
import { createSchemaRegistry, schemaIds } from '../../runtime/schema/index.js';

const schemas = createSchemaRegistry();

t.test('manifest validation reports every problem with a JSON pointer', async (t) => {
  const problems = schemas.validator(schemaIds.manifest)({ id: 'X', name: '', version: '1', runtimeApi: '^1', entry: '../escape.js', connectionSchema: 'c.json', testConnection: true, operations: [{ id: 'get', name: 'Get', kind: 'teleport', parameters: 'p.json' }], extra: 1 });
  t.same(problems.map((p) => p.path).sort(), ['/entry', '/extra', '/id', '/name', '/operations/0/kind', '/version']);
});

t.test('connection schemas: annotations are the vocabulary; unknown keywords and bad annotations are refused', async (t) => {
  const meta = schemas.validator(schemaIds.connectionSchema);
  t.same(meta({ type: 'object', properties: { a: { title: 'A', type: 'string', 'x-order': 1, 'x-secret': true, 'x-unit': 'MB', 'x-help': 'h', 'x-enum-labels': { x: 'X' } } } }), []);
  t.same(meta({ type: 'object', properties: { a: { title: 'A', 'x-order': -1, 'x-secret': 'yes' } } }).map((p) => p.path).sort(), ['/properties/a/x-order', '/properties/a/x-secret']);
  t.same(meta({ type: 'object', properties: { a: { type: 'string' } } }).map((p) => p.path), ['/properties/a/title']);
  t.same(meta({ type: 'object', properties: { pin: { title: 'PIN', type: 'integer', 'x-secret': true } } }).map((p) => p.path), ['/properties/pin/type'], 'a secret is a string');
  t.throws(() => schemas.compile({ type: 'object', properties: { a: { type: 'string', 'x-colour': 'red' } } }, 'c.json'), { code: 'QUARK_ERR_PLUGIN_SCHEMA_INVALID', message: /unknown keyword: "x-colour"/ });
  t.throws(() => schemas.compile({ type: 'object', properties: { a: { $ref: '#/$defs/nope' } } }, 'c.json'), { code: 'QUARK_ERR_PLUGIN_SCHEMA_INVALID' });
});

t.test('compiled connection validators fill defaults and name each failing field', async (t) => {
  const validate = schemas.compile({ type: 'object', required: ['host'], additionalProperties: false, properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', default: 443 }, region: { enum: ['eu', 'us'] } } }, 'c.json');
  const config: Record<string, unknown> = { host: 'h' };
  t.same(validate(config), []);
  t.equal(config.port, 443);
  t.same(validate({ region: 'mars', port: 'x', zzz: 1 }), [
    { path: '/host', message: '"host" is required', keyword: 'required' },
    { path: '/zzz', message: '"zzz" is not a known field', keyword: 'additionalProperties' },
    { path: '/port', message: '"port" must be a whole number', keyword: 'type' },
    { path: '/region', message: '"region" must be one of: "eu", "us"', keyword: 'enum' },
  ]);
});

t.test('the process schema documents itself; the example processes are valid against it', async (t) => {
  const { readFileSync, readdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { packageRoot } = await import('../../runtime/core/paths.js');
  const schema = JSON.parse(readFileSync(join(packageRoot, 'schemas', 'process.schema.json'), 'utf8'));
  t.equal(schema.$id, schemaIds.process);
  t.ok(schema.title && schema.description, 'the schema has a title and a description');
  const stepDefs = Object.entries(schema.$defs as Record<string, any>).filter(([name]) => name.endsWith('Step'));
  t.equal(stepDefs.length, schema.$defs.step.properties.kind.enum.length, 'one definition per step kind');
  for (const [name, def] of stepDefs) t.ok(def.title && def.description, `${name} has a title and a description`);
  const validate = schemas.validator(schemaIds.process);
  const examples = readdirSync(join(packageRoot, 'processes')).filter((f) => f.endsWith('.json') && !f.includes('sample'));
  for (const file of examples) t.same(validate(JSON.parse(readFileSync(join(packageRoot, 'processes', file), 'utf8'))), [], `processes/${file} is valid`);
  t.same(validate({ id: 'x', name: 'x', start: { kind: 'none', next: 'a' }, steps: [{ id: 'a', kind: 'decision', condition: 'true', ifTrue: 'b', colour: 'red' }] }).map((p) => p.path), ['/steps/0/colour'], 'an unknown field of a step is named');
});

t.test('limitDefaults are the documented defaults of the configuration schema, the ones a home gets filled in', async (t) => {
  const schemas = createSchemaRegistry();
  const defaults = schemas.limitDefaults();
  const config: any = { name: 'edge', kind: 'atom', owner: { id: 'acc_x', name: 'acme' }, limits: {} };
  schemas.validator(schemaIds.runtimeConfig)(config);
  t.same(defaults, Object.fromEntries(Object.entries(config.limits).filter(([, v]) => typeof v === 'number')), 'the same values validation fills in');
  t.equal(defaults.pluginImportTimeoutMs, 10_000);
  t.equal(defaults.workerHeapMb, 4096);
  t.ok(Object.isFrozen(defaults), 'read-only');
});
