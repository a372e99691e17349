/**
 * Configurations as the CLI takes them: a JSON file (`--file`), fields as text (`--set
 * key=value`, typed by the connector's connection schema) and fields as JSON
 * (`--set-json key=value`). Errors name the file's line and column and never quote its
 * content, which may hold secrets.
 */
import { readFileSync } from 'node:fs';
import { quarkError, messageOf } from '../core/errors.js';

type Json = Record<string, unknown>;

/** The offset of the first character that makes `text` not JSON (its length when it ends too soon). */
export function jsonErrorOffset(text: string): number {
  const scan = { text, i: 0, stack: [] as string[] };
  let expect: 'value' | 'first-value' | 'key' | 'first-key' | 'colon' | 'after' = 'value';
  for (;;) {
    while (scan.i < text.length && ' \t\n\r'.includes(text[scan.i]!)) scan.i++;
    if (scan.i >= text.length) return text.length;
    const c = text[scan.i]!;
    if ((expect === 'first-value' && c === ']') || (expect === 'first-key' && c === '}')) {
      scan.stack.pop();
      scan.i++;
      expect = 'after';
    } else if (expect === 'value' || expect === 'first-value') {
      if (c === '{' || c === '[') {
        scan.stack.push(c);
        scan.i++;
        expect = c === '{' ? 'first-key' : 'first-value';
      } else if (!scanScalar(scan)) return scan.i;
      else expect = 'after';
    } else if (expect === 'key' || expect === 'first-key') {
      if (c !== '"' || !scanString(scan)) return scan.i;
      expect = 'colon';
    } else if (expect === 'colon') {
      if (c !== ':') return scan.i;
      scan.i++;
      expect = 'value';
    } else {
      const top = scan.stack.at(-1);
      if (top === undefined) return scan.i;
      if (c === ',') expect = top === '{' ? 'key' : 'value';
      else if (c === (top === '{' ? '}' : ']')) scan.stack.pop();
      else return scan.i;
      scan.i++;
    }
    if (expect === 'after' && scan.stack.length === 0) return endOrGarbage(scan);
  }
}

function endOrGarbage(scan: { text: string; i: number }): number {
  while (scan.i < scan.text.length && ' \t\n\r'.includes(scan.text[scan.i]!)) scan.i++;
  return scan.i;
}

const scalar = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

function scanScalar(scan: { text: string; i: number }): boolean {
  if (scan.text[scan.i] === '"') return scanString(scan);
  scalar.lastIndex = scan.i;
  const match = scalar.exec(scan.text);
  if (!match) return false;
  scan.i += match[0].length;
  return true;
}

/** Moves past a string at `scan.i`; false with `scan.i` at the offending character. */
function scanString(scan: { text: string; i: number }): boolean {
  const { text } = scan;
  for (scan.i++; scan.i < text.length; scan.i++) {
    const c = text[scan.i]!;
    if (c === '"') {
      scan.i++;
      return true;
    }
    if (c < ' ') return false;
    if (c === '\\') {
      const next = text[scan.i + 1] ?? '';
      if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(scan.i + 2, scan.i + 6))) scan.i += 5;
      else if ('"\\/bfnrt'.includes(next) && next !== '') scan.i++;
      else return false;
    }
  }
  return false;
}

/** Line and column (both from 1) of an offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

/** V8's reason without the position and without the quoted text (which may hold a secret). */
function reasonOf(error: unknown): string {
  const reason = messageOf(error)
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/^Unexpected end of JSON input$/, 'the text ends too soon');
  return reason.charAt(0).toLowerCase() + reason.slice(1);
}

/** Parses JSON text read from `file`; a syntax error names the line and column. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const { line, column } = lineAndColumn(text, jsonErrorOffset(text));
    const message = `line ${line}, column ${column}: ${reasonOf(error)}`;
    throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `${file} is not valid JSON: ${message}`, { problems: [{ file, path: '', message }], line, column }, error);
  }
}

/** A JSON object from a file (- for standard input). */
export function parseJsonFile(file: string): Json {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `cannot read ${file}: ${messageOf(error)}`, { problems: [{ file, path: '', message: messageOf(error) }] });
  }
  const value = parseJsonText(text, file === '-' ? 'standard input' : file);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `${file} must hold a JSON object`, { problems: [{ file, path: '', message: 'must be an object' }] });
  }
  return value as Json;
}

function splitEntry(option: string, entry: string): [string, string] {
  const at = entry.indexOf('=');
  if (at <= 0) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `${option} expects key=value, got "${entry.split('=')[0]}"`);
  return [entry.slice(0, at), entry.slice(at + 1)];
}

/** `--set key=value`: the value as text, typed later by the schema (see typeSetValues). */
export function parseSet(entry: string, previous: Record<string, string> = {}): Record<string, string> {
  const [key, value] = splitEntry('--set', entry);
  return { ...previous, [key]: value };
}

/** `--set-json key=value`: the value is JSON (a number, a list, an object…). */
export function parseSetJson(entry: string, previous: Json = {}): Json {
  const [key, raw] = splitEntry('--set-json', entry);
  return { ...previous, [key]: parseJsonText(raw, `--set-json ${key}`) };
}

function typesOf(field: Json): string[] {
  if (Array.isArray(field.type)) return field.type.map(String);
  if (typeof field.type === 'string') return [field.type];
  if (Array.isArray(field.enum)) return [...new Set(field.enum.map((v) => (v === null ? 'null' : typeof v)))];
  return [];
}

/**
 * One `--set` value typed by its field's schema: a text field takes the text as is; a
 * number, integer or boolean field takes the text when it reads as one. Anything else
 * stays text, and the runtime's validation says what the field needs.
 */
export function typeSetValue(field: Json | undefined, text: string): unknown {
  const types = field ? typesOf(field) : [];
  if (types.includes('string') || types.length === 0) return text;
  if ((types.includes('number') || types.includes('integer')) && text.trim() !== '' && Number.isFinite(Number(text))) return Number(text);
  if (types.includes('boolean') && (text === 'true' || text === 'false')) return text === 'true';
  if (types.includes('null') && text === 'null') return null;
  return text;
}

/** `--set` values typed by a connection schema's top-level fields. */
export function typeSetValues(schema: unknown, sets: Record<string, string>): Json {
  const properties = ((schema as Json | undefined)?.properties ?? {}) as Record<string, Json>;
  return Object.fromEntries(Object.entries(sets).map(([key, text]) => [key, typeSetValue(Object.hasOwn(properties, key) ? properties[key] : undefined, text)]));
}
