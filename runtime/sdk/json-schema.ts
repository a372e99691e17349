/**
 * The one ajv factory and the one reading of ajv errors (`schema-problems.ts`,
 * re-exported here), shared by the runtime's schema owner (`runtime/schema`) and the
 * connector kit (`sdk/testing`). It lives in the SDK
 * because the SDK imports nothing of the runtime; it is not part of the package's
 * `exports`, so plugins do not see it.
 *
 * A problem's message is written for a person: it names the field by its `title`
 * (`"AWS access key" is required`), or by its name when it has none, and says what the
 * value must be in words; a pattern's own wording comes from the field's `x-error`. The
 * JSON pointer and the ajv keyword stay beside it for machines. No value from the data
 * is ever quoted, so a secret cannot leak into a message.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => void;

export { describeSchemaProblems, escapeSegment, problemsFromAjv, type SchemaProblem } from './schema-problems.js';

/** quark's annotation vocabulary for connection schemas (documented in schemas/connection-schema.schema.json). */
export const annotationKeywords = ['x-order', 'x-group', 'x-groups', 'x-unit', 'x-help', 'x-secret', 'x-enum-labels', 'x-error', 'x-local-path'] as const;

/**
 * An ajv instance with quark's options, formats and annotation keywords. `verbose` keeps
 * each error's schema, from which the messages take titles, units and `x-error`.
 */
export function createAjv(options: { useDefaults?: boolean; standalone?: boolean } = {}): Ajv2020 {
  const ajv = new Ajv2020({
    allErrors: true,
    verbose: true,
    useDefaults: options.useDefaults ?? false,
    strict: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    // the source of each compiled schema kept, for ajv's standalone code (the console's editor)
    ...(options.standalone ? { code: { source: true, esm: true } } : {}),
  });
  addFormats(ajv);
  for (const keyword of annotationKeywords) ajv.addKeyword({ keyword });
  return ajv;
}

