import { basename, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PlainError } from '../core/errors.js';
import type { Validator } from '../schema/index.js';
import type { LocalPathField } from './local-paths.js';

export type PluginSource = 'built-in' | 'home' | 'config';

export interface LoadedOperation {
  id: string;
  name: string;
  kind: string;
  description?: string;
  parametersSchema: Record<string, unknown>;
  validateParameters: Validator;
  /** Parameters marked `x-local-path` (a folder or file the operation reads or writes). */
  localPaths: LocalPathField[];
}

export interface LoadedConnector {
  id: string;
  name: string;
  version: string;
  description?: string;
  runtimeApi: string;
  source: PluginSource;
  dir: string;
  /** Absolute path of the module; imported only in workers. */
  entry: string;
  testConnection: boolean;
  connectionSchema: Record<string, unknown>;
  validateConnection: Validator;
  /** JSON pointers of the connection schema's secret fields. */
  secretPointers: string[];
  /** The connection schema's fields marked `x-local-path` (connectors/local-paths.ts). */
  localPaths: LocalPathField[];
  operations: LoadedOperation[];
}

export interface QuarantinedPlugin {
  dir: string;
  source: PluginSource;
  /** The connector id, when the manifest got far enough to name one. */
  id?: string;
  version?: string;
  reason: PlainError;
}

/** Plain data: what loaded and what was quarantined. No I/O. */
export interface ConnectorRegistry {
  get(id: string): LoadedConnector | undefined;
  list(): LoadedConnector[];
  quarantined(): QuarantinedPlugin[];
  findQuarantined(id: string): QuarantinedPlugin | undefined;
}

export function createConnectorRegistry(loaded: readonly LoadedConnector[], quarantined: readonly QuarantinedPlugin[]): ConnectorRegistry {
  const byId = new Map(loaded.map((c) => [c.id, c]));
  const sorted = [...loaded].sort((a, b) => a.id.localeCompare(b.id));
  return {
    get: (id) => byId.get(id),
    list: () => sorted,
    quarantined: () => [...quarantined],
    findQuarantined: (id) => quarantined.find((q) => q.id === id),
  };
}

/** Drops a plugin folder's path from a text: `<dir>/connector.json` reads `connector.json`. */
function withoutFolder(text: string, dir: string): string {
  return text.split(pathToFileURL(dir).href + '/').join('').split(dir + sep).join('').split(dir).join(basename(dir));
}

/**
 * A quarantined plugin as a member sees it: paths relative to the plugin folder, the
 * folder by its name. The owner sees where it is on the runtime's machine.
 */
export function quarantineView(q: QuarantinedPlugin, owner: boolean): QuarantinedPlugin {
  if (owner) return q;
  const problems = q.reason.details?.problems?.map((p) => ({ ...p, ...(p.file ? { file: withoutFolder(p.file, q.dir) } : {}) }));
  const reason = { code: q.reason.code, message: withoutFolder(q.reason.message, q.dir), ...(problems ? { details: { problems } } : {}) };
  return { ...q, dir: basename(q.dir), reason };
}
