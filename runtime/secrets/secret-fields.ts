/**
 * Secret marks drive everything: this module reads them from a connection schema once
 * and derives what is encrypted, what is masked and which log paths are redacted.
 */
import { escapePointer } from '../core/json-pointer.js';

type Json = Record<string, unknown>;

/** JSON pointers of the fields marked `x-secret: true`, at any depth of `properties`. */
export function secretPointers(schema: Json, prefix = ''): string[] {
  const properties = schema.properties;
  if (properties === null || typeof properties !== 'object') return [];
  const pointers: string[] = [];
  for (const [name, field] of Object.entries(properties as Record<string, Json>)) {
    if (field === null || typeof field !== 'object') continue;
    const pointer = `${prefix}/${escapePointer(name)}`;
    if (field['x-secret'] === true) pointers.push(pointer);
    pointers.push(...secretPointers(field, pointer));
  }
  return pointers;
}

function segments(pointer: string): string[] {
  return pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function getAt(document: Json, pointer: string): unknown {
  let node: unknown = document;
  for (const key of segments(pointer)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Json)[key];
  }
  return node;
}

export function setAt(document: Json, pointer: string, value: unknown): void {
  const keys = segments(pointer);
  let node = document;
  for (const key of keys.slice(0, -1)) {
    if (node[key] === null || typeof node[key] !== 'object') node[key] = {};
    node = node[key] as Json;
  }
  node[keys.at(-1)!] = value;
}

export function deleteAt(document: Json, pointer: string): void {
  const keys = segments(pointer);
  let node: unknown = document;
  for (const key of keys.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return;
    node = (node as Json)[key];
  }
  if (node !== null && typeof node === 'object') delete (node as Json)[keys.at(-1)!];
}

/** The string values of a configuration's secret fields (to scrub them from plugin output). */
export function secretValues(config: Json, pointers: readonly string[]): string[] {
  return pointers.map((p) => getAt(config, p)).filter((v): v is string => typeof v === 'string');
}

/** pino redaction paths for secret fields wherever a configuration is logged. */
export function redactPathsFor(pointers: readonly string[]): string[] {
  const paths = new Set<string>();
  for (const pointer of pointers) {
    const tail = segments(pointer).map((k) => `[${JSON.stringify(k)}]`).join('');
    for (const head of ['config', '*.config', 'body.config', 'req.body.config']) paths.add(`${head}${tail}`);
  }
  return [...paths];
}

/** Log records a plugin wrote in its worker, passed on to a runtime logger with secrets scrubbed. */
export function relayPluginLogs(
  log: Record<'debug' | 'info' | 'warn' | 'error', (fields: object, message: string) => void>,
  records: readonly { level: 'debug' | 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> }[],
  secrets: readonly string[],
): void {
  for (const record of records) {
    const fields = record.fields ? { fields: JSON.parse(scrubText(JSON.stringify(record.fields), secrets)) as unknown } : {};
    log[record.level]({ plugin: true, ...fields }, scrubText(record.message, secrets));
  }
}

/**
 * Plain data from a worker with every string scrubbed, object keys included: a plugin
 * can echo a secret in any field (a check's id, a result's code). Bytes are left alone.
 */
export function scrubStrings<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  return scrubValue(value, secrets) as T;
}

function scrubValue(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return scrubText(value, secrets);
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, secrets));
  const entries = Object.entries(value).map(([key, item]) => [scrubText(key, secrets), scrubValue(item, secrets)]);
  return Object.fromEntries(entries);
}

/** Replaces every occurrence of a secret value in a text (plugin messages, errors). */
export function scrubText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 3) out = out.split(secret).join('[redacted]');
  }
  return out;
}
