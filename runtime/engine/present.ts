/**
 * Documents as an API answer carries them: bodies inline (base64) up to a size, larger
 * ones described only, and no more than a total per answer, so one large result cannot
 * exhaust the main thread.
 */
import { readFile } from 'node:fs/promises';
import type { DocumentRef } from './messages.js';

export interface PresentedDocument {
  properties: Record<string, string>;
  size: number;
  encoding?: 'base64';
  body?: string;
  /** Why the body is not included. */
  bodyOmitted?: string;
}

export const inlineLimit = 16 * 1024 * 1024;
export const answerLimit = 64 * 1024 * 1024;

export async function presentDocuments(documents: readonly DocumentRef[], budget = { used: 0 }): Promise<PresentedDocument[]> {
  const out: PresentedDocument[] = [];
  for (const d of documents) {
    const size = d.body.kind === 'inline' ? d.body.bytes.byteLength : d.body.size;
    if (size > inlineLimit || budget.used + size > answerLimit) {
      out.push({ properties: d.properties, size, bodyOmitted: size > inlineLimit ? `larger than ${inlineLimit} bytes; write it somewhere with a connector step` : `this answer already holds ${answerLimit} bytes of bodies` });
      continue;
    }
    budget.used += size;
    const bytes = d.body.kind === 'inline' ? Buffer.from(d.body.bytes.buffer, d.body.bytes.byteOffset, d.body.bytes.byteLength) : await readFile(d.body.path);
    out.push({ properties: d.properties, size, encoding: 'base64', body: bytes.toString('base64') });
  }
  return out;
}
