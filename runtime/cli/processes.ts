/**
 * The process commands of the `quark` CLI: deploy, undeploy, rollback, deployments,
 * schedules, run, executions, logs. Registered on the program by main.ts.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { quarkError, messageOf, fromPlainError } from '../core/errors.js';
import type { DeploymentView, DeployedView, DeploymentSummary, DeploymentDetail, ExecutionView, PresentedDocument, ScheduleRecord, LoadProblem } from '../index.js';
import type { ApiClient } from './client.js';
import { exitCodeForStatus } from './exit-codes.js';
import { block, table } from './output.js';
import { bodyPreview } from './operations.js';

export interface CliIo {
  client(): ApiClient;
  emit(value: unknown, human: () => string): void;
  out(text: string): void;
  globals(): { json?: boolean };
  parseJsonFile(file: string): Record<string, unknown>;
  parseSet(entry: string, previous?: Record<string, unknown>): Record<string, unknown>;
  collect(value: string, previous?: string[]): string[];
}

/** `--doc` files (`-` for standard input) as the API's input documents, each with `properties`. */
export function readDocuments(files: string[], properties: Record<string, unknown> | undefined) {
  return files.map((file) => {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file === '-' ? 0 : file);
    } catch (error) {
      throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `cannot read ${file}: ${messageOf(error)}`, { problems: [{ file, path: '', message: messageOf(error) }] });
    }
    return { ...(properties ? { properties: Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, String(v)])) } : {}), body: bytes.toString('base64'), encoding: 'base64' };
  });
}

/** Writes output documents to `dir`: `output-<n>` (the body) and `output-<n>.properties.json`. */
export function writeOutputs(dir: string, documents: PresentedDocument[]): void {
  mkdirSync(dir, { recursive: true });
  documents.forEach((d, i) => {
    writeFileSync(join(dir, `output-${i + 1}.properties.json`), JSON.stringify(d.properties, null, 2) + '\n');
    if (d.body !== undefined) writeFileSync(join(dir, `output-${i + 1}`), Buffer.from(d.body, 'base64'));
  });
}

/** The error line of a streamed answer, as the error it reports. */
const fromStreamError = (error: NonNullable<StreamedLine['error']>) => fromPlainError(error);

/** A document line of a streamed answer (runtime/api/stream.ts), with the parts of its body once they came. */
interface StreamedLine {
  type: 'execution' | 'document' | 'part' | 'end' | 'error';
  document?: number;
  properties?: Record<string, string>;
  size?: number;
  body?: string;
  parts?: number;
  bodyOmitted?: string;
  execution?: ExecutionView;
  documents?: { streamed: number; dropped: number };
  notStreamed?: string;
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

/**
 * What `quark run --stream` / `--output` does with each line of a streamed answer: a
 * document printed as it comes (a body in parts: its size and parts), its body written to
 * `<dir>/output-<n>` part by part, so no body is ever held whole.
 */
export function streamedLines(options: { dir?: string; print?: (text: string) => void }) {
  if (options.dir) mkdirSync(options.dir, { recursive: true });
  const file = (n: number) => join(options.dir!, `output-${n + 1}`);
  const state: { end?: StreamedLine; error?: StreamedLine['error']; documents: number } = { documents: 0 };
  return {
    state,
    line(line: StreamedLine): void {
      if (line.type === 'end') state.end = line;
      if (line.type === 'error') state.error = line.error;
      if (line.type === 'part' && options.dir) appendFileSync(file(line.document!), Buffer.from(line.body!, 'base64'));
      if (line.type !== 'document') return;
      const n = line.document!;
      state.documents = n + 1;
      if (options.dir) {
        writeFileSync(join(options.dir, `output-${n + 1}.properties.json`), JSON.stringify(line.properties, null, 2) + '\n');
        if (line.bodyOmitted === undefined) writeFileSync(file(n), line.body === undefined ? Buffer.alloc(0) : Buffer.from(line.body, 'base64'));
      }
      const body = line.parts !== undefined ? `body (${line.size} bytes, in ${line.parts} parts)` : line.bodyOmitted !== undefined ? `body omitted (${line.size} bytes): ${line.bodyOmitted}` : bodyPreview({ properties: line.properties!, size: line.size!, encoding: 'base64', body: line.body ?? '' });
      options.print?.(`document ${n + 1}: properties ${JSON.stringify(line.properties)}\n  ${body}`);
    },
  };
}

export function registerProcessCommands(program: Command, io: CliIo): void {
  const { client, emit, out, globals, parseJsonFile, parseSet, collect } = io;

  const showDeployment = (d: DeploymentView) => `deployed ${d.process} version ${d.version} (${d.name})${d.note ? ` — ${d.note}` : ''}`;
  const showSchedule = (s: ScheduleRecord) => `${s.cron}${s.timezone ? ` (${s.timezone})` : ''}${s.catchUp === 'once' ? ' catch-up once' : ''}`;
  const showDeployed = (d: DeployedView) =>
    `${showDeployment(d)}\n${d.schedules.length > 0 ? `schedules kept: ${d.schedules.map(showSchedule).join('; ')}` : 'no schedules (set them with quark schedules set)'}`;
  const showProblems = (problems: LoadProblem[] | undefined) => (problems ?? []).map((p) => `problem  ${p.path} ${p.code}: ${p.message}`);

  program
    .command('deploy <file>')
    .description('validate a process definition (all problems at once) and deploy it as a new version')
    .action(async (file: string) => {
      const view = await client().call<DeployedView>('POST', '/deployments', parseJsonFile(file));
      emit(view, () => showDeployed(view));
    });

  program
    .command('undeploy <process>')
    .description('undeploy a process (its versions and executions are kept)')
    .action(async (id: string) => {
      const view = await client().call<DeploymentSummary & { removedSchedules: ScheduleRecord[] }>('DELETE', `/deployments/${encodeURIComponent(id)}`);
      const removed = view.removedSchedules.length > 0 ? `; schedules removed: ${view.removedSchedules.map(showSchedule).join('; ')}` : '';
      emit(view, () => `undeployed ${view.process} (latest version ${view.latestVersion})${removed}`);
    });

  program
    .command('rollback <process> <version>')
    .description('deploy an earlier version again, as a new version')
    .action(async (id: string, version: string) => {
      const view = await client().call<DeployedView>('POST', `/deployments/${encodeURIComponent(id)}/rollback`, { version: positive(version, 'version') });
      emit(view, () => showDeployed(view));
    });

  function positive(text: string, what: string): number {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', `${what} must be a positive integer, got "${text}"`);
    return n;
  }

  const deployments = program.command('deployments').description('deployed processes of your account');
  deployments
    .command('list')
    .action(async () => {
      const { deployments: list } = await client().call<{ deployments: DeploymentSummary[] }>('GET', '/deployments');
      emit({ deployments: list }, () =>
        table(
          list.map((d) => ({ ...d, active: d.activeVersion ?? 'undeployed', schedules: d.schedules.map((s) => s.cron).join(', ') || '-', problems: d.problems?.length ?? '-' })),
          ['process', 'name', 'active', 'latestVersion', 'schedules', 'problems', 'updatedAt'],
        ),
      );
    });
  deployments
    .command('show <process>')
    .option('--version <n>', 'a specific version')
    .option('--definition', 'print the definition only (JSON)')
    .action(async (id: string, options: { version?: string; definition?: boolean }) => {
      const d = await client().call<DeploymentDetail & { nextRuns: (string | null)[] }>('GET', `/deployments/${encodeURIComponent(id)}${options.version ? `?version=${positive(options.version, '--version')}` : ''}`);
      if (options.definition) {
        if (d.definition === null) throw quarkError('QUARK_ERR_PROCESS_UNREADABLE', `the stored definition of ${d.process} version ${d.version} cannot be read`);
        out(JSON.stringify(d.definition, null, 2));
        return;
      }
      emit(d, () =>
        [
          block([
            ['process', d.process],
            ['name', d.name],
            ['active version', d.activeVersion ?? 'undeployed'],
            ['shown version', d.version],
            ['schedules', d.schedules.map((s, i) => `${showSchedule(s)} next ${d.nextRuns[i] ?? '-'}`).join('; ') || '-'],
            ['steps', d.definition ? d.definition.steps.map((s) => `${s.id}:${s.kind}`).join(' ') : '(the stored definition cannot be read)'],
          ]),
          ...showProblems(d.problems),
          '',
          table(d.versions.map((v) => ({ ...v, note: v.note ?? '' })), ['version', 'deployedAt', 'deployedBy', 'note']),
        ].join('\n'),
      );
    });

  const schedules = program.command('schedules').description('cron schedules of deployed processes');
  schedules
    .command('set <process> <cron...>')
    .description('replace the schedules of a process (cron: 5 fields, or 6 with seconds; quote each)')
    .option('--timezone <tz>', 'IANA time zone of the expressions, e.g. Europe/Paris or UTC (default: the runtime\'s)')
    .addOption(new Option('--catch-up <policy>', 'fires missed while the runtime was stopped: skip them, or run once at start').choices(['skip', 'once']))
    .action(async (id: string, crons: string[], options: { timezone?: string; catchUp?: 'skip' | 'once' }) => {
      const schedules = crons.map((cron) => ({ cron, ...(options.timezone ? { timezone: options.timezone } : {}), ...(options.catchUp ? { catchUp: options.catchUp } : {}) }));
      const view = await client().call<DeploymentSummary>('PUT', `/deployments/${encodeURIComponent(id)}/schedules`, { schedules });
      emit(view, () => `${view.process}: ${view.schedules.map(showSchedule).join('; ')}`);
    });
  schedules
    .command('clear <process>')
    .action(async (id: string) => {
      const view = await client().call<DeploymentSummary>('PUT', `/deployments/${encodeURIComponent(id)}/schedules`, { schedules: [] });
      emit(view, () => `${view.process}: no schedules`);
    });

  const terminalStatus = (status: string) => !['queued', 'in-process'].includes(status);

  function mib(bytes: number): string {
    return `${(bytes / 1048576).toFixed(1)} MiB`;
  }

  function progressLine(e: ExecutionView): string {
    const steps = Object.entries(e.steps).map(([id, c]) => `${id} ${c.in}→${c.out}${c.errors ? ` ✖${c.errors}` : ''}`).join('  ');
    const bytes = e.progress ? `  [${e.progress.step} ${mib(e.progress.bytesDone)}${e.progress.bytesTotal ? ` / ${mib(e.progress.bytesTotal)}` : ''}]` : '';
    return `${e.status}  ${steps}${bytes}`;
  }

  function showExecution(e: ExecutionView): string {
    const lines = [
      block([
        ['execution', e.id],
        ['process', `${e.processId}${e.version === null ? ' (test mode)' : ` version ${e.version}`}`],
        ['trigger', e.trigger],
        ['status', e.status],
        ['queued', e.queuedAt],
        ['started', e.startedAt],
        ['ended', e.endedAt],
        ['duration', e.durationMs === null ? null : `${e.durationMs} ms`],
        ['documents', `${e.documentsIn} in, ${e.documentsOut} out, ${e.documentsFailed} failed`],
        ['warnings', e.warnings],
        ...(e.errorCode ? ([['error', `${e.errorCode}: ${e.errorMessage}`]] as [string, unknown][]) : []),
      ]),
    ];
    if (Object.keys(e.steps).length > 0) lines.push('', table(Object.entries(e.steps).map(([step, c]) => ({ step, ...c })), ['step', 'in', 'out', 'errors']));
    if (e.errors && e.errors.length > 0) lines.push('', table(e.errors.map((x) => ({ ...x })), ['step', 'code', 'message']));
    return lines.join('\n');
  }

  program
    .command('run [process]')
    .description('run a deployed process, or a process file without deploying it (--file, test mode)')
    .option('--file <file>', 'run this definition without deploying it (test mode; waits)')
    .option('--doc <file>', 'an input document (repeatable; - for stdin) for processes that start with documents', collect)
    .option('--property <key=value>', 'a document property of every input document (repeatable)', parseSet)
    .option('--wait', 'wait for the end: live progress on a terminal, then the summary; the exit code follows the status')
    .option('--output <dir>', 'wait, writing the output documents to this folder as they come (output-<n> and output-<n>.properties.json)')
    .option('--stream', 'wait, printing each output document as the execution makes it (with --json: the streamed answer\'s lines as they come), then the summary')
    .action(async (id: string | undefined, options: { file?: string; doc?: string[]; property?: Record<string, unknown>; wait?: boolean; output?: string; stream?: boolean }) => {
      if ((id === undefined) === (options.file === undefined)) throw quarkError('QUARK_ERR_CLI_INPUT_INVALID', 'give a deployed process id, or --file with a definition (not both)');
      const api = client();
      const documents = options.doc ? readDocuments(options.doc, options.property) : undefined;
      const request = {
        ...(id !== undefined ? { process: id } : { definition: parseJsonFile(options.file!) }),
        ...(documents ? { documents } : {}),
        trigger: 'manual',
      };
      if (options.output || options.stream) {
        // the streamed answer: each output document as the execution makes it
        const json = globals().json === true;
        const lines = streamedLines({ ...(options.output ? { dir: options.output } : {}), ...(options.stream && !json ? { print: out } : {}) });
        await api.stream('POST', '/executions', { ...request, wait: true }, (line) => {
          if (options.stream && json) out(JSON.stringify(line));
          lines.line(line as unknown as StreamedLine);
        });
        const { end, error, documents } = lines.state;
        if (error || !end?.execution) throw error ? fromStreamError(error) : quarkError('QUARK_ERR_CLI_UNREACHABLE', 'the streamed answer ended before the execution did');
        const view = end.execution;
        const written = options.output ? `\n\n${documents} output document(s) written to ${options.output}` : '';
        const elsewhere = end.notStreamed ? `\n\n${end.notStreamed}` : '';
        if (!(options.stream && json)) emit(view, () => `${showExecution(view)}${written}${elsewhere}`);
        process.exitCode = exitCodeForStatus(view.status);
        return;
      }
      const started = await api.call<ExecutionView>('POST', '/executions', request);
      if (!options.wait && !options.file) {
        emit(started, () => `${started.id} ${started.status}`);
        return;
      }
      const live = process.stderr.isTTY && !globals().json;
      let view = started;
      while (!terminalStatus(view.status)) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        view = await api.call<ExecutionView>('GET', `/executions/${view.id}`);
        if (live) process.stderr.write(`\r\x1b[K${progressLine(view).slice(0, (process.stderr.columns || 120) - 1)}`);
      }
      if (live) process.stderr.write('\r\x1b[K');
      emit(view, () => showExecution(view));
      process.exitCode = exitCodeForStatus(view.status);
    });

  const executions = program.command('executions').description('executions of your account, newest first');
  executions
    .command('list')
    .option('--process <id>', 'only this process')
    .addOption(new Option('--status <status>', 'only this status').choices(['queued', 'in-process', 'complete', 'complete-with-warnings', 'error', 'aborted', 'discarded']))
    .option('--limit <n>', 'at most this many (default 50)')
    .action(async (options: { process?: string; status?: string; limit?: string }) => {
      const query = new URLSearchParams({ ...(options.process ? { process: options.process } : {}), ...(options.status ? { status: options.status } : {}), ...(options.limit ? { limit: String(positive(options.limit, '--limit')) } : {}) });
      const { executions: list } = await client().call<{ executions: ExecutionView[] }>('GET', `/executions${query.size > 0 ? `?${query.toString()}` : ''}`);
      emit({ executions: list }, () => table(list.map((e) => ({ ...e, process: e.processId, version: e.version ?? 'test', documents: `${e.documentsIn}/${e.documentsOut}/${e.documentsFailed}`, ms: e.durationMs })), ['id', 'process', 'version', 'trigger', 'status', 'queuedAt', 'ms', 'documents']));
    });
  executions
    .command('show <id>')
    .action(async (id: string) => {
      const view = await client().call<ExecutionView>('GET', `/executions/${encodeURIComponent(id)}`);
      emit(view, () => showExecution(view));
    });
  executions
    .command('cancel <id>')
    .description('cancel a queued (discarded) or running (aborted) execution')
    .action(async (id: string) => {
      const view = await client().call<ExecutionView>('POST', `/executions/${encodeURIComponent(id)}/cancel`);
      emit(view, () => `${view.id} ${view.status === 'discarded' ? 'discarded' : 'cancelling'}`);
    });

  const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

  program
    .command('logs <execution>')
    .description('the log of an execution (NDJSON with --json)')
    .option('--follow', 'keep printing until the execution ends')
    .action(async (id: string, options: { follow?: boolean }) => {
      const api = client();
      let printed = 0;
      for (;;) {
        const text = await api.text('GET', `/executions/${encodeURIComponent(id)}/log`);
        const lines = text.split('\n').filter((l) => l.length > 0);
        for (const line of lines.slice(printed)) {
          if (globals().json) {
            out(line);
            continue;
          }
          try {
            const { level, time, msg, step, execution: _e, process: _p, version: _v, pid: _pid, hostname: _h, ...rest } = JSON.parse(line) as Record<string, unknown>;
            const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
            out(`${new Date(time as number).toISOString()} ${(levels[level as number] ?? String(level)).padEnd(5)} ${step ? `[${typeof step === 'string' ? step : JSON.stringify(step)}] ` : ''}${String(msg)}${extra}`);
          } catch {
            out(line);
          }
        }
        printed = lines.length;
        if (!options.follow) return;
        const view = await api.call<ExecutionView>('GET', `/executions/${encodeURIComponent(id)}`);
        if (terminalStatus(view.status)) {
          if (printed < (await api.text('GET', `/executions/${encodeURIComponent(id)}/log`)).split('\n').filter((l) => l.length > 0).length) continue;
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    });
}
