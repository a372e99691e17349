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
    { path: '/host', message: 'is required' },
    { path: '/zzz', message: 'is not a known field' },
    { path: '/port', message: 'must be integer' },
    { path: '/region', message: 'must be one of: "eu", "us"' },
  ]);
});
