import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Body, ConnectorLogger, HeldResource, Resources } from 'quark/sdk';

export const MiB = 1024 * 1024;
/** S3's limits: parts of 5 MiB to 5 GiB, at most 10,000 parts, objects up to 5 TiB. */
const minPartSize = 5 * MiB;
const maxParts = 10_000;

/** The default part size: measured faster than 5 or 8 MiB parts at the same memory (bench/RESULTS.md). */
export const defaultPartSize = 16 * MiB;

/** Part size: the preferred one (at least 5 MiB), raised to the smallest whole MiB that fits the object in 10,000 parts. */
export function partSizeFor(size: number, preferred = defaultPartSize): number {
  return Math.max(minPartSize, preferred, Math.ceil(size / maxParts / MiB) * MiB);
}

export interface MultipartRequest {
  client: S3Client;
  bucket: string;
  key: string;
  body: Body;
  contentType: string;
  metadata: Record<string, string>;
  /** Create: completes with If-None-Match: *, so of two uploads of one key only one lands. */
  ifNoneMatch: boolean;
  /** Parts in flight at once; also the number of part buffers. */
  concurrency: number;
  /** The preferred part size in bytes (partSizeFor raises it when needed); 16 MiB when absent. */
  partSize?: number;
  signal: AbortSignal;
  onProgress(bytesDone: number): void;
  /** The upload is held here (kind `multipart-upload`) from its creation until it is completed or confirmed aborted. */
  resources: Resources;
  log: ConnectorLogger;
}

/** The resource kind of an upload held for recovery; its data is a MultipartUploadData. */
export const multipartUploadKind = 'multipart-upload';

export interface MultipartUploadData {
  bucket: string;
  key: string;
  uploadId: string;
}

/** Holds the upload for recovery; if the runtime cannot record it, the upload is aborted at once. */
export async function holdUpload(client: S3Client, request: Pick<MultipartRequest, 'bucket' | 'key' | 'resources'>, uploadId: string): Promise<HeldResource> {
  const data: MultipartUploadData = { bucket: request.bucket, key: request.key, uploadId };
  try {
    return await request.resources.hold({ kind: multipartUploadKind, data: { ...data } });
  } catch (error) {
    await abandon(client, data);
    throw error;
  }
}

/** Removes the record of a completed or aborted upload; a failure leaves it to recovery, which finds the upload gone. */
export async function releaseUpload(held: HeldResource, log: ConnectorLogger): Promise<void> {
  try {
    await held.release();
  } catch (error) {
    log.warn('the record of a finished multipart upload could not be removed; the runtime will find the upload gone', { error: (error as Error).message });
  }
}

/**
 * A multipart upload that reads each part straight from the document body into one of
 * `concurrency` buffers allocated once per upload, and sends it from there. Peak memory is
 * concurrency × part size whatever the object size, and a GiB costs no garbage: the
 * measured difference with lib-storage's Upload, which re-chunks a stream into a fresh
 * Buffer per part and spent a third of its CPU in the garbage collector (bench/RESULTS.md).
 *
 * From CreateMultipartUpload on, any failure or cancel ends with the upload aborted (see
 * abandon): the parts in flight are stopped and awaited first, so none lands afterwards.
 * The upload is held for recovery (request.resources) before its first part, and released
 * once completed or confirmed aborted: an upload the abort could not confirm (the store
 * unreachable past its retries), or one a killed runtime left, is aborted by `recover`.
 */
export async function uploadMultipart(request: MultipartRequest): Promise<{ etag?: string; versionId?: string }> {
  const { client, bucket, key, body, signal } = request;
  const partSize = partSizeFor(body.size, request.partSize);
  const count = Math.ceil(body.size / partSize);
  // checksums as the client is configured: CRC32 per part when it sends them (AWS), none
  // for stores that take only what they require (compatible endpoints)
  const withChecksums = (await client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
  signal.throwIfAborted();
  // no abort signal on the create: a cancel during it must not lose the upload's id
  const created = await client.send(
    new CreateMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      ContentType: request.contentType,
      Metadata: request.metadata,
      ...(withChecksums ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
    }),
  );
  const uploadId = created.UploadId!;
  const held = await holdUpload(client, request, uploadId);
  let bytesDone = 0;
  return runParts({
    client,
    upload: { bucket, key, uploadId },
    held,
    count,
    concurrency: request.concurrency,
    signal,
    log: request.log,
    what: 'upload',
    lane() {
      const buffer = Buffer.allocUnsafeSlow(Math.min(partSize, body.size));
      return async (index, stop) => {
        const position = index * partSize;
        const length = Math.min(partSize, body.size - position);
        const part = buffer.subarray(0, length);
        const read = await body.read(part, position);
        if (read !== length) throw new Error(`the document body ended at byte ${position + read}, before its stated size of ${body.size}`);
        if (stop.aborted) return undefined;
        const response = await client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: index + 1,
            Body: part,
            ContentLength: length,
            ...(withChecksums ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
          }),
          { abortSignal: stop },
        );
        bytesDone += length;
        request.onProgress(bytesDone);
        return { PartNumber: index + 1, ETag: response.ETag, ...(response.ChecksumCRC32 ? { ChecksumCRC32: response.ChecksumCRC32 } : {}) };
      };
    },
    complete: (parts) =>
      client.send(
        new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...(request.ifNoneMatch ? { IfNoneMatch: '*' } : {}) }),
        { abortSignal: signal },
      ),
  });
}

/** One part of a multipart upload or copy: its completed entry, or undefined when it stopped before sending. */
export type PartSender = (index: number, stop: AbortSignal) => Promise<CompletedPart | undefined>;

export interface PartsRun {
  client: S3Client;
  upload: MultipartUploadData;
  /** The upload's record for recovery (holdUpload). */
  held: HeldResource;
  count: number;
  concurrency: number;
  signal: AbortSignal;
  log: ConnectorLogger;
  /** Named in the warning when the abort cannot be confirmed. */
  what: 'upload' | 'copy';
  /** Makes one lane's part sender (a lane may allocate what it reuses for its parts). */
  lane(): PartSender;
  /** Completes the upload from its parts, in order. */
  complete(parts: CompletedPart[]): Promise<{ ETag?: string; VersionId?: string }>;
}

/**
 * The parts of a created and held multipart upload, `concurrency` lanes at once, each
 * taking the next part number. The first failure is the cause: it stops the other lanes
 * (their requests are aborted), and once every lane has settled the upload is aborted
 * until gone (abandon), so no part lands afterwards, and its record released; a cancel
 * of `signal` does the same. Else the upload is completed and its record released.
 */
export async function runParts(run: PartsRun): Promise<{ etag?: string; versionId?: string }> {
  const { client, upload, held, count, signal, log } = run;
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const parts = new Array<CompletedPart>(count);
  let next = 0;
  let firstFailure: { error: unknown } | undefined;

  async function lane(send: PartSender): Promise<void> {
    while (next < count && !stop.signal.aborted) {
      const index = next++;
      const part = await send(index, stop.signal);
      if (part) parts[index] = part;
    }
  }

  try {
    await Promise.all(
      Array.from({ length: Math.min(run.concurrency, count) }, () =>
        lane(run.lane()).catch((error: unknown) => {
          // the first failure is the cause; the others are the lanes it stopped
          firstFailure ??= { error };
          stop.abort(error);
        }),
      ),
    );
    if (firstFailure) throw firstFailure.error;
    signal.throwIfAborted();
    const completed = await run.complete(parts);
    await releaseUpload(held, log);
    // Ceph RGW answers with an empty ETag: it is S3's multipart ETag, derived from the parts'
    return { etag: completed.ETag || multipartEtag(parts), versionId: completed.VersionId };
  } catch (error) {
    if (await abandon(client, upload)) await releaseUpload(held, log);
    else log.warn(`the multipart ${run.what} could not be aborted; the runtime will abort it later`, { bucket: upload.bucket, key: upload.key });
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** S3's ETag of a multipart object: the MD5 of the parts' MD5s, a dash, the part count. */
export function multipartEtag(parts: CompletedPart[]): string | undefined {
  const md5s = parts.map((p) => p.ETag?.replace(/"/g, '') ?? '');
  if (!md5s.every((m) => /^[0-9a-f]{32}$/.test(m))) return undefined;
  return `"${createHash('md5').update(Buffer.from(md5s.join(''), 'hex')).digest('hex')}-${parts.length}"`;
}

const statusOf = (error: unknown) => (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/**
 * Aborts a multipart upload until S3 says it is gone: a part that was in flight during
 * the first abort may still land, so abort again until ListParts answers 404 (AWS says
 * NoSuchUpload, Ceph RGW NoSuchKey) or an abort answers NoSuchUpload. Resolves to whether
 * it is gone; false after 10 tries (about 11 s) without that answer (the store
 * unreachable, the keys refused). Also ends the upload of a completed one (NoSuchUpload).
 * A store without multipart cleanup (s3rver answers 405 or 501) counts as gone: there is
 * nothing more anyone can do.
 */
export async function abandon(client: S3Client, upload: MultipartUploadData, signal?: AbortSignal): Promise<boolean> {
  const { bucket: Bucket, key: Key, uploadId: UploadId } = upload;
  for (let attempt = 0; attempt < 10 && !signal?.aborted; attempt++) {
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), { abortSignal: signal });
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchUpload') return true;
    }
    try {
      await client.send(new ListPartsCommand({ Bucket, Key, UploadId }), { abortSignal: signal });
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 || status === 405 || status === 501) return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)));
  }
  return false;
}
