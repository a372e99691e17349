/**
 * `quark operations run`: one operation of a saved connection, on the operations route
 * (`POST /api/v1/connections/:id/operations/:operation`), with its results, output
 * documents and errors. Registered on the program by main.ts.
 */
import type { Command } from 'commander';
import type { PresentedDocument } from '../index.js';
import type { CliIo } from './processes.js';
import { readDocuments, writeOutputs } from './processes.js';
import { typeSetValues } from './config-input.js';
import { block } from './output.js';

interface OperationResultView {
  status: 'success' | 'application-error' | 'failure';
  message?: string;
  code?: string;
  properties?: Record<string, string>;
  documents?: PresentedDocument[];
}

interface OperationRunView {
  connector: string;
  operation: string;
  durationMs: number;
  results: OperationResultView[];
}

interface RunOptions {
  param?: Record<string, string>;
  paramJson?: Record<string, unknown>;
  doc?: string[];
  property?: Record<string, unknown>;
  output?: string;
}

const marks = { success: '✔', 'application-error': '!', failure: '✖' } as const;

/** A control byte other than tab, line feed, vertical tab, form feed and carriage return. */
const isControl = (byte: number) => byte < 0x20 && (byte < 0x09 || byte > 0x0d);

/** A body for a terminal: text as text (its first 2,000 characters), bytes as size and a hex head. */
export function bodyPreview(d: PresentedDocument): string {
  if (d.body === undefined) return d.bodyOmitted ? `body omitted (${d.size} bytes, over 16 MiB)` : 'no body';
  const bytes = Buffer.from(d.body, 'base64');
  const text = bytes.toString('utf8');
  const printable = !text.includes('\uFFFD') && !bytes.some(isControl);
  if (printable) return `body (${bytes.length} bytes): ${text.length > 2000 ? `${text.slice(0, 2000)}…` : text}`;
  return `body (${bytes.length} bytes, binary): ${bytes.subarray(0, 32).toString('hex').replace(/(..)(?!$)/g, '$1 ')}${bytes.length > 32 ? ' …' : ''}`;
}

function showResult(r: OperationResultView, index: number): string[] {
  const head = `${index + 1} ${marks[r.status]} ${r.status}${r.code ? ` ${r.code}` : ''}${r.message ? `: ${r.message}` : ''}`;
  const lines = [head];
  if (r.properties && Object.keys(r.properties).length > 0) lines.push(`    properties ${JSON.stringify(r.properties)}`);
  (r.documents ?? []).forEach((d, i) => {
    lines.push(`    document ${i + 1}: properties ${JSON.stringify(d.properties)}`, `      ${bodyPreview(d)}`);
  });
  return lines;
}

export function showRun(ref: string, run: OperationRunView): string {
  const outputs = run.results.reduce((n, r) => n + (r.documents?.length ?? 0), 0);
  const head = block([
    ['operation', `${run.operation} (${run.connector}) on ${ref}`],
    ['results', `${run.results.length}: ${run.results.filter((r) => r.status === 'success').length} success, ${run.results.filter((r) => r.status !== 'success').length} not`],
    ['documents out', outputs],
    ['duration', `${run.durationMs} ms`],
  ]);
  return [head, '', ...run.results.flatMap(showResult)].join('\n');
}

/** The operation's parameters: `--param` typed by its parameter schema, `--param-json` as given. */
async function parametersOf(io: CliIo, ref: string, operation: string, options: RunOptions): Promise<Record<string, unknown>> {
  if (!options.param) return { ...(options.paramJson ?? {}) };
  const api = io.client();
  const connection = await api.call<{ connector: string }>('GET', `/connections/${encodeURIComponent(ref)}`);
  const connector = await api.call<{ operationSchemas: Record<string, unknown> }>('GET', `/connectors/${encodeURIComponent(connection.connector)}`);
  return { ...typeSetValues(connector.operationSchemas[operation], options.param), ...(options.paramJson ?? {}) };
}

export function registerOperationCommands(program: Command, io: CliIo & { parseSetJson(entry: string, previous?: Record<string, unknown>): Record<string, unknown> }): void {
  const operations = program.command('operations').description('run one operation of a saved connection');
  operations
    .command('run <connection> <operation>')
    .description('run one operation of a saved connection on input documents (default: one empty document); exit 0 when every result is a success, 1 otherwise')
    .option('--param <key=value>', 'an operation parameter (repeatable), typed by the operation\'s parameter schema', io.parseSet)
    .option('--param-json <key=json>', 'an operation parameter as JSON (repeatable; wins over --param)', io.parseSetJson)
    .option('--doc <file>', 'an input document\'s body (repeatable; - for stdin)', io.collect)
    .option('--property <key=value>', 'a document property of every input document (repeatable)', io.parseSet)
    .option('--output <dir>', 'write the output documents to this folder (output-<n> and output-<n>.properties.json)')
    .action(async (ref: string, operation: string, options: RunOptions) => {
      const parameters = await parametersOf(io, ref, operation, options);
      const documents = options.doc ? readDocuments(options.doc, options.property) : [{ ...(options.property ? { properties: Object.fromEntries(Object.entries(options.property).map(([k, v]) => [k, String(v)])) } : {}) }];
      const path = `/connections/${encodeURIComponent(ref)}/operations/${encodeURIComponent(operation)}`;
      const run = await io.client().call<OperationRunView>('POST', path, { parameters, documents });
      const outputs = run.results.flatMap((r) => r.documents ?? []);
      if (options.output) writeOutputs(options.output, outputs);
      io.emit(run, () => `${showRun(ref, run)}${options.output ? `\n\n${outputs.length} output document(s) written to ${options.output}` : ''}`);
      process.exitCode = run.results.every((r) => r.status === 'success') ? 0 : 1;
    });
}
