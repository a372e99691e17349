/**
 * Execution logs. One pino logger for all executions is built once (redaction compiled
 * once); each execution gets a child bound to its id. Lines are gathered per execution
 * and handed to one bounded write queue when 64 KiB have gathered, a second has passed,
 * or the execution ends: a short execution costs one insert, no file. The queue writes
 * one chunk of an execution at a time, in order (an execution's chunks stay in order on
 * any store; different executions' chunks go together), and
 * holds at most `maxQueuedBytes`: when the store falls that far behind, further lines
 * are dropped and counted, and the execution's log says how many (never unbounded
 * memory; pino's write cannot wait). A killed runtime loses at most the last second of
 * lines (and the chunks still queued); the restart appends why it ended.
 */
import { createLogger, type Logger } from '../core/logger.js';

export interface ExecutionLogs {
  /** A logger for one execution; `end()` hands over what it has gathered and resolves once it is written (its own lines: never another execution's). */
  open(executionId: string, bindings: Record<string, unknown>): { log: Logger; end(): Promise<void> };
  /** Resolves when every chunk handed over so far is written (or failed). */
  drain(): Promise<void>;
  /** Bytes waiting in the queue. */
  queuedBytes(): number;
}

const idPattern = /"execution":"([^"]+)"/;

export interface ExecutionLogsOptions {
  level: string;
  redact: readonly string[];
  append(executionId: string, lines: string): Promise<void>;
  /** A failed append (the store refused it): the lines are dropped, and this says so. */
  onError(executionId: string, error: unknown): void;
  maxBytes?: number;
  maxDelayMs?: number;
  /** What the write queue may hold before lines are dropped (default 8 MiB). */
  maxQueuedBytes?: number;
}

interface Sink {
  lines: string[];
  bytes: number;
  timer?: NodeJS.Timeout;
  /** Lines dropped because the queue was full, said in the log with the next chunk that fits. */
  dropped: number;
}

/**
 * One chunk of an execution at a time, in order; the chunks of different executions go
 * together (on SQLite, in one commit), so an execution's end never waits for another's
 * log. Bounded by bytes over all of them.
 */
function createWriteQueue(options: ExecutionLogsOptions, maxQueuedBytes: number) {
  const tails = new Map<string, Promise<void>>();
  let queued = 0;
  const write = async (id: string, text: string) => {
    try {
      await options.append(id, text);
    } catch (error) {
      options.onError(id, error);
    } finally {
      queued -= text.length;
    }
  };
  return {
    /** False when the chunk does not fit: the caller drops it. */
    offer(id: string, text: string, force = false): boolean {
      if (!force && queued > 0 && queued + text.length > maxQueuedBytes) return false;
      queued += text.length;
      const tail = (tails.get(id) ?? Promise.resolve()).then(() => write(id, text));
      tails.set(id, tail);
      void tail.then(() => {
        if (tails.get(id) === tail) tails.delete(id);
      });
      return true;
    },
    /** Resolves when the chunks handed over so far (of one execution, or of all) are written. */
    settled: (id?: string): Promise<void> => (id === undefined ? Promise.all(tails.values()).then(() => undefined) : (tails.get(id) ?? Promise.resolve())),
    bytes: () => queued,
  };
}

function droppedLine(id: string, dropped: number): string {
  return JSON.stringify({ level: 40, time: Date.now(), execution: id, msg: `${dropped} log line(s) were dropped: the store fell behind the execution's logging` }) + '\n';
}

export function createExecutionLogs(options: ExecutionLogsOptions): ExecutionLogs {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const maxDelayMs = options.maxDelayMs ?? 1000;
  const queue = createWriteQueue(options, options.maxQueuedBytes ?? 8 * 1024 * 1024);
  const sinks = new Map<string, Sink>();

  /** Hands the gathered lines to the queue; at the end, a count of dropped lines goes in even when the queue is full (one short line). */
  const flush = (id: string, last = false) => {
    const sink = sinks.get(id);
    if (!sink) return;
    if (sink.timer) clearTimeout(sink.timer);
    sink.timer = undefined;
    if (sink.lines.length === 0 && !(last && sink.dropped > 0)) return;
    const count = sink.lines.length;
    const text = (sink.dropped > 0 ? droppedLine(id, sink.dropped) : '') + sink.lines.join('');
    sink.lines = [];
    sink.bytes = 0;
    if (queue.offer(id, text)) sink.dropped = 0;
    else sink.dropped += count;
    if (last && sink.dropped > 0) queue.offer(id, droppedLine(id, sink.dropped), true);
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
      sinks.set(executionId, { lines: [], bytes: 0, dropped: 0 });
      return {
        log: root.child({ execution: executionId, ...bindings }),
        end() {
          flush(executionId, true);
          sinks.delete(executionId);
          return queue.settled(executionId);
        },
      };
    },
    drain: () => queue.settled(),
    queuedBytes: () => queue.bytes(),
  };
}
