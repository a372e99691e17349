/**
 * The streamed answer of `POST /api/v1/executions` with `Accept: application/x-ndjson`:
 * one JSON object per line, written as the execution makes its output documents.
 *
 *   {"type":"execution","execution":ExecutionView}       the execution as it starts
 *   {"type":"document","document":n,"properties":{…},"size":…,"encoding":"base64","body":"…"}
 *   {"type":"document","document":n,…,"parts":k} then k × {"type":"part","document":n,"part":i,"body":"…"}
 *                                                          (a body over partBytes, in pieces)
 *   {"type":"end","execution":ExecutionView,"documents":{"streamed":…,"dropped":…},"notStreamed"?:"…"}
 *   {"type":"error","error":{code,message}}               only if the answer cannot go on
 *
 * Every write waits for the socket to drain when its buffer is full, so the writer takes
 * the next document only as fast as the client reads (the stream in turn holds the
 * execution back). A client that goes away abandons the stream: the execution goes on.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QuarkError, quarkError, messageOf } from '../core/errors.js';
import type { ExecutionView, OutputStream, StreamedDocument } from '../index.js';

export const ndjson = 'application/x-ndjson';

/** The most body bytes one line carries (a multiple of 3, so the parts' base64 texts also join into one). */
export const partBytes = 768 * 1024;

/** Whether the request asks for the streamed answer (its Accept header names NDJSON). */
export function wantsStream(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.split(',').some((range) => range.split(';')[0]!.trim().toLowerCase() === ndjson);
}

/** Lines to one response, each waiting for the socket when its buffer is full; `gone` once the client left. */
class Lines {
  gone = false;
  private readonly closed: Promise<void>;

  constructor(private readonly raw: ServerResponse, onGone: () => void) {
    this.closed = new Promise((resolve) =>
      raw.once('close', () => {
        if (!raw.writableFinished) {
          this.gone = true;
          onGone();
        }
        resolve();
      }),
    );
  }

  async write(value: unknown): Promise<void> {
    if (this.gone) return;
    if (this.raw.write(JSON.stringify(value) + '\n')) return;
    await Promise.race([new Promise((resolve) => this.raw.once('drain', resolve)), this.closed]);
  }

  end(): void {
    if (!this.gone) this.raw.end();
  }
}

/** Up to `length` bytes of a body at `position`: a view of one in memory, a read of a spilled one. */
async function bodyPart(d: StreamedDocument, position: number, length: number): Promise<Buffer> {
  if (d.bytes) return Buffer.from(d.bytes.buffer, d.bytes.byteOffset + position, Math.min(length, d.bytes.byteLength - position));
  const buffer = Buffer.allocUnsafe(length);
  const { bytesRead } = await d.file!.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

async function writeDocument(lines: Lines, n: number, d: StreamedDocument): Promise<void> {
  const head = { type: 'document', document: n, properties: d.properties, size: d.size };
  if (d.bodyOmitted !== undefined) return lines.write({ ...head, bodyOmitted: d.bodyOmitted });
  if (d.size <= partBytes) return lines.write({ ...head, encoding: 'base64', body: (await bodyPart(d, 0, d.size)).toString('base64') });
  const parts = Math.ceil(d.size / partBytes);
  await lines.write({ ...head, encoding: 'base64', parts });
  for (let part = 0; part < parts && !lines.gone; part++) {
    await lines.write({ type: 'part', document: n, part, body: (await bodyPart(d, part * partBytes, partBytes)).toString('base64') });
  }
}

/** Writes each document the stream hands over, one at a time; how many were written. */
async function writeDocuments(lines: Lines, outputs: OutputStream): Promise<number> {
  let n = 0;
  for (;;) {
    const d = await outputs.next();
    if (!d) return n;
    try {
      await writeDocument(lines, n, d);
    } finally {
      await d.file?.close();
    }
    if (lines.gone) return n;
    n++;
  }
}

/** A view with its error messages scrubbed of the execution's secret values. */
function scrubbedView(view: ExecutionView, outputs: OutputStream): ExecutionView {
  const errors = view.errors?.map((e) => ({ ...e, message: outputs.scrub(e.message) }));
  return { ...view, errorMessage: view.errorMessage === null ? null : outputs.scrub(view.errorMessage), ...(errors ? { errors } : {}) };
}

/**
 * Runs `start` (which calls back once the execution's record is written) and answers with
 * the stream. A refusal before that (a bad request, a full queue) is an ordinary error
 * answer: nothing is written until the execution exists.
 */
export async function answerStreamed(reply: FastifyReply, start: (onStart: (started: ExecutionView, outputs: OutputStream) => void) => Promise<ExecutionView>): Promise<void> {
  const raw = reply.raw;
  let lines: Lines | undefined;
  let writing: Promise<number> | undefined;
  let stream: OutputStream | undefined;
  let final: ExecutionView;
  try {
    final = await start((started, outputs) => {
      stream = outputs;
      void reply.hijack();
      raw.writeHead(200, { 'content-type': `${ndjson}; charset=utf-8`, 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
      const opened = new Lines(raw, () => outputs.abandon());
      lines = opened;
      writing = opened.write({ type: 'execution', execution: started }).then(() => writeDocuments(opened, outputs));
    });
  } catch (error) {
    if (!lines) throw error;
    await writing?.catch(() => undefined);
    const quark = error instanceof QuarkError ? error : quarkError('QUARK_ERR_API_INTERNAL', `the streamed answer could not go on: ${messageOf(error)}`);
    await lines.write({ type: 'error', error: quark.toJSON() });
    return lines.end();
  }
  if (!lines || !stream) throw quarkError('QUARK_ERR_API_INTERNAL', 'the execution ended without starting its streamed answer');
  let streamed = 0;
  try {
    streamed = await writing!;
  } catch (error) {
    reply.log.warn({ err: error, execution: final.id }, 'the streamed answer could not write a document; it ends here');
    raw.destroy();
    return;
  }
  const { dropped } = stream.counts;
  await lines.write({ type: 'end', execution: scrubbedView(final, stream), documents: { streamed, dropped }, ...(stream.notStreamed ? { notStreamed: stream.notStreamed } : {}) });
  lines.end();
}
