import type { RecoverContext, RecoveredResource } from 'quark/sdk';
import { createS3Client } from './client.js';
import { placeholderKind, removePlaceholder, type PlaceholderData } from './claims.js';
import { abandon, multipartUploadKind, type MultipartUploadData } from './multipart.js';
import type { S3Config } from './config.js';

const text = (data: Record<string, unknown>, name: string): string => {
  const value = data[name];
  if (typeof value !== 'string' || value === '') throw new Error(`the record has no ${name}`);
  return value;
};

/**
 * Releases what an operation left behind (a killed runtime, an abort the store did not
 * answer): a multipart upload is aborted until the store says it is gone; Create's
 * placeholder is deleted if the key still holds it. Throws to be retried.
 */
export async function recover(resource: RecoveredResource, context: RecoverContext<S3Config>): Promise<void> {
  // a client of its own: closed at the end, where the operations' cache keeps its clients
  const { client, transport } = createS3Client(context.config, context.runtime, { connections: 4 });
  try {
    if (resource.kind === multipartUploadKind) {
      const upload: MultipartUploadData = { bucket: text(resource.data, 'bucket'), key: text(resource.data, 'key'), uploadId: text(resource.data, 'uploadId') };
      if (!(await abandon(client, upload, context.signal))) throw new Error(`the multipart upload ${upload.uploadId} of ${upload.key} could not be aborted: the store did not confirm it is gone`);
      context.log.info('aborted a multipart upload left behind', { bucket: upload.bucket, key: upload.key });
    } else if (resource.kind === placeholderKind) {
      const placeholder: PlaceholderData = { bucket: text(resource.data, 'bucket'), key: text(resource.data, 'key'), token: text(resource.data, 'token') };
      await removePlaceholder(client, placeholder, context.signal);
    } else {
      throw new Error(`unknown resource kind "${resource.kind}"`);
    }
  } finally {
    client.destroy();
    transport.destroy();
  }
}
