/**
 * The spec rules of a connector folder, checked offline without running any plugin code:
 * the manifest and schemas against quark's meta-schemas, secret marks against field names,
 * defaults, enums, $refs, field order, the runtime API range and, given the previous
 * version's folder, backward compatibility of saved connections.
 *
 * `quark connector validate` and the conformance kit both call `lintConnector`. The SDK
 * imports nothing of the runtime, so this module owns a small ajv instance of its own,
 * made by the same factory as `runtime/schema`'s (`createAjv`, `sdk/json-schema.ts`).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ajv2020, ErrorObject } from 'ajv/dist/2020.js';
import semver from 'semver';
import { RUNTIME_API_VERSION } from '../index.js';
import { createAjv as createQuarkAjv, describeSchemaProblems, problemsFromAjv, type SchemaProblem } from '../json-schema.js';

type Json = Record<string, unknown>;

/** One problem: the file, a JSON pointer into it, the rule that found it and what is wrong. */
export interface SpecProblem {
  file: string;
  path: string;
  rule: SpecRule;
  message: string;
}

export type SpecRule =
  | 'json'
  | 'manifest'
  | 'runtime-api'
  | 'file'
  | 'schema'
  | 'ref'
  | 'secret-name'
  | 'default'
  | 'enum'
  | 'order'
  | 'group'
  | 'operation'
  | 'compatibility'
  /** What a runtime's loader would quarantine (its import probe in a worker): found by `quark connector validate`, not by lintConnector. */
  | 'loader';

export interface LintResult {
  dir: string;
  /** The manifest's id and version when they could be read. */
  id?: string;
  version?: string;
  problems: SpecProblem[];
}

/** Thrown when there is nothing to lint (no folder, no connector.json): exit code 2. */
export class CannotLintError extends Error {
  override name = 'CannotLintError';
}

export const operationKinds = ['get', 'query', 'create', 'update', 'upsert', 'delete', 'send', 'execute'] as const;

// ---- secret names ---------------------------------------------------------------------

/** Words that make a field name suggest a secret wherever they appear. */
const secretWords = new Set(['password', 'passwd', 'pwd', 'passphrase', 'secret', 'secrets', 'token', 'credential', 'credentials', 'apikey', 'privatekey', 'pin']);
/** A last word that says the field names or locates a secret rather than holding one: `tokenUrl`, `secretName`, `passwordFile`, `keyId`. */
const referenceWords = new Set([
  'id', 'ids', 'name', 'names', 'user', 'username', 'url', 'uri', 'endpoint', 'host', 'file', 'path', 'type', 'header', 'prefix', 'region',
  'expiry', 'expires', 'expiration', 'ttl', 'length', 'size', 'field', 'mode', 'hint', 'policy', 'location', 'format', 'version', 'count',
]);
/** Words before a final `key` that make it an identifier, not a secret: `awsAccessKey` is a key id, `publicKey` is public. */
const publicKeyQualifiers = new Set(['access', 'public', 'partition', 'sort', 'object', 'row', 'primary', 'foreign', 'idempotency', 'routing', 'cache', 'host', 'lookup', 'dedup', 'dedupe', 'unique']);

/** Splits `awsSecretKey`, `proxy_password`, `api-key`, `APIKey` into lower-case words. */
export function nameWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

/**
 * What a field's name says about it: `secret` (password, secret, token, credential,
 * passphrase, PIN, or a final `key` such as apiKey / privateKey / signingKey), `public`
 * (an identifier: a final id / name / user / url / file / path…, or a key qualified as
 * access / public / partition…, such as awsAccessKey or keyId), or `neutral`.
 */
export function secretNameClass(name: string): 'secret' | 'public' | 'neutral' {
  const words = nameWords(name);
  if (words.length === 0) return 'neutral';
  const last = words.at(-1)!;
  const beforeLast = words.at(-2);
  if (referenceWords.has(last)) return 'public';
  if (last === 'key' && beforeLast !== undefined && publicKeyQualifiers.has(beforeLast)) return 'public';
  const joined = words.join('');
  if (words.some((w) => secretWords.has(w)) || joined === 'apikey' || joined.endsWith('privatekey')) return 'secret';
  if (last === 'key') return 'secret';
  return 'neutral';
}

// ---- the meta-schema validator ---------------------------------------------------------

function findSchemasDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'schemas', 'connector-manifest.schema.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('quark schemas/ folder not found');
    dir = parent;
  }
  return join(dir, 'schemas');
}

const manifestId = 'https://quark.dev/schemas/connector-manifest.schema.json';
const connectionMetaId = 'https://quark.dev/schemas/connection-schema.schema.json';

function createAjv(): Ajv2020 {
  const ajv = createQuarkAjv();
  const dir = findSchemasDir();
  for (const file of ['connector-manifest.schema.json', 'connection-schema.schema.json']) {
    ajv.addSchema(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Json);
  }
  return ajv;
}

function escape(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescape(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function ajvProblems(errors: readonly ErrorObject[] | null | undefined, file: string, rule: SpecRule): SpecProblem[] {
  return problemsFromAjv(errors).map(({ path, message }) => ({ file, path, rule, message }));
}

// ---- schema walking -------------------------------------------------------------------

/** Every sub-schema of a schema with its JSON pointer (properties, items, $defs, combinators…). */
function* subschemas(schema: unknown, pointer = ''): Generator<[Json, string]> {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return;
  const node = schema as Json;
  yield [node, pointer];
  for (const key of ['properties', '$defs', 'definitions', 'patternProperties', 'dependentSchemas']) {
    const map = node[key];
    if (map && typeof map === 'object' && !Array.isArray(map)) {
      for (const [name, sub] of Object.entries(map as Json)) yield* subschemas(sub, `${pointer}/${key}/${escape(name)}`);
    }
  }
  for (const key of ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems']) {
    if (node[key] && typeof node[key] === 'object') yield* subschemas(node[key], `${pointer}/${key}`);
  }
  for (const key of ['allOf', 'anyOf', 'oneOf', 'prefixItems']) {
    const list = node[key];
    if (Array.isArray(list)) for (const [i, sub] of list.entries()) yield* subschemas(sub, `${pointer}/${key}/${i}`);
  }
}

function resolvePointer(root: unknown, fragment: string): unknown {
  if (fragment === '' || fragment === '/') return root;
  let node: unknown = root;
  for (const raw of fragment.split('/').slice(1)) {
    const key = unescape(decodeURIComponent(raw));
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Json)[key];
  }
  return node;
}

function refProblems(schema: Json, file: string): SpecProblem[] {
  const problems: SpecProblem[] = [];
  for (const [node, pointer] of subschemas(schema)) {
    const ref = node.$ref;
    if (ref === undefined) continue;
    if (typeof ref !== 'string' || !ref.startsWith('#')) {
      problems.push({ file, path: `${pointer}/$ref`, rule: 'ref', message: `${JSON.stringify(ref)} is not a reference inside this file; plugin schemas may only use local references such as "#/$defs/name"` });
    } else if (resolvePointer(schema, ref.slice(1)) === undefined) {
      problems.push({ file, path: `${pointer}/$ref`, rule: 'ref', message: `"${ref}" does not resolve: nothing at that pointer` });
    }
  }
  return problems;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function typesOf(schema: Json): Set<string> | undefined {
  const type = schema.type;
  if (typeof type === 'string') return new Set(type === 'number' ? ['number', 'integer'] : [type]);
  if (Array.isArray(type)) return new Set(type.flatMap((t) => (t === 'number' ? ['number', 'integer'] : [String(t)])));
  return undefined;
}

// ---- the rules ------------------------------------------------------------------------

interface Context {
  ajv: Ajv2020;
  problems: SpecProblem[];
}

function readJson(path: string, shown: string, ctx: Context): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    ctx.problems.push({ file: shown, path: '', rule: 'file', message: `cannot be read: ${(error as Error).message}` });
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    ctx.problems.push({ file: shown, path: '', rule: 'json', message: `is not JSON: ${(error as Error).message}` });
    return undefined;
  }
}

/** A plugin schema (connection or parameters): $refs, ajv compilation, defaults, enums. */
function checkSchema(schema: Json, file: string, ctx: Context, connection: boolean): void {
  const refs = refProblems(schema, file);
  ctx.problems.push(...refs);
  if (refs.length === 0) {
    const { $id: _id, ...rest } = schema;
    try {
      ctx.ajv.compile(rest);
    } catch (error) {
      ctx.problems.push({ file, path: '', rule: 'schema', message: `does not compile: ${(error as Error).message}` });
    }
  }
  const shared: Json = {};
  if (schema.$defs !== undefined) shared.$defs = schema.$defs;
  if (schema.definitions !== undefined) shared.definitions = schema.definitions;

  for (const [node, pointer] of subschemas(schema)) {
    if ('default' in node && refs.length === 0) {
      const { default: value, $id: _id, ...sub } = node;
      try {
        const validate = ctx.ajv.compile({ ...sub, ...shared });
        if (!validate(structuredClone(value))) {
          const why = describeSchemaProblems(problemsFromAjv(validate.errors));
          ctx.problems.push({ file, path: `${pointer}/default`, rule: 'default', message: `${JSON.stringify(value)} is not valid against its own schema: ${why}` });
        }
      } catch {
        // a sub-schema that only compiles in its document (a reference up the tree); the whole schema's compile check stands
      }
    }
    if (Array.isArray(node.enum)) {
      const values = node.enum as unknown[];
      values.forEach((value, index) => {
        if (values.findIndex((other) => sameJson(other, value)) !== index) {
          ctx.problems.push({ file, path: `${pointer}/enum/${index}`, rule: 'enum', message: `${JSON.stringify(value)} appears more than once` });
        }
      });
      const labels = node['x-enum-labels'];
      if (connection && (labels === null || typeof labels !== 'object')) {
        ctx.problems.push({ file, path: `${pointer}/enum`, rule: 'enum', message: 'an enum of a connection field needs x-enum-labels, a display label for each value' });
      } else if (labels && typeof labels === 'object') {
        const labelMap = labels as Record<string, unknown>;
        for (const value of values) {
          const label = labelMap[String(value)];
          if (typeof label !== 'string' || label.trim() === '') {
            ctx.problems.push({ file, path: `${pointer}/x-enum-labels`, rule: 'enum', message: `has no label for ${JSON.stringify(value)}` });
          }
        }
        for (const key of Object.keys(labelMap)) {
          if (!values.some((v) => String(v) === key)) ctx.problems.push({ file, path: `${pointer}/x-enum-labels/${escape(key)}`, rule: 'enum', message: `labels "${key}", which is not an enum value` });
        }
      }
    }
    const properties = node.properties;
    if (properties && typeof properties === 'object' && !Array.isArray(properties)) {
      const orders = new Map<number, string>();
      for (const [name, field] of Object.entries(properties as Record<string, Json>)) {
        if (field === null || typeof field !== 'object') continue;
        const order = field['x-order'];
        if (typeof order === 'number') {
          const first = orders.get(order);
          if (first !== undefined) ctx.problems.push({ file, path: `${pointer}/properties/${escape(name)}/x-order`, rule: 'order', message: `x-order ${order} is already used by "${first}"` });
          else orders.set(order, name);
        }
        if (connection) checkSecretName(name, field, `${pointer}/properties/${escape(name)}`, file, ctx);
      }
    }
  }
}

function checkSecretName(name: string, field: Json, pointer: string, file: string, ctx: Context): void {
  const mark = field['x-secret'];
  const kind = secretNameClass(name);
  if (kind === 'secret' && mark === undefined) {
    ctx.problems.push({ file, path: `${pointer}`, rule: 'secret-name', message: `"${name}" sounds like a secret but is not marked "x-secret": true (if it really is not a secret, say so with "x-secret": false)` });
  } else if (kind === 'public' && mark === true) {
    ctx.problems.push({ file, path: `${pointer}/x-secret`, rule: 'secret-name', message: `"${name}" names an identifier (an id, user, access key, URL, file…), not a secret: a secret field is write-only and never shown, so do not mark it` });
  }
}

function checkConnectionShape(schema: Json, file: string, ctx: Context): void {
  const validate = ctx.ajv.getSchema(connectionMetaId)!;
  if (!validate(schema)) ctx.problems.push(...ajvProblems(validate.errors, file, 'schema'));
  const groups = new Set(((Array.isArray(schema['x-groups']) ? schema['x-groups'] : []) as Json[]).map((g) => g?.id));
  for (const [node, pointer] of subschemas(schema)) {
    const group = node['x-group'];
    if (pointer !== '' && typeof group === 'string' && !groups.has(group)) {
      ctx.problems.push({ file, path: `${pointer}/x-group`, rule: 'group', message: `names group "${group}", which x-groups does not declare` });
    }
  }
}

interface ReadFolder {
  manifest?: Json;
  connection?: Json;
  /** Parameter schemas by operation id. */
  parameters: Map<string, Json>;
}

/** A file named by the manifest: inside the folder, and there. */
function namedFile(dir: string, shownDir: string, relative: unknown, pointer: string, ctx: Context): { path: string; shown: string } | undefined {
  if (typeof relative !== 'string' || relative === '') return undefined;
  const path = resolve(dir, relative);
  const manifestShown = join(shownDir, 'connector.json');
  if (!path.startsWith(dir + sep)) {
    ctx.problems.push({ file: manifestShown, path: pointer, rule: 'file', message: 'must stay inside the plugin folder' });
    return undefined;
  }
  if (!existsSync(path) || !statSync(path).isFile()) {
    ctx.problems.push({ file: manifestShown, path: pointer, rule: 'file', message: `names ${relative}, which does not exist` });
    return undefined;
  }
  return { path, shown: join(shownDir, relative) };
}

function readFolder(dirArg: string, ctx: Context, check: boolean): ReadFolder {
  const dir = resolve(dirArg);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CannotLintError(`${dirArg} is not a folder`);
  const manifestPath = join(dir, 'connector.json');
  if (!existsSync(manifestPath)) throw new CannotLintError(`${dirArg} has no connector.json: not a connector folder`);
  const shownManifest = join(dirArg, 'connector.json');
  const folder: ReadFolder = { parameters: new Map() };
  const manifest = readJson(manifestPath, shownManifest, ctx);
  if (manifest === undefined) return folder;
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
    ctx.problems.push({ file: shownManifest, path: '', rule: 'manifest', message: 'must be a JSON object' });
    return folder;
  }
  folder.manifest = manifest as Json;
  const m = folder.manifest;
  if (check) {
    const validate = ctx.ajv.getSchema(manifestId)!;
    if (!validate(m)) ctx.problems.push(...ajvProblems(validate.errors, shownManifest, 'manifest'));
    if (typeof m.runtimeApi === 'string') {
      if (semver.validRange(m.runtimeApi) === null) {
        ctx.problems.push({ file: shownManifest, path: '/runtimeApi', rule: 'runtime-api', message: `"${m.runtimeApi}" is not a semver range` });
      } else if (!semver.satisfies(RUNTIME_API_VERSION, m.runtimeApi)) {
        ctx.problems.push({ file: shownManifest, path: '/runtimeApi', rule: 'runtime-api', message: `no runtime can load it: it needs runtime API ${m.runtimeApi}, and this runtime offers ${RUNTIME_API_VERSION}` });
      }
    }
    namedFile(dir, dirArg, m.entry, '/entry', ctx);
  }
  const schemaFile = namedFile(dir, dirArg, m.connectionSchema, '/connectionSchema', check ? ctx : { ...ctx, problems: [] });
  if (schemaFile) {
    const schema = readJson(schemaFile.path, schemaFile.shown, ctx);
    if (schema !== null && typeof schema === 'object' && !Array.isArray(schema)) {
      folder.connection = schema as Json;
      if (check) {
        checkConnectionShape(folder.connection, schemaFile.shown, ctx);
        checkSchema(folder.connection, schemaFile.shown, ctx, true);
      }
    } else if (schema !== undefined && check) {
      ctx.problems.push({ file: schemaFile.shown, path: '', rule: 'schema', message: 'must be a JSON object' });
    }
  }
  const operations = Array.isArray(m.operations) ? (m.operations as Json[]) : [];
  const seen = new Set<string>();
  operations.forEach((op, index) => {
    if (op === null || typeof op !== 'object') return;
    const id = String(op.id);
    if (check && seen.has(id)) ctx.problems.push({ file: shownManifest, path: `/operations/${index}/id`, rule: 'operation', message: `duplicate operation id "${id}"` });
    seen.add(id);
    const file = namedFile(dir, dirArg, op.parameters, `/operations/${index}/parameters`, check ? ctx : { ...ctx, problems: [] });
    if (!file) return;
    const schema = readJson(file.path, file.shown, ctx);
    if (schema !== null && typeof schema === 'object' && !Array.isArray(schema)) {
      folder.parameters.set(id, schema as Json);
      if (check) checkSchema(schema as Json, file.shown, ctx, false);
    } else if (schema !== undefined && check) {
      ctx.problems.push({ file: file.shown, path: '', rule: 'schema', message: 'must be a JSON object' });
    }
  });
  return folder;
}

// ---- backward compatibility ------------------------------------------------------------

/**
 * What a saved value of the previous schema needs from the new one: every field still
 * there, no field newly required without a default, no type or enum narrowed.
 */
function compareSchemas(before: Json, after: Json, file: string, pointer: string, ctx: Context): void {
  const beforeProps = (before.properties ?? {}) as Record<string, Json>;
  const afterProps = (after.properties ?? {}) as Record<string, Json>;
  const beforeRequired = new Set(Array.isArray(before.required) ? (before.required as string[]) : []);
  const afterRequired = Array.isArray(after.required) ? (after.required as string[]) : [];
  if (after.additionalProperties === false && before.additionalProperties !== false) {
    ctx.problems.push({ file, path: `${pointer}/additionalProperties`, rule: 'compatibility', message: 'unknown fields are newly refused; saved connections with fields of their own no longer validate' });
  }
  for (const name of Object.keys(beforeProps)) {
    if (!(name in afterProps)) {
      ctx.problems.push({ file, path: `${pointer}/properties/${escape(name)}`, rule: 'compatibility', message: `field "${name}" was removed; saved connections that set it no longer validate` });
    }
  }
  for (const name of afterRequired) {
    if (beforeRequired.has(name)) continue;
    const field = afterProps[name];
    if (field && typeof field === 'object' && 'default' in field) continue;
    ctx.problems.push({ file, path: `${pointer}/required`, rule: 'compatibility', message: `"${name}" is newly required and has no default; saved connections without it no longer validate` });
  }
  for (const [name, old] of Object.entries(beforeProps)) {
    const now = afterProps[name];
    if (!now || typeof now !== 'object' || !old || typeof old !== 'object') continue;
    const at = `${pointer}/properties/${escape(name)}`;
    const oldTypes = typesOf(old);
    const newTypes = typesOf(now);
    if (newTypes && (!oldTypes || [...oldTypes].some((t) => !newTypes.has(t)))) {
      ctx.problems.push({ file, path: `${at}/type`, rule: 'compatibility', message: `type of "${name}" narrowed from ${JSON.stringify(old.type ?? 'any')} to ${JSON.stringify(now.type)}` });
    }
    if (Array.isArray(now.enum)) {
      const lost = Array.isArray(old.enum) ? (old.enum as unknown[]).filter((v) => !(now.enum as unknown[]).some((n) => sameJson(n, v))) : ['any value'];
      if (lost.length > 0) ctx.problems.push({ file, path: `${at}/enum`, rule: 'compatibility', message: `enum of "${name}" no longer allows ${lost.map((v) => JSON.stringify(v)).join(', ')}` });
    }
    if (old.properties || now.properties) compareSchemas(old, now, file, at, ctx);
  }
}

/**
 * A validator for configurations of a connection schema, as the runtime applies it:
 * defaults filled in (on a copy), every problem as a JSON pointer and message.
 */
export function connectionValidator(schema: Json): (config: unknown) => { config: unknown; problems: SchemaProblem[] } {
  const ajv = createQuarkAjv({ useDefaults: true });
  const { $id: _id, ...rest } = schema;
  const validate = ajv.compile(rest);
  return (config) => {
    const copy = structuredClone(config);
    const ok = validate(copy);
    return { config: copy, problems: ok ? [] : problemsFromAjv(validate.errors) };
  };
}

// ---- entry point ----------------------------------------------------------------------

export interface LintOptions {
  /** The folder of the connector's previous version: saved connections of it must still validate. */
  previous?: string;
}

/**
 * Checks a connector folder against every spec rule. Throws `CannotLintError` when the
 * folder or its connector.json is missing; everything else is a problem in the result.
 */
export function lintConnector(dir: string, options: LintOptions = {}): LintResult {
  const ctx: Context = { ajv: createAjv(), problems: [] };
  const folder = readFolder(dir, ctx, true);
  const out: LintResult = { dir, problems: ctx.problems };
  if (typeof folder.manifest?.id === 'string') out.id = folder.manifest.id;
  if (typeof folder.manifest?.version === 'string') out.version = folder.manifest.version;
  if (options.previous !== undefined) {
    const previous = readFolder(options.previous, { ajv: ctx.ajv, problems: [] }, false);
    const schemaFile = join(dir, typeof folder.manifest?.connectionSchema === 'string' ? folder.manifest.connectionSchema : 'connection.schema.json');
    if (previous.connection && folder.connection) compareSchemas(previous.connection, folder.connection, schemaFile, '', ctx);
    for (const [id, before] of previous.parameters) {
      const after = folder.parameters.get(id);
      const manifestFile = join(dir, 'connector.json');
      const ops = Array.isArray(folder.manifest?.operations) ? (folder.manifest.operations as Json[]) : [];
      const index = ops.findIndex((op) => op?.id === id);
      if (index < 0) {
        ctx.problems.push({ file: manifestFile, path: '/operations', rule: 'compatibility', message: `operation "${id}" was removed; deployed processes that use it no longer deploy` });
      } else if (after) {
        compareSchemas(before, after, join(dir, String(ops[index]!.parameters)), '', ctx);
      }
    }
  }
  return out;
}

/** Problems as text lines: `file pointer: message [rule]`. */
export function formatProblems(problems: readonly SpecProblem[]): string {
  return problems.map((p) => `${p.file} ${p.path || '/'}: ${p.message} [${p.rule}]`).join('\n');
}
