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

/** The folders a configuration names in its local-path fields (absolute paths only; others are the schema's to refuse). */
export function localFolders(fields: readonly LocalPathField[], config: Json): LocalFolder[] {
  const folders: LocalFolder[] = [];
  for (const { pointer, write } of fields) {
    const value = getAt(config, pointer);
    if (typeof value === 'string' && isAbsolute(value)) folders.push({ path: normalize(value).replace(/(.)\/+$/, '$1'), write, field: pointer });
  }
  return folders;
}
