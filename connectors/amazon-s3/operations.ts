import { randomUUID } from 'node:crypto';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
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
import { defaultPartSize, MiB, uploadMultipart, type MultipartRequest } from './multipart.js';
import { download } from './download.js';
import { copyObject, defaultCopyPartSize, maxCopyBytes } from './copy.js';
import { claimKey } from './claims.js';
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

interface GetParameters {
  key?: string;
  concurrency?: number;
  partSizeMb?: number;
}

export async function get(context: Context<GetParameters>, document: InputDocument): Promise<OperationResult> {
  const { config, parameters, signal } = context;
  const key = keyOf(parameters, document);
  if (key === undefined) return result.applicationError('no key: set the "key" parameter or the s3.key document property', { code: 'MissingKey' });
  const client = clients.get(config, context.runtime);
  try {
    const { head, size, body } = await download({
      client,
      bucket: config.bucket,
      key,
      partSize: (parameters.partSizeMb ?? defaultPartSize / MiB) * MiB,
      concurrency: parameters.concurrency ?? 4,
      positional: true,
      signal,
    });
    // the runtime streams the body to its work directory and reports the progress itself
    const out: OutputDocument = {
      size,
      properties: properties(config, { key, etag: unquote(head.ETag), size, versionId: head.VersionId, contentType: head.ContentType, lastModified: head.LastModified }),
      body,
    };
    for (const [name, value] of Object.entries(head.Metadata ?? {})) out.properties![`s3.meta.${name}`] = value;
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

type Upload = { etag?: string; versionId?: string };
const taken = Symbol('taken');

/**
 * A multipart Create. Against AWS (no endpoint) the completion's If-None-Match: * makes it
 * exactly-once. Compatible stores may ignore that header on the completion (Ceph RGW does),
 * so there the key is claimed first with a placeholder (claims.ts); `taken` when it is.
 */
async function createMultipart(request: MultipartRequest, config: S3Config, signal: AbortSignal): Promise<Upload | typeof taken> {
  if (!config.endpoint) return uploadMultipart({ ...request, ifNoneMatch: true });
  const claim = await claimKey(request.client, request.bucket, request.key, request.resources, signal);
  if (!claim) return taken;
  let uploaded: Upload;
  try {
    uploaded = await uploadMultipart({ ...request, ifNoneMatch: false });
  } catch (error) {
    await claim.abandon().catch((cause: unknown) => request.log.warn('the placeholder of a failed Create could not be removed; the runtime will remove it later', { key: request.key, error: (cause as Error).message }));
    throw error;
  }
  // the object is there: a record that cannot be removed only costs recovery a HeadObject
  await claim.completed().catch((cause: unknown) => request.log.warn('the record of a completed Create\'s placeholder could not be removed', { key: request.key, error: (cause as Error).message }));
  return uploaded;
}

/** A resource the runtime could not record (context.resources.hold): the document failed, nothing was left behind. */
function resourceRefusal(error: unknown, what: string): OperationResult | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('QUARK_ERR_RESOURCE_')) return undefined;
  return result.failure(`${what}: ${(error as Error).message}`, { code });
}

/** What one Create or Upsert writes, worked out from the parameters and the document. */
interface PutPlan {
  client: S3Client;
  key: string;
  contentType: string;
  metadata: Record<string, string>;
  overwrite: boolean;
  what: string;
}

/** The plan, or the application error of a content type or metadata S3 cannot take. */
function planPut(context: Context<PutParameters>, document: InputDocument, overwrite: boolean): PutPlan | OperationResult {
  const { parameters } = context;
  const key = keyOf(parameters, document) ?? `${parameters.keyPrefix ?? ''}${randomUUID()}`;
  const what = `${overwrite ? 'Upsert' : 'Create'} ${key}`;
  const headers = uploadHeaders(parameters, document);
  if ('problem' in headers) return result.applicationError(`${what}: ${headers.problem}`, { code: headers.code });
  return { client: clients.get(context.config, context.runtime), key, contentType: headers.contentType, metadata: headers.metadata, overwrite, what };
}

/** One PutObject; a Create sends If-None-Match: *, which AWS and Ceph RGW honour: of two Creates of one key, one gets 412. */
async function putWhole(context: Context<PutParameters>, document: InputDocument, plan: PutPlan): Promise<Upload> {
  const size = document.body.size;
  const body = size <= 8 * MiB ? await document.body.buffer() : document.body.stream();
  const response = await plan.client.send(
    new PutObjectCommand({ Bucket: context.config.bucket, Key: plan.key, ContentType: plan.contentType, Metadata: plan.metadata, ...(plan.overwrite ? {} : { IfNoneMatch: '*' }), Body: body, ContentLength: size }),
    { abortSignal: context.signal },
  );
  context.progress(size, size);
  return { etag: response.ETag, versionId: response.VersionId };
}

async function putInParts(context: Context<PutParameters>, document: InputDocument, plan: PutPlan): Promise<Upload | typeof taken> {
  const { config, parameters, signal } = context;
  const request: MultipartRequest = {
    client: plan.client,
    bucket: config.bucket,
    key: plan.key,
    body: document.body,
    contentType: plan.contentType,
    metadata: plan.metadata,
    ifNoneMatch: false,
    concurrency: parameters.concurrency ?? 4,
    ...(parameters.partSizeMb !== undefined ? { partSize: parameters.partSizeMb * MiB } : {}),
    signal,
    onProgress: (bytesDone) => context.progress(bytesDone, document.body.size),
    resources: context.resources,
    log: context.log,
  };
  return plan.overwrite ? uploadMultipart(request) : createMultipart(request, config, signal);
}

function put(overwrite: boolean) {
  return async function (context: Context<PutParameters>, document: InputDocument): Promise<OperationResult> {
    const { config, signal } = context;
    const plan = planPut(context, document, overwrite);
    if ('status' in plan) return plan;
    const { key, what } = plan;
    const size = document.body.size;
    const createdMeanwhile = () => result.applicationError(`${what}: an object with this key was created meanwhile; Create does not overwrite (use Upsert)`, { code: 'ObjectExists' });
    try {
      // the existence check covers stores that ignore If-None-Match (s3rver)
      if (!overwrite && (await exists(plan.client, config, key, signal))) {
        return result.applicationError(`${what}: an object with this key already exists; Create does not overwrite (use Upsert)`, { code: 'ObjectExists' });
      }
      const multipart = size >= (config.multipartThresholdMb ?? 100) * MiB;
      const uploaded = multipart ? await putInParts(context, document, plan) : await putWhole(context, document, plan);
      if (uploaded === taken) return createdMeanwhile();
      const { etag, versionId } = uploaded;
      return result.success({ properties: properties(config, { key, etag: unquote(etag), size, versionId, contentType: plan.contentType, multipart: String(multipart) }) });
    } catch (error) {
      const unrecorded = resourceRefusal(error, what);
      if (unrecorded) return unrecorded;
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (!overwrite && status === 412) return createdMeanwhile();
      return refusal(error, context, what, key);
    }
  };
}

export const create = put(false);
export const upsert = put(true);

interface CopyParameters {
  sourceKey?: string;
  sourceBucket?: string;
  key?: string;
  multipartThresholdMb?: number;
  partSizeMb?: number;
  concurrency?: number;
}

/** Copy: the store copies the object (connectors/amazon-s3/copy.ts); nothing passes through the runtime. */
export async function copy(context: Context<CopyParameters>, document: InputDocument): Promise<OperationResult> {
  const { config, parameters, signal } = context;
  const sourceKey = parameters.sourceKey ?? document.properties['s3.key'];
  if (sourceKey === undefined) return result.applicationError('no source key: set the "sourceKey" parameter or the s3.key document property', { code: 'MissingKey' });
  if (parameters.key === undefined) return result.applicationError(`Copy ${sourceKey}: no target key: set the "key" parameter`, { code: 'MissingKey' });
  const source = { bucket: parameters.sourceBucket ?? config.bucket, key: sourceKey };
  const target = { bucket: config.bucket, key: parameters.key };
  const what = `Copy ${source.bucket === target.bucket ? '' : `${source.bucket}/`}${sourceKey} to ${target.key}`;
  try {
    const copied = await copyObject({
      client: clients.get(config, context.runtime),
      source,
      target,
      threshold: (parameters.multipartThresholdMb ?? maxCopyBytes / MiB) * MiB,
      partSize: (parameters.partSizeMb ?? defaultCopyPartSize / MiB) * MiB,
      concurrency: parameters.concurrency ?? 4,
      compatible: config.endpoint !== undefined,
      signal,
      onProgress: (bytesDone, bytesTotal) => context.progress(bytesDone, bytesTotal),
      resources: context.resources,
      log: context.log,
    });
    return result.success({
      properties: properties(config, { key: target.key, sourceKey, ...(source.bucket === target.bucket ? {} : { sourceBucket: source.bucket }), etag: unquote(copied.etag), size: copied.size, versionId: copied.versionId, contentType: copied.contentType, multipart: String(copied.multipart) }),
    });
  } catch (error) {
    const unrecorded = resourceRefusal(error, what);
    if (unrecorded) return unrecorded;
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 412) return result.failure(`${what}: ObjectChanged: the source changed while it was copied; run it again`, { code: 'ObjectChanged' });
    return refusal(error, context, what, sourceKey);
  }
}

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
