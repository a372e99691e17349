import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { HeldResource, Resources } from 'quark/sdk';

/**
 * Create's claim on a key for a multipart upload to a store that ignores If-None-Match
 * on CompleteMultipartUpload (Ceph RGW does; AWS honours it since 2024): an empty
 * placeholder object put at the key with If-None-Match: *, which such stores do honour on
 * PutObject, so of two Creates of one key only one gets it; the completion then replaces
 * the placeholder. The placeholder carries a token in its metadata, so that removing it
 * (after a failure, or at recovery) never removes anyone else's object.
 */

/** The resource kind of a placeholder held for recovery; its data is a PlaceholderData. */
export const placeholderKind = 'create-placeholder';
/** The placeholder's user metadata entry (x-amz-meta-quark-create) holding its token. */
export const placeholderMetadata = 'quark-create';

export interface PlaceholderData {
  bucket: string;
  key: string;
  token: string;
}

export interface Claim {
  /** The upload completed over the placeholder: only the record goes. */
  completed(): Promise<void>;
  /** The upload failed: the placeholder is removed (if still ours), then the record. */
  abandon(): Promise<void>;
}

const statusOf = (error: unknown) => (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/**
 * Removes the placeholder if the key still holds it (the same token). Resolves to true
 * when the key no longer holds it (removed now, replaced, or never put); throws when the
 * store cannot tell (unreachable), so that recovery tries again.
 */
export async function removePlaceholder(client: S3Client, data: PlaceholderData, signal?: AbortSignal): Promise<true> {
  let token: string | undefined;
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: data.bucket, Key: data.key }), { abortSignal: signal });
    token = head.Metadata?.[placeholderMetadata];
  } catch (error) {
    if (statusOf(error) === 404) return true;
    throw error;
  }
  if (token !== data.token) return true;
  await client.send(new DeleteObjectCommand({ Bucket: data.bucket, Key: data.key }), { abortSignal: signal });
  return true;
}

async function releaseAfter(held: HeldResource, work: () => Promise<unknown>): Promise<void> {
  await work();
  await held.release();
}

/**
 * Puts the placeholder, held for recovery first (a kill between the two leaves a record
 * whose token matches nothing, which recovery drops). Resolves to undefined when the key
 * is taken (412): another Create has it, or created it since the existence check.
 */
export async function claimKey(client: S3Client, bucket: string, key: string, resources: Resources, signal: AbortSignal): Promise<Claim | undefined> {
  const data: PlaceholderData = { bucket, key, token: randomUUID() };
  const held = await resources.hold({ kind: placeholderKind, data: { ...data } });
  try {
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: '', ContentLength: 0, IfNoneMatch: '*', ContentType: 'application/x-quark-create-in-progress', Metadata: { [placeholderMetadata]: data.token } }),
      { abortSignal: signal },
    );
  } catch (error) {
    if (statusOf(error) === 412) {
      await held.release();
      return undefined;
    }
    // the put may have landed before the failure: the record stays unless it is gone
    await releaseAfter(held, () => removePlaceholder(client, data)).catch(() => undefined);
    throw error;
  }
  return {
    completed: () => held.release(),
    abandon: () => releaseAfter(held, () => removePlaceholder(client, data)),
  };
}
