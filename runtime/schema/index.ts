import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorObject, ValidateFunction, AnySchemaObject } from 'ajv/dist/2020.js';
import { quarkError, messageOf, type FieldProblem } from '../core/errors.js';
import { packageRoot } from '../core/paths.js';
import { createAjv, problemsFromAjv } from '../sdk/json-schema.js';

export const schemaIds = {
  manifest: 'https://quark.dev/schemas/connector-manifest.schema.json',
  connectionSchema: 'https://quark.dev/schemas/connection-schema.schema.json',
  runtimeConfig: 'https://quark.dev/schemas/runtime-config.schema.json',
  testResult: 'https://quark.dev/schemas/test-connection-result.schema.json',
  process: 'https://quark.dev/schemas/process.schema.json',
} as const;

const schemaFiles = [
  'connector-manifest.schema.json',
  'connection-schema.schema.json',
  'runtime-config.schema.json',
  'test-connection-result.schema.json',
  'process.schema.json',
];

export type Validator = (data: unknown) => FieldProblem[];

export interface SchemaRegistry {
  /** A validator for one of quark's own schemas in schemas/. Compiled once, when it first validates. */
  validator(id: (typeof schemaIds)[keyof typeof schemaIds]): Validator;
  /**
   * Compiles a plugin's schema. Throws QUARK_ERR_PLUGIN_SCHEMA_INVALID with the reason
   * (unknown keyword, unresolved $ref, malformed keyword) when ajv cannot compile it.
   */
  compile(schema: unknown, file: string): Validator;
  /** The documented defaults of the runtime configuration's `limits`, from its schema: for work with no home to read them from. */
  limitDefaults(): Readonly<Record<string, number>>;
}

/** The numeric `default`s of the runtime configuration schema's `limits` properties. */
function limitDefaultsOf(configSchema: AnySchemaObject): Readonly<Record<string, number>> {
  const limits = (configSchema.properties as Record<string, AnySchemaObject> | undefined)?.limits?.properties as Record<string, { default?: unknown }> | undefined;
  const defaults: Record<string, number> = {};
  for (const [name, property] of Object.entries(limits ?? {})) if (typeof property.default === 'number') defaults[name] = property.default;
  return Object.freeze(defaults);
}

/** Turns ajv errors into field problems whose paths are JSON pointers into the data (messages in words, see sdk/json-schema.ts). */
export function toProblems(errors: readonly ErrorObject[] | null | undefined): FieldProblem[] {
  return problemsFromAjv(errors);
}

function wrap(validate: ValidateFunction): Validator {
  return (data) => (validate(data) ? [] : toProblems(validate.errors));
}

/**
 * A validator that compiles its schema when it first validates: a runtime that never
 * deploys never compiles the process schema (~40% of the runtime's start-up CPU in ajv),
 * and neither does `quark init` or `quark connector validate`.
 */
function compiledOnFirstUse(compile: () => ValidateFunction): Validator {
  let validator: Validator | undefined;
  return (data) => (validator ??= wrap(compile()))(data);
}

/** The runtime's one ajv owner. Creates the instance (sdk/json-schema.ts) and compiles each of quark's schemas once, when first used. */
export function createSchemaRegistry(schemasDir = join(packageRoot, 'schemas')): SchemaRegistry {
  const ajv = createAjv({ useDefaults: true });

  const loaded = schemaFiles.map((file) => JSON.parse(readFileSync(join(schemasDir, file), 'utf8')) as AnySchemaObject);
  for (const schema of loaded) ajv.addSchema(schema);
  const limitDefaults = limitDefaultsOf(loaded.find((schema) => schema.$id === schemaIds.runtimeConfig) ?? {});
  const ids = new Set(loaded.map((schema) => schema.$id));
  for (const id of Object.values(schemaIds)) if (!ids.has(id)) throw new Error(`schema ${id} missing from ${schemasDir}`);
  const builtIn = new Map<string, Validator>();
  for (const id of Object.values(schemaIds)) builtIn.set(id, compiledOnFirstUse(() => ajv.getSchema(id)!));

  return {
    validator(id) {
      return builtIn.get(id)!;
    },
    limitDefaults: () => limitDefaults,
    compile(schema, file) {
      if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
        throw quarkError('QUARK_ERR_PLUGIN_SCHEMA_INVALID', `${file}: a schema must be a JSON object`, { problems: [{ file, path: '', message: 'must be an object' }] });
      }
      // Plugins are told apart by connector id; their own $id would collide in ajv's
      // shared bucket when two versions of a plugin are loaded.
      const { $id: _ignored, ...rest } = schema as Record<string, unknown>;
      try {
        return wrap(ajv.compile(rest));
      } catch (error) {
        throw quarkError('QUARK_ERR_PLUGIN_SCHEMA_INVALID', `${file}: ${messageOf(error)}`, { problems: [{ file, path: '', message: messageOf(error) }] }, error);
      }
    },
  };
}
