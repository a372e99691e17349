import type { PlainError } from '../core/errors.js';
import type { PoolStats } from './pool.js';
import type { TaskLimits, ResourceAnswer, ResourceRequest, WorkerEvent, WorkerReply, WorkerTask } from './messages.js';

/**
 * Messages between the runtime and its plugin host process (host.ts, host-main.ts), over
 * the child's IPC channel with structured-clone serialization. Plain data only.
 */

/** What the host needs to build its pools; passed as its one argument, as JSON. */
export interface HostSettings {
  threads: number;
  heapMb: number;
  limits?: TaskLimits;
}

/** runtime → host */
export type HostCommand =
  | { type: 'run'; id: number; task: WorkerTask; timeoutMs: number; graceMs?: number; what: string; holds: boolean }
  | { type: 'cancel'; id: number }
  | { type: 'resource'; id: number; answer: ResourceAnswer }
  | { type: 'close' };

/** host → runtime */
export type HostReport =
  | { type: 'ready' }
  | { type: 'progress'; id: number; event: Extract<WorkerEvent, { type: 'progress' }> }
  | { type: 'hold'; id: number; request: ResourceRequest }
  | { type: 'done'; id: number; reply: WorkerReply; stats: PoolStats }
  | { type: 'failed'; id: number; error: PlainError; stats: PoolStats }
  | { type: 'log'; fields: object; message: string };
