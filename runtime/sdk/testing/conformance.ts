/**
 * The conformance kit: runs a connector folder's module in the calling process and checks
 * the behaviour the runtime relies on. A plugin's own tests call it:
 *
 *   import t from 'tap';
 *   import { assertConformance } from 'quark/sdk/testing';
 *   await assertConformance(t, { dir: new URL('..', import.meta.url), config: { apiKey: 'k-123' } });
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isConnector, type ConnectorLogger, type RuntimeSettings, type Connector, type TestReport } from '../index.js';
import { isPositionalBody, memoryBody as bytesBody, resourceProblems, type Body, type HeldResource, type InputDocument, type OperationResult, type ResourceDescription, type Resources } from '../operations.js';
import { lintConnector, formatProblems, connectionValidator, type SpecProblem } from './spec-rules.js';
import { describeSchemaProblems } from '../json-schema.js';

type Json = Record<string, unknown>;

/** An input document for an operation: properties and a body (text or bytes). */
export interface DocumentInput {
  properties?: Record<string, string>;
  body?: string | Buffer;
}

export interface OperationCase {
  /** The step's parameters; they must be valid against the operation's parameter schema. */
  parameters?: Json;
  /** Input documents; each must be answered with exactly one result. Default: two small text documents. */
  documents?: DocumentInput[];
  /** Skip the abort check for this operation (say why in your test). */
  skipAbort?: boolean;
}

export interface ConformanceOptions {
  /** The connector folder (holding connector.json), as a path or a file: URL. */
  dir: string | URL;
  /** A working configuration (secrets in clear): Test Connection and the operations run with it. */
  config: Json;
  /**
   * More configurations that must not make Test Connection throw. Default: derived from
   * the schema (wrong secrets, nonsense strings, empty strings), keeping those the
   * connection schema accepts, since the runtime never passes a plugin any other.
   */
  garbageConfigs?: Json[];
  /** Operations to run, by id; an operation not listed here is reported as not run. */
  operations?: Record<string, OperationCase>;
  /** The previous version's folder: saved connections of it must still validate. */
  previous?: string | URL;
  /** Configurations saved with earlier versions: each must still be valid against the connection schema. */
  savedConfigs?: Json[];
  /** Time limit of one Test Connection or one operation call (default 10 s). */
  timeoutMs?: number;
  /** How soon an aborted operation must settle (default 2 s). */
  abortGraceMs?: number;
  runtime?: RuntimeSettings;
}

export interface ConformanceCheck {
  id: string;
  ok: boolean;
  /** True when the check did not run (no Test Connection, an operation not listed). */
  skipped?: boolean;
  message: string;
  problems?: SpecProblem[];
}

export interface ConformanceReport {
  ok: boolean;
  checks: ConformanceCheck[];
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields?: Record<string, unknown>;
}

/** What a handler threw, as text: an Error's message, or the value itself. */
function thrownMessage(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message;
  return typeof thrown === 'string' ? thrown : (JSON.stringify(thrown) ?? typeof thrown);
}

function toPath(dir: string | URL): string {
  return resolve(dir instanceof URL || dir.startsWith('file:') ? fileURLToPath(dir) : dir);
}

/** An SDK Body over bytes in memory. */
export function memoryBody(content: string | Buffer = ''): Body {
  return bytesBody(typeof content === 'string' ? Buffer.from(content) : content);
}

/** A resource held through memoryResources, and whether it was released. */
export interface HeldRecord extends ResourceDescription {
  id: string;
  released: boolean;
}

/**
 * context.resources for tests: checks each description as the runtime does (kind, data
 * size, no secret of `secrets`) and keeps it in `held`, marked when released.
 */
export function memoryResources(held: HeldRecord[] = [], secrets: readonly string[] = []): Resources & { held: HeldRecord[] } {
  return {
    held,
    async hold(resource: ResourceDescription): Promise<HeldResource> {
      const problems = resourceProblems(resource, secrets);
      if (problems.length > 0) throw Object.assign(new Error(`the resource cannot be recorded: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`), { code: 'QUARK_ERR_RESOURCE_INVALID' });
      const record: HeldRecord = { id: `res_${held.length + 1}`, kind: resource.kind, data: structuredClone(resource.data), released: false };
      held.push(record);
      return {
        id: record.id,
        release: async () => {
          record.released = true;
        },
      };
    },
  };
}

/** A ConnectorLogger that keeps every line, so the kit can look for secrets in them. */
export function capturingLogger(lines: LogLine[]): ConnectorLogger {
  const at = (level: LogLine['level']) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, ...(fields !== undefined ? { fields } : {}) });
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function secretPointers(schema: Json, prefix = ''): string[] {
  const properties = schema.properties;
  if (properties === null || typeof properties !== 'object') return [];
  return Object.entries(properties as Record<string, Json>).flatMap(([name, field]) => {
    if (field === null || typeof field !== 'object') return [];
    const pointer = `${prefix}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    return [...(field['x-secret'] === true ? [pointer] : []), ...secretPointers(field, pointer)];
  });
}

function getAt(document: Json, pointer: string): unknown {
  let node: unknown = document;
  for (const key of pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Json)[key];
  }
  return node;
}

function secretsOf(config: Json, pointers: readonly string[]): string[] {
  // very short values would match by chance; the kit looks for secrets of 4 characters or more
  return pointers.map((p) => getAt(config, p)).filter((v): v is string => typeof v === 'string' && v.length >= 4);
}

const nonsense = ['::not a real value::', '/::not a real value::', 'http://127.0.0.1:9/not-a-real-endpoint', 'x'];

/**
 * Configurations a careless connector might throw on: every secret wrong at once, then,
 * field by field, each string field set to nonsense (the first of a few candidates that
 * its own schema accepts: a word, a path, a URL nobody listens on) or empty.
 */
export function garbageConfigs(config: Json, schema: Json): Json[] {
  const properties = (schema.properties ?? {}) as Record<string, Json>;
  const out: Json[] = [];
  const wrongSecrets: Json = { ...config };
  let secrets = 0;
  for (const [name, field] of Object.entries(properties)) {
    if (field?.['x-secret'] === true) {
      wrongSecrets[name] = 'wrong-secret-value';
      secrets += 1;
    }
  }
  if (secrets > 0) out.push(wrongSecrets);
  for (const [name, field] of Object.entries(properties)) {
    if (field?.type !== 'string' || Array.isArray(field.enum) || field['x-secret'] === true) continue;
    for (const value of [...nonsense, '']) out.push({ ...config, [name]: value });
  }
  return out;
}

async function within<T>(ms: number, work: () => Promise<T> | T): Promise<{ value?: T; error?: unknown; timedOut?: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<{ timedOut: true }>((done) => {
    timer = setTimeout(() => done({ timedOut: true }), ms);
  });
  try {
    return await Promise.race([
      (async () => {
        try {
          return { value: await work() };
        } catch (error) {
          return { error };
        }
      })(),
      limit,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function isReport(value: unknown): value is TestReport {
  if (value === null || typeof value !== 'object') return false;
  const checks = (value as TestReport).checks;
  return Array.isArray(checks) && checks.length > 0 && checks.every((c) => c !== null && typeof c === 'object' && typeof c.id === 'string' && typeof c.message === 'string' && ['ok', 'warning', 'failed', 'skipped'].includes(c.status));
}

function isResult(value: unknown): value is OperationResult {
  if (value === null || typeof value !== 'object') return false;
  const r = value as OperationResult;
  if (r.status === 'success') return Array.isArray(r.documents);
  return (r.status === 'application-error' || r.status === 'failure') && typeof r.message === 'string';
}

async function resultText(result: OperationResult): Promise<string> {
  if (result.status !== 'success') return JSON.stringify(result);
  const parts: string[] = [];
  for (const doc of result.documents) {
    parts.push(JSON.stringify(doc.properties ?? {}));
    const body = doc.body;
    if (typeof body === 'string') parts.push(body);
    else if (Buffer.isBuffer(body)) parts.push(body.toString('utf8'));
    else if (body instanceof Readable) {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(Buffer.from(chunk as Buffer));
      parts.push(Buffer.concat(chunks).toString('utf8'));
    } else if (isPositionalBody(body)) {
      const bytes = Buffer.alloc(body.size);
      await body.writeTo({ write: async (chunk, position) => void bytes.set(chunk, position) });
      parts.push(bytes.toString('utf8'));
    }
  }
  return parts.join('\n');
}

function leaked(text: string, secrets: readonly string[]): string[] {
  return secrets.filter((s) => text.includes(s));
}

/** Runs every check and returns the report; never throws for a faulty connector. */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  const dir = toPath(options.dir);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const graceMs = options.abortGraceMs ?? 2_000;
  const runtime = options.runtime ?? {};
  const checks: ConformanceCheck[] = [];

  const lint = lintConnector(dir, options.previous !== undefined ? { previous: toPath(options.previous) } : {});
  checks.push({
    id: 'spec',
    ok: lint.problems.length === 0,
    message: lint.problems.length === 0 ? 'the manifest and schemas follow every spec rule' : `${lint.problems.length} spec problem(s):\n${formatProblems(lint.problems)}`,
    ...(lint.problems.length > 0 ? { problems: lint.problems } : {}),
  });
  // the runtime would quarantine a plugin whose files or schemas it cannot read or compile
  if (lint.problems.some((p) => ['manifest', 'json', 'file', 'ref', 'schema'].includes(p.rule))) {
    checks.push({ id: 'run', ok: false, skipped: true, message: 'the behaviour checks did not run: a runtime would quarantine this plugin (see the spec problems)' });
    return { ok: false, checks };
  }

  const manifest = JSON.parse(readFileSync(join(dir, 'connector.json'), 'utf8')) as {
    entry: string;
    connectionSchema: string;
    testConnection: boolean;
    operations: { id: string }[];
  };
  const schema = JSON.parse(readFileSync(join(dir, manifest.connectionSchema), 'utf8')) as Json;
  const pointers = secretPointers(schema);

  let connector: Connector<Json>;
  try {
    const module = (await import(pathToFileURL(join(dir, manifest.entry)).href)) as { default?: unknown };
    if (!isConnector(module.default)) throw new Error('its default export is not made with defineConnector from quark/sdk');
    connector = module.default as Connector<Json>;
  } catch (error) {
    checks.push({ id: 'import', ok: false, message: `${manifest.entry} cannot be loaded: ${(error as Error).message}` });
    return { ok: false, checks };
  }
  checks.push({ id: 'import', ok: true, message: `${manifest.entry} exports a connector` });
  const declared = manifest.operations.map((o) => o.id);
  const implemented = Object.keys(connector.operations ?? {});
  const missing = declared.filter((id) => typeof connector.operations?.[id] !== 'function');
  const extra = implemented.filter((id) => !declared.includes(id));
  checks.push({
    id: 'operations-declared',
    ok: missing.length === 0 && extra.length === 0 && (manifest.testConnection === (typeof connector.testConnection === 'function')),
    message:
      missing.length + extra.length === 0 && manifest.testConnection === (typeof connector.testConnection === 'function')
        ? 'the module implements exactly what connector.json declares'
        : `declared but not implemented: ${missing.join(', ') || 'none'}; implemented but not declared: ${extra.join(', ') || 'none'}; testConnection declared ${manifest.testConnection}, implemented ${typeof connector.testConnection === 'function'}`,
  });

  // ---- Test Connection
  if (typeof connector.testConnection !== 'function') {
    checks.push({ id: 'test-connection', ok: true, skipped: true, message: 'the connector does not implement Test Connection' });
  } else {
    const validate = connectionValidator(schema);
    const given = validate(options.config);
    checks.push({
      id: 'config-valid',
      ok: given.problems.length === 0,
      message: given.problems.length === 0 ? 'the given configuration is valid against the connection schema' : `the given configuration is not valid: ${describeSchemaProblems(given.problems)}`,
    });
    for (const [index, saved] of (options.savedConfigs ?? []).entries()) {
      const problems = validate(saved).problems;
      checks.push({
        id: `saved-config-${index + 1}`,
        ok: problems.length === 0,
        message: problems.length === 0 ? `saved configuration ${index + 1} is still valid` : `saved configuration ${index + 1} is no longer valid: ${describeSchemaProblems(problems)}`,
      });
    }
    // of the derived ones, those the schema accepts, one per field (the runtime never passes others)
    const seenFields = new Set<string>();
    const garbage =
      options.garbageConfigs ??
      garbageConfigs(options.config, schema)
        .map((c) => ({ c, v: validate(c) }))
        .filter(({ c, v }) => {
          if (v.problems.length > 0) return false;
          const changed = Object.keys(c).filter((k) => c[k] !== options.config[k]).join(',');
          if (seenFields.has(changed)) return false;
          seenFields.add(changed);
          return true;
        })
        .map(({ v }) => v.config as Json);
    const configs = [{ name: 'the given configuration', config: given.config as Json }, ...garbage.map((config, i) => ({ name: `garbage configuration ${i + 1}`, config }))];
    for (const { name, config } of configs) {
      const lines: LogLine[] = [];
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new DOMException('Test Connection timed out', 'TimeoutError')), timeoutMs);
      const outcome = await within(timeoutMs + graceMs, () => connector.testConnection!({ config: structuredClone(config), signal: controller.signal, runtime, log: capturingLogger(lines) }));
      clearTimeout(timer);
      const id = name === 'the given configuration' ? 'test-connection' : `test-connection-garbage-${configs.findIndex((c) => c.name === name)}`;
      if (outcome.timedOut) checks.push({ id, ok: false, message: `Test Connection with ${name} did not return within ${timeoutMs + graceMs} ms, even after its signal was aborted` });
      else if (outcome.error !== undefined) checks.push({ id, ok: false, message: `Test Connection with ${name} threw instead of returning a failed check: ${thrownMessage(outcome.error)}` });
      else if (!isReport(outcome.value)) checks.push({ id, ok: false, message: `Test Connection with ${name} returned ${JSON.stringify(outcome.value)}, not { checks: [{ id, status, message }…] }` });
      else checks.push({ id, ok: true, message: `Test Connection with ${name} returned a structured result (${outcome.value.checks.map((c) => `${c.id}: ${c.status}`).join(', ')})` });
      const secrets = secretsOf(config, pointers);
      const shown = leaked(JSON.stringify(outcome.value ?? null) + String((outcome.error as Error | undefined)?.message ?? ''), secrets);
      const logged = leaked(JSON.stringify(lines), secrets);
      checks.push({
        id: `${id}-secrets`,
        ok: shown.length + logged.length === 0,
        message: shown.length + logged.length === 0 ? `no secret of ${name} appears in the Test Connection result or logs` : `a secret of ${name} appears in ${shown.length > 0 ? 'the result' : ''}${shown.length > 0 && logged.length > 0 ? ' and ' : ''}${logged.length > 0 ? 'the logs' : ''}`,
      });
    }
  }

  // ---- operations
  const secrets = secretsOf(options.config, pointers);
  // the listed operations first, in the order given (an upsert before the get that reads it back)
  const order = [...Object.keys(options.operations ?? {}).filter((id) => declared.includes(id)), ...declared.filter((id) => !(id in (options.operations ?? {})))];
  for (const id of order) {
    const handler = connector.operations?.[id];
    const spec = options.operations?.[id];
    if (typeof handler !== 'function') continue;
    if (!spec) {
      checks.push({ id: `operation:${id}`, ok: true, skipped: true, message: `operation ${id} not run: no case for it in options.operations` });
      continue;
    }
    const documents = spec.documents ?? [{ body: 'first document' }, { body: 'second document' }];
    const lines: LogLine[] = [];
    const results: unknown[] = [];
    const bodies: string[] = [];
    const failures: string[] = [];
    let calls = 0;
    for (const [index, doc] of documents.entries()) {
      const controller = new AbortController();
      const input: InputDocument = { properties: { ...(doc.properties ?? {}) }, body: memoryBody(doc.body) };
      calls += 1;
      const outcome = await within(timeoutMs, () =>
        handler({ config: structuredClone(options.config), parameters: structuredClone(spec.parameters ?? {}), signal: controller.signal, runtime, log: capturingLogger(lines), progress: () => undefined, resources: memoryResources([], secrets) }, input),
      );
      // as the runtime does: a streamed output body is read while the signal is still alive
      if (!outcome.timedOut && outcome.error === undefined && isResult(outcome.value)) {
        const result = outcome.value;
        const read = await within(timeoutMs, () => resultText(result));
        if (read.timedOut || read.error !== undefined) failures.push(`document ${index}: its output body ${read.timedOut ? `did not end within ${timeoutMs} ms` : `failed while read: ${(read.error as Error)?.message ?? String(read.error)}`}`);
        else bodies.push(read.value ?? '');
      }
      controller.abort();
      if (outcome.timedOut) failures.push(`document ${index}: no result within ${timeoutMs} ms`);
      else if (outcome.error !== undefined) failures.push(`document ${index}: threw ${thrownMessage(outcome.error)} (the runtime turns it into a failure; return result.failure instead)`);
      else if (!isResult(outcome.value)) failures.push(`document ${index}: answered ${JSON.stringify(outcome.value)}, which is not one result`);
      results.push(outcome.value);
    }
    checks.push({
      id: `operation:${id}`,
      ok: failures.length === 0 && results.length === documents.length && calls === documents.length,
      message: failures.length === 0 ? `operation ${id} answered each of ${documents.length} documents with exactly one result (${results.map((r) => (r as OperationResult).status).join(', ')})` : `operation ${id}: ${failures.join('; ')}`,
    });
    const text = JSON.stringify(lines) + failures.join('\n') + bodies.join('\n');
    const found = leaked(text, secrets);
    checks.push({ id: `operation:${id}-secrets`, ok: found.length === 0, message: found.length === 0 ? `no secret appears in the results or logs of ${id}` : `a secret of the configuration appears in the results or logs of ${id}` });

    if (spec.skipAbort) {
      checks.push({ id: `operation:${id}-abort`, ok: true, skipped: true, message: `abort check of ${id} skipped by the test` });
      continue;
    }
    // an already-aborted signal and one aborted while the call runs: both must settle quickly
    const aborted: string[] = [];
    for (const when of ['before', 'during'] as const) {
      const controller = new AbortController();
      if (when === 'before') controller.abort(new DOMException('cancelled', 'AbortError'));
      const doc = documents[0] ?? {};
      const started = Date.now();
      const call = within(timeoutMs, () =>
        handler({ config: structuredClone(options.config), parameters: structuredClone(spec.parameters ?? {}), signal: controller.signal, runtime, log: capturingLogger([]), progress: () => undefined, resources: memoryResources([], secrets) }, { properties: { ...(doc.properties ?? {}) }, body: memoryBody(doc.body) }),
      );
      if (when === 'during') setTimeout(() => controller.abort(new DOMException('cancelled', 'AbortError')), 5).unref();
      const outcome = await call;
      const took = Date.now() - started;
      if (outcome.timedOut || took > graceMs + (when === 'during' ? 5 : 0)) aborted.push(`aborted ${when} the call, it took ${took} ms to stop (limit ${graceMs} ms)`);
    }
    checks.push({ id: `operation:${id}-abort`, ok: aborted.length === 0, message: aborted.length === 0 ? `operation ${id} stops when aborted` : `operation ${id}: ${aborted.join('; ')}` });
  }
  return { ok: checks.every((c) => c.ok), checks };
}

/** What assertConformance needs of a test object: tap's `t` has it. */
export interface Asserter {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  ok(value: any, ...rest: any[]): unknown;
}

/** Runs the kit and asserts each check on `t` (tap's test object, or anything with `ok`). */
export async function assertConformance(t: Asserter, options: ConformanceOptions): Promise<ConformanceReport> {
  const report = await runConformance(options);
  for (const c of report.checks) {
    t.ok(c.ok, `${c.id}${c.skipped ? ' (skipped)' : ''}: ${c.ok ? c.message.split('\n')[0] : 'FAILED'}`, c.ok ? {} : { diagnostic: true, reason: c.message });
  }
  return report;
}
