import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  type _Object,
} from '@aws-sdk/client-s3';
import { result, type InputDocument, type OperationContext, type OperationResult, type OutputDocument } from 'quark/sdk';
import { endpointOf, proxyUrl } from './client.js';
import { createClientCache } from './clients.js';
import { classify, proxyProblem } from './errors.js';
import { uploadHeaders } from './metadata.js';
import { MiB, uploadMultipart } from './multipart.js';
import type { S3Config } from './config.js';

const clients = createClientCache();

type Context<P> = OperationContext<S3Config, P>;

function keyOf(parameters: { key?: string }, document: InputDocument): string | undefined {
  return parameters.key ?? document.properties['s3.key'];
}

function properties(config: S3Config, values: Record<string, string | number | Date | undefined>): Record<string, string> {
  const out: Record<string, string> = { 's3.bucket': config.bucket };
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue;
    out[`s3.${name}`] = value instanceof Date ? value.toISOString() : String(value);
  }
  return out;
}

const unquote = (etag: string | undefined) => etag?.replace(/^"|"$/g, '');

/** S3 refusals about this document are application errors; anything else is a failure. */
function refusal(error: unknown, context: Context<unknown>, what: string, key?: string): OperationResult {
  // a runtime with a proxy sends every request through it: an unreachable peer is the proxy
  const failure = classify(error, { viaProxy: context.runtime.proxy !== undefined, signal: context.signal });
  const about = key !== undefined ? ` (key "${key}")` : '';
  const { config } = context;
  const proxyWords = proxyProblem(failure, { proxy: proxyUrl(context.runtime), endpoint: endpointOf(config), credentials: Boolean(config.proxyUser) });
  if (proxyWords !== undefined) return result.failure(`${what}: ${proxyWords}${about}`, { code: failure.code });
  switch (failure.kind) {
    case 'not-found':
      return result.applicationError(`${what}: no such ${failure.code === 'NoSuchBucket' ? 'bucket' : 'object'}${about}`, { code: failure.code === 'NotFound' ? 'NoSuchKey' : failure.code });
    case 'access-denied':
      return result.applicationError(`${what}: access denied${about}`, { code: 'AccessDenied' });
    case 'wrong-region':
      return result.applicationError(`${what}: the bucket is in another region${failure.region ? ` (${failure.region})` : ''}`, { code: 'WrongRegion' });
    default:
      if (failure.status !== undefined && failure.status >= 400 && failure.status < 500 && failure.kind === 'other') {
        return result.applicationError(`${what}: ${failure.code}: ${failure.detail}${about}`, { code: failure.code });
      }
      return result.failure(`${what}: ${failure.code}: ${failure.detail}${about}`, { code: failure.code });
  }
}

export async function get(context: Context<{ key?: string }>, document: InputDocument): Promise<OperationResult> {
  const { config, parameters, signal } = context;
  const key = keyOf(parameters, document);
  if (key === undefined) return result.applicationError('no key: set the "key" parameter or the s3.key document property', { code: 'MissingKey' });
  const client = clients.get(config, context.runtime);
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: config.bucket, Key: key }), { abortSignal: signal });
    const size = response.ContentLength ?? 0;
    // the runtime streams the body to its work directory and reports the progress itself
    const body = response.Body as Readable;
    const out: OutputDocument = {
      size,
      properties: properties(config, { key, etag: unquote(response.ETag), size, versionId: response.VersionId, contentType: response.ContentType, lastModified: response.LastModified }),
      body,
    };
    for (const [name, value] of Object.entries(response.Metadata ?? {})) out.properties![`s3.meta.${name}`] = value;
    return result.success(out);
  } catch (error) {
    return refusal(error, context, `Get ${key}`, key);
  }
}

interface QueryParameters {
  prefix?: string;
  delimiter?: string;
  startAfter?: string;
  output?: 'documents' | 'summary';
  pageSize?: number;
}

export async function query(context: Context<QueryParameters>, _document: InputDocument): Promise<OperationResult> {
  const { config, parameters, signal } = context;
  const client = clients.get(config, context.runtime);
  const objects: _Object[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: config.bucket,
          Prefix: parameters.prefix || undefined,
          Delimiter: parameters.delimiter,
          StartAfter: token ? undefined : parameters.startAfter,
          ContinuationToken: token,
          MaxKeys: parameters.pageSize ?? 1000,
        }),
        { abortSignal: signal },
      );
      objects.push(...(page.Contents ?? []));
      prefixes.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!).filter(Boolean));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (error) {
    return refusal(error, context, `Query ${parameters.prefix ?? ''}`);
  }
  const describe = (o: _Object) => ({ key: o.Key!, size: o.Size ?? 0, etag: unquote(o.ETag), lastModified: o.LastModified?.toISOString(), storageClass: o.StorageClass });
  if (parameters.output === 'summary') {
    const totalBytes = objects.reduce((sum, o) => sum + (o.Size ?? 0), 0);
    return result.success({
      properties: properties(config, { prefix: parameters.prefix ?? '', count: objects.length, totalBytes }),
      body: JSON.stringify({ bucket: config.bucket, prefix: parameters.prefix ?? '', count: objects.length, totalBytes, commonPrefixes: prefixes }),
    });
  }
  return result.documents(
    objects.map((o) => {
      const d = describe(o);
      return { properties: properties(config, d), body: JSON.stringify(d) };
    }),
  );
}

interface PutParameters {
  key?: string;
  keyPrefix?: string;
  contentType?: string;
  metadata?: Record<string, string>;
  concurrency?: number;
  partSizeMb?: number;
}

async function exists(client: S3Client, config: S3Config, key: string, signal: AbortSignal): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: config.bucket, Key: key }), { abortSignal: signal });
    return true;
  } catch (error) {
    if (classify(error, { viaProxy: false, signal }).kind === 'not-found') return false;
    throw error;
  }
}

function put(overwrite: boolean) {
  return async function (context: Context<PutParameters>, document: InputDocument): Promise<OperationResult> {
    const { config, parameters, signal } = context;
    const key = keyOf(parameters, document) ?? `${parameters.keyPrefix ?? ''}${randomUUID()}`;
    const what = `${overwrite ? 'Upsert' : 'Create'} ${key}`;
    const headers = uploadHeaders(parameters, document);
    if ('problem' in headers) return result.applicationError(`${what}: ${headers.problem}`, { code: headers.code });
    const { contentType, metadata } = headers;
    const client = clients.get(config, context.runtime);
    const size = document.body.size;
    try {
      if (!overwrite && (await exists(client, config, key, signal))) {
        return result.applicationError(`${what}: an object with this key already exists; Create does not overwrite (use Upsert)`, { code: 'ObjectExists' });
      }
      const threshold = (config.multipartThresholdMb ?? 100) * MiB;
      // If-None-Match (on PutObject, or on completing a multipart upload) makes Create atomic
      // on stores that honour it (AWS, Ceph RGW): of two concurrent Creates of one key, one
      // gets 412. The HeadObject above covers the rest.
      let etag: string | undefined;
      let versionId: string | undefined;
      let multipart = false;
      if (size < threshold) {
        const body = size <= 8 * MiB ? await document.body.buffer() : document.body.stream();
        const response = await client.send(
          new PutObjectCommand({ Bucket: config.bucket, Key: key, ContentType: contentType, Metadata: metadata, ...(overwrite ? {} : { IfNoneMatch: '*' }), Body: body, ContentLength: size }),
          { abortSignal: signal },
        );
        context.progress(size, size);
        etag = response.ETag;
        versionId = response.VersionId;
      } else {
        multipart = true;
        ({ etag, versionId } = await uploadMultipart({
          client,
          bucket: config.bucket,
          key,
          body: document.body,
          contentType,
          metadata,
          ifNoneMatch: !overwrite,
          concurrency: parameters.concurrency ?? 4,
          ...(parameters.partSizeMb !== undefined ? { partSize: parameters.partSizeMb * MiB } : {}),
          signal,
          onProgress: (bytesDone) => context.progress(bytesDone, size),
        }));
      }
      return result.success({ properties: properties(config, { key, etag: unquote(etag), size, versionId, contentType, multipart: String(multipart) }) });
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (!overwrite && status === 412) {
        return result.applicationError(`${what}: an object with this key was created meanwhile; Create does not overwrite (use Upsert)`, { code: 'ObjectExists' });
      }
      return refusal(error, context, what, key);
    }
  };
}

export const create = put(false);
export const upsert = put(true);

export async function remove(context: Context<{ key?: string; keysInBody?: boolean }>, document: InputDocument): Promise<OperationResult> {
  const { config, parameters, signal } = context;
  const client = clients.get(config, context.runtime);
  if (!parameters.keysInBody) {
    const key = keyOf(parameters, document);
    if (key === undefined) return result.applicationError('no key: set the "key" parameter or the s3.key document property, or keysInBody', { code: 'MissingKey' });
    try {
      // a missing key is not an error: S3 answers 204 either way
      const response = await client.send(new DeleteObjectCommand({ Bucket: config.bucket, Key: key }), { abortSignal: signal });
      return result.success({ properties: properties(config, { key, versionId: response.VersionId, deleted: 1 }) });
    } catch (error) {
      return refusal(error, context, `Delete ${key}`, key);
    }
  }
  const keys = (await document.body.text()).split('\n').map((k) => k.trim()).filter(Boolean);
  let deleted = 0;
  const refused: string[] = [];
  const codes = new Set<string>();
  try {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const response = await client.send(new DeleteObjectsCommand({ Bucket: config.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }), { abortSignal: signal });
      const errors = (response.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      refused.push(...errors.map((e) => `${e.Key} (${e.Code})`));
      for (const e of errors) codes.add(e.Code ?? 'Error');
      deleted += batch.length - errors.length;
    }
  } catch (error) {
    return refusal(error, context, `Delete ${keys.length} keys`);
  }
  if (refused.length > 0) {
    return result.applicationError(`Delete: ${refused.length} of ${keys.length} keys were refused: ${refused.slice(0, 10).join(', ')}${refused.length > 10 ? ', …' : ''}`, { code: codes.size === 1 ? [...codes][0]! : 'DeleteRefused', properties: { 's3.deleted': String(deleted) } });
  }
  return result.success({ properties: properties(config, { deleted }) });
}
