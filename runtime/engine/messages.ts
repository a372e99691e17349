import type { PlainError } from '../core/errors.js';
import type { RuntimeSettings } from '../sdk/index.js';

/** Messages between the main thread and the plugin worker. Plain data only. */

export interface ProbeTask {
  kind: 'probe';
  /** Absolute path of the plugin module. */
  entry: string;
  operations: string[];
  testConnection: boolean;
}

export interface TestTask {
  kind: 'test';
  entry: string;
  config: Record<string, unknown>;
  runtime: RuntimeSettings;
  /** The cooperative time limit given to the plugin as an AbortSignal. */
  timeoutMs: number;
}

export type WorkerTask = ProbeTask | TestTask;

/** As posted to the worker: the pool adds a port on which the worker signals that it started. */
export type PostedTask = WorkerTask & { started: import('node:worker_threads').MessagePort };

export interface WorkerLogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields?: Record<string, unknown>;
}

export type WorkerReply =
  | { ok: true; value: unknown; logs: WorkerLogRecord[] }
  | { ok: false; error: PlainError; logs: WorkerLogRecord[] };
