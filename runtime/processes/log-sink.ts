/**
 * Execution logs. One pino logger for all executions is built once (redaction compiled
 * once); each execution gets a child bound to its id. Lines are gathered per execution
 * and appended to the store in one write when 64 KiB have gathered, a second has passed,
 * or the execution ends: a short execution costs one insert, no file. A killed runtime
 * loses at most the last second of lines; the restart appends why it ended.
 */
import { createLogger, type Logger } from '../core/logger.js';

export interface ExecutionLogs {
  /** A logger for one execution; `end()` writes what it has gathered. */
  open(executionId: string, bindings: Record<string, unknown>): { log: Logger; end(): void };
}

const idPattern = /"execution":"([^"]+)"/;

export interface ExecutionLogsOptions {
  level: string;
  redact: readonly string[];
  append(executionId: string, lines: string): void;
  /** A failed append (the store refused it): the lines are dropped, and this says so. */
  onError(executionId: string, error: unknown): void;
  maxBytes?: number;
  maxDelayMs?: number;
}

export function createExecutionLogs(options: ExecutionLogsOptions): ExecutionLogs {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const maxDelayMs = options.maxDelayMs ?? 1000;
  const sinks = new Map<string, { lines: string[]; bytes: number; timer?: NodeJS.Timeout }>();

  const flush = (id: string) => {
    const sink = sinks.get(id);
    if (!sink) return;
    if (sink.timer) clearTimeout(sink.timer);
    sink.timer = undefined;
    if (sink.lines.length === 0) return;
    const text = sink.lines.join('');
    sink.lines = [];
    sink.bytes = 0;
    // called from a timer and from pino's write: nothing may escape from here
    try {
      options.append(id, text);
    } catch (error) {
      options.onError(id, error);
    }
  };

  // every line of an execution's logger carries its id (a child binding): route by it
  const destination = {
    write(line: string) {
      const id = idPattern.exec(line)?.[1];
      const sink = id === undefined ? undefined : sinks.get(id);
      if (!sink) return;
      sink.lines.push(line);
      sink.bytes += line.length;
      if (sink.bytes >= maxBytes) flush(id!);
      else if (!sink.timer) {
        sink.timer = setTimeout(() => flush(id!), maxDelayMs);
        sink.timer.unref();
      }
    },
  };
  const root = createLogger({ level: options.level, redact: options.redact, destination });

  return {
    open(executionId, bindings) {
      sinks.set(executionId, { lines: [], bytes: 0 });
      return {
        log: root.child({ execution: executionId, ...bindings }),
        end() {
          flush(executionId);
          sinks.delete(executionId);
        },
      };
    },
  };
}
