/**
 * Fields marked `x-local-path` hold the absolute path of a folder on the runtime's machine
 * that the connector reads (`"read"`) or reads and writes (`"read-write"`), such as the
 * local-files connector's `folder`. The plugin host of isolation "process" may touch only
 * the folders it was granted: a connection's configured values of these fields are what
 * it is granted (engine/host.ts). Read once per connector at load, like the secret marks.
 */
import { isAbsolute, normalize } from 'node:path';
import { escapePointer } from '../core/json-pointer.js';
import { getAt } from '../secrets/secret-fields.js';
import type { LocalFolder } from '../engine/pool.js';

type Json = Record<string, unknown>;

export interface LocalPathField {
  /** JSON pointer of the field, e.g. `/folder`. */
  pointer: string;
  write: boolean;
}

/** The fields marked `x-local-path`, at any depth of `properties`. */
export function localPathFields(schema: Json, prefix = ''): LocalPathField[] {
  const properties = schema.properties;
  if (properties === null || typeof properties !== 'object') return [];
  const fields: LocalPathField[] = [];
  for (const [name, field] of Object.entries(properties as Record<string, Json>)) {
    if (field === null || typeof field !== 'object') continue;
    const pointer = `${prefix}/${escapePointer(name)}`;
    const mark = field['x-local-path'];
    if (mark === 'read' || mark === 'read-write') fields.push({ pointer, write: mark === 'read-write' });
    fields.push(...localPathFields(field, pointer));
  }
  return fields;
}

/**
 * The folders a configuration (or an operation's parameters) names in its local-path fields
 * (absolute paths only; others are the schema's to refuse). `prefix` goes before each
 * field's pointer: `/parameters` for an operation's.
 */
export function localFolders(fields: readonly LocalPathField[], config: Json, prefix = ''): LocalFolder[] {
  const folders: LocalFolder[] = [];
  for (const { pointer, write } of fields) {
    const value = getAt(config, pointer);
    if (typeof value === 'string' && isAbsolute(value)) folders.push({ path: normalize(value).replace(/(.)\/+$/, '$1'), write, field: `${prefix}${pointer}` });
  }
  return folders;
}

/** The local-path fields whose value is computed per document ({"$expr"}): no host can be granted them before the task runs. */
export function computedLocalPaths(fields: readonly LocalPathField[], parameters: Json): string[] {
  return fields.map((f) => f.pointer).filter((pointer) => {
    const value = getAt(parameters, pointer);
    return value !== null && typeof value === 'object' && typeof (value as { $expr?: unknown }).$expr === 'string';
  });
}
