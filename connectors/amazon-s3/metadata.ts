import type { InputDocument } from 'quark/sdk';

/**
 * User metadata and the content type of an upload, checked before they become HTTP
 * headers (x-amz-meta-<name>, Content-Type): Node throws a bare TypeError for a character
 * a header cannot carry. Values must be printable ASCII; quark does not encode them
 * (RFC 2047, as the AWS CLI can) because S3-compatible stores and readers of the object
 * would see the encoded form, and Get would have to guess which values to decode.
 */

/** RFC 9110 token characters: what a header name, and so a metadata name, may hold. */
const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const badValueCharacter = /[^\t\x20-\x7e]/u;

export interface UploadHeaderParameters {
  contentType?: string;
  metadata?: Record<string, string>;
}

export type UploadHeaders = { contentType: string; metadata: Record<string, string> } | { problem: string; code: 'InvalidMetadata' | 'InvalidContentType' };

const codePoint = (character: string) => `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why a value cannot be sent in a header, or undefined. */
function valueProblem(value: string): string | undefined {
  const bad = badValueCharacter.exec(value);
  if (!bad) return undefined;
  return `has a character S3 cannot take in a header (${codePoint(bad[0])} at character ${[...value.slice(0, bad.index)].length + 1}): values must be printable ASCII; encode the text first (for example percent-encoding)`;
}

/**
 * The content type (the parameter, else s3.contentType, else application/octet-stream)
 * and the metadata (the parameter plus each s3.meta.<name> property, which wins), or the
 * first one that cannot be sent, named.
 */
export function uploadHeaders(parameters: UploadHeaderParameters, document: InputDocument): UploadHeaders {
  const contentType = parameters.contentType ?? document.properties['s3.contentType'] ?? 'application/octet-stream';
  const typeProblem = valueProblem(contentType);
  if (typeProblem !== undefined) return { problem: `the content type ${typeProblem}`, code: 'InvalidContentType' };
  const metadata: Record<string, string> = { ...(parameters.metadata ?? {}) };
  for (const [name, value] of Object.entries(document.properties)) {
    if (name.startsWith('s3.meta.')) metadata[name.slice('s3.meta.'.length)] = value;
  }
  for (const [name, value] of Object.entries(metadata)) {
    if (!tokenPattern.test(name)) return { problem: `the metadata name ${JSON.stringify(name)} is not valid: letters, digits and !#$%&'*+-.^_\`|~ only`, code: 'InvalidMetadata' };
    const problem = valueProblem(value);
    if (problem !== undefined) return { problem: `the metadata "${name}" ${problem}`, code: 'InvalidMetadata' };
  }
  return { contentType, metadata };
}
