/**
 * The one reading of ajv errors: problems whose paths are JSON pointers into the data,
 * with messages written for a person (see json-schema.ts). Imports nothing at run time
 * (ajv's error type only), so the console's definition editor bundles it with the
 * process schema's standalone validator (scripts/console-assets.mjs) and words its
 * problems as the runtime does.
 */
import type { ErrorObject } from 'ajv/dist/2020.js';

type Json = Record<string, unknown>;

/** One problem found by a schema: `path` is a JSON pointer into the data, `keyword` the JSON Schema keyword that failed. */
export interface SchemaProblem {
  path: string;
  message: string;
  keyword: string;
}

export function escapeSegment(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapeSegment(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function asJson(value: unknown): Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : {};
}

/** How a message names a field: its title, else its name, else "the value". */
function fieldName(schema: Json, pointer: string): string {
  if (typeof schema.title === 'string' && schema.title.length > 0) return `"${schema.title}"`;
  const last = pointer.split('/').pop();
  if (last === undefined || last === '') return 'the value';
  if (/^\d+$/.test(last)) return `item ${last}`;
  return `"${unescapeSegment(last)}"`;
}

const typeWords: Record<string, string> = {
  string: 'text',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

const formatWords: Record<string, string> = {
  uri: 'URL',
  'uri-reference': 'URL or relative reference',
  email: 'email address',
  hostname: 'host name',
  ipv4: 'IPv4 address',
  ipv6: 'IPv6 address',
  'date-time': 'date and time (ISO 8601)',
  date: 'date (YYYY-MM-DD)',
  time: 'time',
  uuid: 'UUID',
  regex: 'regular expression',
};

/** At most this many allowed values are listed in a message; longer lists are summed up. */
const listedValues = 5;

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function oneOfValues(values: readonly unknown[]): string {
  const shown = values.map((v) => JSON.stringify(v));
  if (values.length <= listedValues) return `must be one of: ${shown.join(', ')}`;
  return `must be one of the ${values.length} allowed values, such as ${shown.slice(0, 3).join(', ')}`;
}

function withUnit(limit: unknown, schema: Json): string {
  return typeof schema['x-unit'] === 'string' ? `${String(limit)} ${schema['x-unit']}` : String(limit);
}

function patternPhrase(schema: Json, pattern: unknown): string {
  if (typeof schema['x-error'] === 'string') return schema['x-error'];
  if (typeof schema.description === 'string') return `is not in the expected form (${schema.description})`;
  return `must match the pattern ${String(pattern)}`;
}

function formatPhrase(schema: Json, format: unknown): string {
  if (typeof schema['x-error'] === 'string') return schema['x-error'];
  return `must be a valid ${formatWords[String(format)] ?? String(format)}`;
}

/** What the value must be, in words, for one failed keyword. */
function phrase(error: ErrorObject, schema: Json): string {
  const params = error.params as Json;
  switch (error.keyword) {
    case 'type': {
      const types = Array.isArray(params.type) ? params.type : String(params.type).split(',');
      return `must be ${types.map((t) => typeWords[String(t)] ?? String(t)).join(' or ')}`;
    }
    case 'enum':
      return oneOfValues(params.allowedValues as unknown[]);
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}`;
    case 'pattern':
      return patternPhrase(schema, params.pattern);
    case 'format':
      return formatPhrase(schema, params.format);
    case 'minLength':
      return params.limit === 1 ? 'must not be empty' : `must be at least ${plural(Number(params.limit), 'character')} long`;
    case 'maxLength':
      return `must be at most ${plural(Number(params.limit), 'character')} long`;
    case 'minimum':
      return `must be at least ${withUnit(params.limit, schema)}`;
    case 'maximum':
      return `must be at most ${withUnit(params.limit, schema)}`;
    case 'exclusiveMinimum':
      return `must be more than ${withUnit(params.limit, schema)}`;
    case 'exclusiveMaximum':
      return `must be less than ${withUnit(params.limit, schema)}`;
    case 'multipleOf':
      return `must be a multiple of ${String(params.multipleOf)}`;
    case 'minItems':
      return `must have at least ${plural(Number(params.limit), 'item')}`;
    case 'maxItems':
      return `must have at most ${plural(Number(params.limit), 'item')}`;
    case 'uniqueItems':
      return 'must not hold the same item twice';
    case 'minProperties':
      return `must have at least ${plural(Number(params.limit), 'field')}`;
    case 'maxProperties':
      return `must have at most ${plural(Number(params.limit), 'field')}`;
    case 'anyOf':
    case 'oneOf':
      return 'does not match any of the allowed forms';
    case 'if':
      return 'does not fit what its other fields call for';
    case 'not':
      return 'is not allowed in this form';
    default:
      return error.message ?? 'is not valid';
  }
}

function problemOf(error: ErrorObject): SchemaProblem {
  const params = error.params as Json;
  const parent = asJson(error.parentSchema);
  const at = error.instancePath;
  if (error.keyword === 'required' || error.keyword === 'dependentRequired') {
    const name = String(params.missingProperty);
    const path = `${at}/${escapeSegment(name)}`;
    return { path, message: `${fieldName(asJson(asJson(parent.properties)[name]), path)} is required`, keyword: error.keyword };
  }
  if (error.keyword === 'additionalProperties' || error.keyword === 'unevaluatedProperties') {
    const name = String(params.additionalProperty ?? params.unevaluatedProperty);
    const path = `${at}/${escapeSegment(name)}`;
    return { path, message: `${fieldName({}, path)} is not a known field`, keyword: error.keyword };
  }
  return { path: at || '/', message: `${fieldName(parent, at)} ${phrase(error, parent)}`, keyword: error.keyword };
}

/**
 * Turns ajv errors into problems whose paths are JSON pointers into the data. The
 * errors of `if`, `anyOf` and `oneOf` are left out when their branches' errors say what
 * is wrong. Works with errors of an ajv built without `verbose` too (names, not titles).
 */
export function problemsFromAjv(errors: readonly ErrorObject[] | null | undefined): SchemaProblem[] {
  if (!errors) return [];
  const problems: SchemaProblem[] = [];
  for (const error of errors) {
    const combinator = error.keyword === 'if' || error.keyword === 'anyOf' || error.keyword === 'oneOf';
    if (combinator && errors.length > 1) continue;
    problems.push(problemOf(error));
  }
  return problems;
}

/**
 * Problems as one line for an error message: `"AWS access key" is required (/awsAccessKey); …`.
 * The SDK's copy of the runtime's `describeProblems` (core/errors.ts): the SDK may not import the runtime.
 */
export function describeSchemaProblems(problems: readonly { path: string; message: string }[]): string {
  return problems.map((p) => (p.path === '' || p.path === '/' ? p.message : `${p.message} (${p.path})`)).join('; ');
}
