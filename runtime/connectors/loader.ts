import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import semver from 'semver';
import { QuarkError, quarkError, messageOf, toPlainError, type FieldProblem } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { schemaIds, type SchemaRegistry } from '../schema/index.js';
import { RUNTIME_API_VERSION } from '../sdk/index.js';
import { secretPointers } from '../secrets/secret-fields.js';
import type { WorkerPool } from '../engine/pool.js';
import { createConnectorRegistry, type ConnectorRegistry, type LoadedConnector, type LoadedOperation, type PluginSource, type QuarantinedPlugin } from './registry.js';

export interface PluginLocation {
  path: string;
  source: PluginSource;
}

export interface LoaderOptions {
  locations: readonly PluginLocation[];
  schemas: SchemaRegistry;
  pool: WorkerPool;
  importTimeoutMs: number;
  logger: Logger;
}

const manifestFile = 'connector.json';


/** Plugin folders under a location: the location itself if it is one, else its sub-folders. */
function discover(location: PluginLocation): { dir: string; source: PluginSource }[] {
  const root = resolve(location.path);
  if (!existsSync(root)) return [];
  if (existsSync(join(root, manifestFile))) return [{ dir: root, source: location.source }];
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules')
    .map((entry) => ({ dir: join(root, entry.name), source: location.source }))
    .sort((a, b) => a.dir.localeCompare(b.dir));
}

function readJson(dir: string, file: string): unknown {
  const path = join(dir, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw quarkError('QUARK_ERR_PLUGIN_UNREADABLE', `${path}: ${messageOf(error)}`, { problems: [{ file: path, path: '', message: 'cannot be read' }] }, error);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw quarkError('QUARK_ERR_PLUGIN_UNREADABLE', `${path} is not JSON: ${messageOf(error)}`, { problems: [{ file: path, path: '', message: messageOf(error) }] }, error);
  }
}

function fail(code: 'QUARK_ERR_PLUGIN_MANIFEST_INVALID' | 'QUARK_ERR_PLUGIN_SCHEMA_INVALID' | 'QUARK_ERR_PLUGIN_INCOMPATIBLE', file: string, problems: FieldProblem[]): never {
  const located = problems.map((p) => ({ ...p, file }));
  const first = located[0]!;
  const more = located.length > 1 ? ` (and ${located.length - 1} more)` : '';
  throw quarkError(code, `${file}${first.path ? ` at ${first.path}` : ''}: ${first.message}${more}`, { problems: located });
}

/** A file named by the manifest must exist inside the plugin folder. */
function pluginFile(dir: string, relative: string, pointer: string): string {
  const path = resolve(dir, relative);
  const file = join(dir, manifestFile);
  if (!path.startsWith(dir + sep)) fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', file, [{ path: pointer, message: 'must stay inside the plugin folder' }]);
  if (!existsSync(path) || !statSync(path).isFile()) fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', file, [{ path: pointer, message: `names ${relative}, which does not exist` }]);
  return path;
}

interface Manifest {
  id: string;
  name: string;
  version: string;
  description?: string;
  runtimeApi: string;
  entry: string;
  connectionSchema: string;
  testConnection: boolean;
  operations: { id: string; name: string; kind: string; description?: string; parameters: string }[];
}

/** Validates one plugin folder without running any of its code. */
export function readPlugin(dir: string, source: PluginSource, schemas: SchemaRegistry, partial: Partial<QuarantinedPlugin>): LoadedConnector {
  const manifestPath = join(dir, manifestFile);
  if (!existsSync(manifestPath)) {
    throw quarkError('QUARK_ERR_PLUGIN_UNREADABLE', `${dir} has no ${manifestFile}`, { problems: [{ file: manifestPath, path: '', message: 'file not found' }] });
  }
  const raw = readJson(dir, manifestFile);
  if (raw !== null && typeof raw === 'object') {
    const named = raw as Record<string, unknown>;
    if (typeof named.id === 'string') partial.id = named.id;
    if (typeof named.version === 'string') partial.version = named.version;
  }
  const problems = schemas.validator(schemaIds.manifest)(raw);
  if (problems.length > 0) fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', manifestPath, problems);
  const manifest = raw as Manifest;

  if (semver.validRange(manifest.runtimeApi) === null) {
    fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', manifestPath, [{ path: '/runtimeApi', message: `"${manifest.runtimeApi}" is not a semver range` }]);
  }
  if (!semver.satisfies(RUNTIME_API_VERSION, manifest.runtimeApi)) {
    fail('QUARK_ERR_PLUGIN_INCOMPATIBLE', manifestPath, [
      { path: '/runtimeApi', message: `the plugin needs runtime API ${manifest.runtimeApi}; this runtime offers ${RUNTIME_API_VERSION}` },
    ]);
  }
  const entry = pluginFile(dir, manifest.entry, '/entry');

  const schemaPath = pluginFile(dir, manifest.connectionSchema, '/connectionSchema');
  const connectionSchema = readJson(dir, manifest.connectionSchema) as Record<string, unknown>;
  const shapeProblems = schemas.validator(schemaIds.connectionSchema)(connectionSchema);
  if (shapeProblems.length > 0) fail('QUARK_ERR_PLUGIN_SCHEMA_INVALID', schemaPath, shapeProblems);
  const groups = new Set(((connectionSchema['x-groups'] as { id: string }[] | undefined) ?? []).map((g) => g.id));
  const groupProblems = Object.entries(connectionSchema.properties as Record<string, Record<string, unknown>>)
    .filter(([, field]) => typeof field['x-group'] === 'string' && !groups.has(field['x-group']))
    .map(([name, field]) => ({ path: `/properties/${name}/x-group`, message: `names group "${String(field['x-group'])}", which x-groups does not declare` }));
  if (groupProblems.length > 0) fail('QUARK_ERR_PLUGIN_SCHEMA_INVALID', schemaPath, groupProblems);
  const validateConnection = schemas.compile(connectionSchema, schemaPath);

  const seen = new Set<string>();
  const operations: LoadedOperation[] = manifest.operations.map((op, index) => {
    if (seen.has(op.id)) fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', manifestPath, [{ path: `/operations/${index}/id`, message: `duplicate operation id "${op.id}"` }]);
    seen.add(op.id);
    const parametersPath = pluginFile(dir, op.parameters, `/operations/${index}/parameters`);
    const parametersSchema = readJson(dir, op.parameters) as Record<string, unknown>;
    return {
      id: op.id,
      name: op.name,
      kind: op.kind,
      ...(op.description !== undefined ? { description: op.description } : {}),
      parametersSchema,
      validateParameters: schemas.compile(parametersSchema, parametersPath),
    };
  });

  return {
    id: manifest.id,
    name: manifest.name,
    version: manifest.version,
    ...(manifest.description !== undefined ? { description: manifest.description } : {}),
    runtimeApi: manifest.runtimeApi,
    source,
    dir,
    entry,
    testConnection: manifest.testConnection,
    connectionSchema,
    validateConnection,
    secretPointers: secretPointers(connectionSchema),
    operations,
  };
}

type QuarantineReason = QuarantinedPlugin['reason'];

/**
 * The import probe: imports the plugin's entry in a worker (never here) within the time
 * limit and checks that it is a connector with a handler for every declared operation
 * (and testConnection when declared). Resolves to why the plugin would be quarantined, or
 * undefined when it loads.
 */
export async function probePlugin(connector: LoadedConnector, pool: WorkerPool, importTimeoutMs: number): Promise<QuarantineReason | undefined> {
  const located = (reason: { code: QuarantineReason['code']; message: string }): QuarantineReason => ({ ...reason, details: { problems: [{ file: connector.entry, path: '', message: reason.message }] } });
  try {
    const reply = await pool.run(
      { kind: 'probe', entry: connector.entry, operations: connector.operations.map((o) => o.id), testConnection: connector.testConnection },
      { timeoutMs: importTimeoutMs, graceMs: 0, what: `importing connector ${connector.id}` },
    );
    return reply.ok ? undefined : located(reply.error);
  } catch (error) {
    return located(error instanceof QuarkError ? toPlainError(error) : { code: 'QUARK_ERR_PLUGIN_IMPORT_FAILED', message: messageOf(error) });
  }
}

/**
 * What the loader would do with one plugin folder, for `quark connector validate`: read,
 * validate and version-gate it (readPlugin), then probe it (probePlugin). Resolves to why
 * it would be quarantined, or undefined when a runtime would load it.
 */
export async function checkPlugin(dir: string, options: Pick<LoaderOptions, 'schemas' | 'pool' | 'importTimeoutMs'>): Promise<QuarantineReason | undefined> {
  let connector: LoadedConnector;
  try {
    connector = readPlugin(resolve(dir), 'config', options.schemas, {});
  } catch (error) {
    return error instanceof QuarkError ? toPlainError(error) : { code: 'QUARK_ERR_PLUGIN_UNREADABLE', message: messageOf(error) };
  }
  return probePlugin(connector, options.pool, options.importTimeoutMs);
}

/**
 * Finds, validates, version-gates and probes every plugin. The probe imports each module
 * in a worker (never here) with a time limit. Whatever is wrong with a plugin quarantines
 * that plugin alone, with the file, JSON pointer and message.
 */
export async function loadConnectors(options: LoaderOptions): Promise<ConnectorRegistry> {
  const { schemas, pool, logger } = options;
  const candidates: LoadedConnector[] = [];
  const quarantined: QuarantinedPlugin[] = [];
  const quarantine = (entry: QuarantinedPlugin) => {
    quarantined.push(entry);
    logger.warn({ plugin: entry.dir, connector: entry.id, code: entry.reason.code, reason: entry.reason.message }, 'connector plugin quarantined');
  };

  for (const location of options.locations) {
    for (const { dir, source } of discover(location)) {
      const partial: Partial<QuarantinedPlugin> = {};
      try {
        const connector = readPlugin(dir, source, schemas, partial);
        const first = candidates.find((c) => c.id === connector.id);
        if (first) {
          throw quarkError('QUARK_ERR_PLUGIN_DUPLICATE', `connector id "${connector.id}" is already provided by ${first.dir} (${first.source})`, {
            problems: [{ file: join(dir, manifestFile), path: '/id', message: `duplicate of ${first.dir}` }],
          });
        }
        candidates.push(connector);
      } catch (error) {
        const reason = error instanceof QuarkError ? toPlainError(error) : { code: 'QUARK_ERR_PLUGIN_UNREADABLE' as const, message: messageOf(error) };
        quarantine({ dir, source, ...partial, reason });
      }
    }
  }

  const probed = await Promise.all(
    candidates.map(async (connector) => {
      const reason = await probePlugin(connector, pool, options.importTimeoutMs);
      if (reason === undefined) return connector;
      quarantine({ dir: connector.dir, source: connector.source, id: connector.id, version: connector.version, reason });
      return undefined;
    }),
  );
  const loaded = probed.filter((c): c is LoadedConnector => c !== undefined);
  for (const c of loaded) logger.info({ connector: c.id, version: c.version, source: c.source }, 'connector loaded');
  return createConnectorRegistry(loaded, quarantined);
}
