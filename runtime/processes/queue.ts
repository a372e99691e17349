/**
 * The execution queue: the seam between "start" and "run" (as piscina's TaskQueue or
 * undici's Dispatcher are). `start` enqueues an execution that has to wait, durably: its
 * record and its input documents are committed before the caller gets an answer; the
 * runner takes the next one when a slot frees up, and releases its stored inputs once the
 * run holds them. The default implementation below is in-process and backed by the
 * store; a distributed one (several nodes sharing one store) implements the same
 * interface with an atomic claim.
 */
import { mkdir, readFile, rename, rm, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store, ExecutionRecord, ExecutionStatus, QueuedInputRecord } from '../store/types.js';
import type { DocumentRef } from '../engine/messages.js';

/** Bodies up to this size are stored inline with the record; larger ones as files under `<home>/work/queued/<id>/`. */
export const inlineInputBytes = 64 * 1024;

export interface ExecutionQueue {
  /** Records a queued execution with its input documents; resolves once both are committed. */
  enqueue(record: ExecutionRecord, documents: readonly DocumentRef[]): Promise<void>;
  /** Claims the oldest queued execution, or undefined when none waits. */
  take(): Promise<ExecutionRecord | undefined>;
  /** The input documents of a taken execution, as the run reads them (file bodies moved into `workDir`). */
  documents(id: string, workDir: string): Promise<DocumentRef[]>;
  /** The run holds its documents: the stored inputs (and their files) are deleted. */
  release(id: string): Promise<void>;
  /** Takes a queued execution out of the queue before it ran (cancel); false when it was not waiting. */
  withdraw(id: string): boolean | Promise<boolean>;
  /** How many wait (a distributed queue: as last counted in the store, cluster-wide). */
  size(): number;
  /** At start: the executions still queued in the store wait again, oldest first; returns how many. */
  restore(): Promise<number>;
  /**
   * A distributed queue (several nodes share it): every start waits in it, nothing is
   * taken with take(); instead the queue delivers the executions this node claimed to
   * the runner given to attach(), with a signal that aborts when the claim is lost.
   */
  readonly distributed?: boolean;
  /**
   * A distributed queue with a cluster-wide running cap: every run of a deployed process
   * goes through it (a `wait` start too, answered from the store), so the cap counts it.
   */
  readonly capped?: boolean;
  attach?(runner: (id: string, lost: AbortSignal) => Promise<void>): void;
  /** A delivered run ended (its inputs, kept for a retry until then, can go). */
  finished?(id: string): Promise<void>;
  /**
   * At start, a distributed queue accounts for the runs this node left in-process (as a
   * lost node's: retried when the process allows it, else aborted with `code`); what it
   * aborted or queued again. Without it the store's `interrupt` aborts them.
   */
  interrupted?(owner: string, code: string, message: string): Promise<{ id: string; status: ExecutionStatus }[]>;
  /** Shutdown of a distributed queue's node: it stops claiming and says draining; the grace its running executions get. */
  drain?(): Promise<{ graceMs: number }>;
  /** The grace ended with this run still going: accounted for in the store (requeued as its next attempt, or aborted); true when requeued. */
  handBack?(record: ExecutionRecord): Promise<boolean>;
  /** Stops delivering (at shutdown); resolves when the queue's connections are closed. */
  close?(): Promise<void>;
}

/** Where the input files of a queued execution live until it runs. */
export const queuedDir = (workRoot: string, id: string) => join(workRoot, 'queued', id);

/** Documents as stored inputs: small bodies inline (base64), larger ones written (or copied) into the queued folder. */
async function storedInputs(workRoot: string, id: string, documents: readonly DocumentRef[]): Promise<QueuedInputRecord[]> {
  const inputs: QueuedInputRecord[] = [];
  for (const [seq, d] of documents.entries()) {
    const { body } = d;
    if (body.kind === 'inline' && body.bytes.byteLength <= inlineInputBytes) {
      inputs.push({ seq, properties: d.properties, body: { kind: 'inline', base64: Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength).toString('base64') } });
      continue;
    }
    const dir = queuedDir(workRoot, id);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, String(seq));
    if (body.kind === 'inline') await writeFile(path, body.bytes, { mode: 0o600 });
    else await copyFile(body.path, path);
    inputs.push({ seq, properties: d.properties, body: { kind: 'file', path, size: body.kind === 'inline' ? body.bytes.byteLength : body.size } });
  }
  return inputs;
}

/**
 * Documents as stored inputs, every body inline (file bodies read): for a distributed
 * queue, whose executions may run on another node, which cannot read this node's files.
 */
export async function inlineInputs(documents: readonly DocumentRef[]): Promise<QueuedInputRecord[]> {
  const inputs: QueuedInputRecord[] = [];
  for (const [seq, d] of documents.entries()) {
    const { body } = d;
    const bytes = body.kind === 'inline' ? Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength) : await readFile(body.path);
    inputs.push({ seq, properties: d.properties, body: { kind: 'inline', base64: bytes.toString('base64') } });
  }
  return inputs;
}

/** Stored inputs as documents; a file body moves into the execution's work folder (the queued folder goes with release). */
export async function documentsOf(inputs: readonly QueuedInputRecord[], workDir: string): Promise<DocumentRef[]> {
  const documents: DocumentRef[] = [];
  for (const input of inputs) {
    const properties = input.properties as Record<string, string>;
    if (input.body.kind === 'inline') {
      const bytes = Buffer.from(input.body.base64, 'base64');
      documents.push({ properties, body: { kind: 'inline', bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) } });
      continue;
    }
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    const path = join(workDir, `input-${input.seq}`);
    await rename(input.body.path, path);
    documents.push({ properties, body: { kind: 'file', path, size: input.body.size } });
  }
  return documents;
}

/**
 * The in-process queue over the store: the order lives in memory (restored from the store
 * at start), the records and inputs in the store, so a restart finds what waited.
 */
export function createStoreQueue(deps: { store: Store; workRoot: string }): ExecutionQueue {
  const { store, workRoot } = deps;
  // this node is the queue's only taker: the waiting records in memory are the truth (cancel withdraws)
  const waiting: ExecutionRecord[] = [];
  // the ids whose inputs may have files in the queued folder (every restored one may): only
  // their folders are removed at release, so an all-inline execution costs no file system call
  const withFiles = new Set<string>();
  // the ids that stored input rows (every restored one may have): only theirs are deleted at
  // release, so an execution started without documents costs no delete
  const withInputs = new Set<string>();
  return {
    async enqueue(record, documents) {
      const inputs = await storedInputs(workRoot, record.id, documents);
      try {
        await store.executions.insert(record, inputs);
      } catch (error) {
        await rm(queuedDir(workRoot, record.id), { recursive: true, force: true });
        throw error;
      }
      if (inputs.length > 0) withInputs.add(record.id);
      if (inputs.some((input) => input.body.kind === 'file')) withFiles.add(record.id);
      waiting.push(record);
    },
    async take() {
      return waiting.shift();
    },
    async documents(id, workDir) {
      return documentsOf(await store.executions.inputs(id), workDir);
    },
    async release(id) {
      if (withInputs.delete(id)) await store.executions.dropInputs(id);
      if (withFiles.delete(id)) await rm(queuedDir(workRoot, id), { recursive: true, force: true });
    },
    withdraw(id) {
      const at = waiting.findIndex((w) => w.id === id);
      if (at < 0) return false;
      waiting.splice(at, 1);
      return true;
    },
    size: () => waiting.length,
    async restore() {
      const queued = await store.executions.queued(1_000_000);
      waiting.splice(0, waiting.length, ...queued);
      for (const record of queued) {
        withInputs.add(record.id);
        withFiles.add(record.id);
      }
      return queued.length;
    },
  };
}
