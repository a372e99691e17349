/**
 * Large bodies in memory that cross a process boundary (the runtime and its plugin host,
 * isolation "threads" and "process") go through files of the execution's work directory
 * instead of the IPC channel: a message of 50 MB is serialised into one buffer, read back
 * in chunks and deserialised into another, on each side, each way. A crossing file stands
 * for a body in memory (`crossing: true`: not spilled, a map reads it): the receiver reads
 * it back into one buffer of its own and removes the file. A task that carries crossing
 * bodies says so (StepsTask.crossAbove), and the worker sends its large outputs back the same way.
 */
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { BodyRef, DocumentRef } from './messages.js';

/** Bodies in memory at least this large cross in a file. */
export const crossBytes = 1024 * 1024;

const crossesIn = (body: BodyRef, minBytes: number) => body.kind === 'inline' && body.bytes.byteLength >= minBytes;

/** Whether any of the documents has a body in memory that would cross in a file. */
export const anyCrossing = (documents: readonly DocumentRef[], minBytes = crossBytes) => documents.some((d) => crossesIn(d.body, minBytes));

/** The documents with their large in-memory bodies written to new files of workDir (marked crossing). */
export async function toCrossing(documents: readonly DocumentRef[], workDir: string, minBytes = crossBytes): Promise<DocumentRef[]> {
  if (!anyCrossing(documents, minBytes)) return documents as DocumentRef[];
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const out: DocumentRef[] = [];
  for (const d of documents) {
    if (d.body.kind !== 'inline' || !crossesIn(d.body, minBytes)) {
      out.push(d);
      continue;
    }
    const path = join(workDir, `crossing-${randomBytes(8).toString('hex')}`);
    await writeFile(path, d.body.bytes, { flag: 'wx', mode: 0o600 });
    out.push({ ...d, body: { kind: 'file', path, size: d.body.bytes.byteLength, crossing: true } });
  }
  return out;
}

/**
 * Whether a body is a crossing file of the execution's work directory: only those are read
 * in and removed. A ref marked crossing anywhere else (which no part of quark makes) is
 * taken for a spilled body, so that what a plugin host answers cannot make the runtime
 * remove, or read into memory, a file outside the work directory.
 */
const crossingIn = (body: BodyRef, workDir: string): boolean => body.kind === 'file' && body.crossing === true && dirname(resolve(body.path)) === resolve(workDir);

/** A crossing body back in memory (its file removed); any other body as it is. */
export async function bodyFromCrossing(body: BodyRef, workDir: string): Promise<BodyRef> {
  if (body.kind !== 'file' || body.crossing !== true) return body;
  if (!crossingIn(body, workDir)) return { kind: 'file', path: body.path, size: body.size };
  const bytes = await readFile(body.path);
  await unlink(body.path).catch(() => undefined);
  return { kind: 'inline', bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/** Removes the crossing files of documents nobody reads (their removal is not waited for; the work directory goes at the end anyway). */
export function dropCrossing(documents: readonly DocumentRef[], workDir: string): void {
  for (const d of documents) if (d.body.kind === 'file' && crossingIn(d.body, workDir)) void unlink(d.body.path).catch(() => undefined);
}

/** The documents with their crossing bodies (files of workDir) back in memory. */
export async function fromCrossing(documents: readonly DocumentRef[], workDir: string): Promise<DocumentRef[]> {
  if (!documents.some((d) => d.body.kind === 'file' && d.body.crossing === true)) return documents as DocumentRef[];
  const out: DocumentRef[] = [];
  for (const d of documents) out.push(d.body.kind === 'file' && d.body.crossing === true ? { ...d, body: await bodyFromCrossing(d.body, workDir) } : d);
  return out;
}
