/**
 * Copy inside one store, done by the store: CopyObject up to the threshold (S3 copies at
 * most 5 GiB in one request), above it a multipart upload whose parts are UploadPartCopy
 * ranges of the source, `concurrency` at once, held for recovery like an upload's. Every
 * request is pinned to the source's ETag as HeadObject saw it (`x-amz-copy-source-if-match`),
 * so a source replaced meanwhile fails the copy (412) instead of mixing two versions.
 */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ConnectorLogger, Resources } from 'quark/sdk';
import { holdUpload, MiB, partSizeFor, runParts } from './multipart.js';

/** S3's largest CopyObject, and its largest part. */
export const maxCopyBytes = 5 * 1024 * MiB;
/** The default part of a multipart copy: few requests, each a server-side copy. */
export const defaultCopyPartSize = 512 * MiB;

export interface CopyRequest {
  client: S3Client;
  source: { bucket: string; key: string };
  target: { bucket: string; key: string };
  /** Objects above this many bytes are copied in parts (at most maxCopyBytes). */
  threshold: number;
  /** The preferred part size in bytes (raised to fit 10,000 parts, at most 5 GiB). */
  partSize: number;
  concurrency: number;
  /** A compatible endpoint (not AWS): the CopyObject precondition is sent as RGW reads it too. */
  compatible: boolean;
  signal: AbortSignal;
  onProgress(bytesDone: number, bytesTotal: number): void;
  resources: Resources;
  log: ConnectorLogger;
}

export interface Copied {
  size: number;
  etag?: string;
  versionId?: string;
  contentType?: string;
  multipart: boolean;
}

/** The x-amz-copy-source header: bucket and key, the key's segments URL-encoded. */
export function copySource(bucket: string, key: string, versionId?: string): string {
  const path = `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  return versionId ? `${path}?versionId=${encodeURIComponent(versionId)}` : path;
}

/**
 * Ceph RGW reads the precondition of a CopyObject from `x-amz-copy-if-match` (the name in
 * S3's early documentation) and ignores `x-amz-copy-source-if-match`; measured on RGW 16.
 * Sent to compatible endpoints only: AWS signs every x-amz- header it is sent.
 */
function alsoAsRgwReadsIt(command: CopyObjectCommand, etag: string): void {
  command.middlewareStack.add(
    (next) => (args) => {
      (args.request as { headers: Record<string, string> }).headers['x-amz-copy-if-match'] = etag;
      return next(args);
    },
    { step: 'build', name: 'quarkCopyIfMatch' },
  );
}

/**
 * Whether the source still has the ETag the copy is pinned to: UploadPartCopy on Ceph RGW
 * ignores every copy precondition, so before the completion the source is asked again, and
 * a changed one fails the copy (as a 412 would) before anything lands at the target.
 */
async function checkUnchanged(client: S3Client, source: { bucket: string; key: string }, etag: string | undefined, signal: AbortSignal): Promise<void> {
  if (!etag) return;
  const now = await client.send(new HeadObjectCommand({ Bucket: source.bucket, Key: source.key }), { abortSignal: signal });
  if (now.ETag !== etag) {
    throw Object.assign(new Error(`the source's ETag is now ${now.ETag}, was ${etag}`), { name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
  }
}

/** Copies the source to the target; rejects with the store's error (412 when the source changed). */
export async function copyObject(request: CopyRequest): Promise<Copied> {
  const { client, source, target, signal } = request;
  const head = await client.send(new HeadObjectCommand({ Bucket: source.bucket, Key: source.key }), { abortSignal: signal });
  const size = head.ContentLength ?? 0;
  const from = copySource(source.bucket, source.key, head.VersionId);
  const pinned = head.ETag ? { CopySourceIfMatch: head.ETag } : {};
  if (size <= Math.min(request.threshold, maxCopyBytes)) {
    const command = new CopyObjectCommand({ Bucket: target.bucket, Key: target.key, CopySource: from, MetadataDirective: 'COPY', ...pinned });
    if (request.compatible && head.ETag) alsoAsRgwReadsIt(command, head.ETag);
    const copied = await client.send(command, { abortSignal: signal });
    request.onProgress(size, size);
    return { size, etag: copied.CopyObjectResult?.ETag, versionId: copied.VersionId, contentType: head.ContentType, multipart: false };
  }
  const done = await copyInParts(request, { size, from, pinned, contentType: head.ContentType, metadata: head.Metadata ?? {} });
  return { size, ...done, contentType: head.ContentType, multipart: true };
}

interface Source {
  size: number;
  from: string;
  pinned: { CopySourceIfMatch?: string };
  contentType: string | undefined;
  metadata: Record<string, string>;
}

/**
 * The multipart copy: created, held for recovery, parts copied `concurrency` at once; the
 * first failure stops the others and the upload is aborted once they have settled.
 */
async function copyInParts(request: CopyRequest, source: Source): Promise<{ etag?: string; versionId?: string }> {
  const { client, target, signal } = request;
  const partSize = Math.min(maxCopyBytes, partSizeFor(source.size, request.partSize));
  const count = Math.ceil(source.size / partSize);
  signal.throwIfAborted();
  // no abort signal on the create: a cancel during it must not lose the upload's id
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: target.bucket, Key: target.key, ContentType: source.contentType, Metadata: source.metadata }));
  const uploadId = created.UploadId!;
  const held = await holdUpload(client, { ...target, resources: request.resources }, uploadId);
  let bytesDone = 0;
  return runParts({
    client,
    upload: { bucket: target.bucket, key: target.key, uploadId },
    held,
    count,
    concurrency: request.concurrency,
    signal,
    log: request.log,
    what: 'copy',
    lane: () => async (index, stop) => {
      const start = index * partSize;
      const end = Math.min(source.size, start + partSize) - 1;
      const response = await client.send(
        new UploadPartCopyCommand({ Bucket: target.bucket, Key: target.key, UploadId: uploadId, PartNumber: index + 1, CopySource: source.from, CopySourceRange: `bytes=${start}-${end}`, ...source.pinned }),
        { abortSignal: stop },
      );
      bytesDone += end - start + 1;
      request.onProgress(bytesDone, source.size);
      return { PartNumber: index + 1, ETag: response.CopyPartResult?.ETag };
    },
    async complete(parts) {
      await checkUnchanged(client, request.source, source.pinned.CopySourceIfMatch, signal);
      return client.send(new CompleteMultipartUploadCommand({ Bucket: target.bucket, Key: target.key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal });
    },
  });
}
