/** Input documents as the API takes them (operations and executions routes): schema and decoding. */
import type { OperationInput } from '../index.js';

export interface ApiDocument {
  properties?: Record<string, string>;
  body?: string;
  encoding?: 'utf8' | 'base64';
}

/** The JSON Schema of a list of input documents, at most `maxItems`. */
export function documentsSchema(maxItems: number) {
  return {
    type: 'array',
    maxItems,
    items: {
      type: 'object',
      additionalProperties: false,
      properties: {
        properties: { type: 'object', additionalProperties: { type: 'string' } },
        body: { type: 'string' },
        encoding: { enum: ['utf8', 'base64'], default: 'utf8' },
      },
    },
  } as const;
}

/** Bodies decoded from their encoding (utf8 unless base64). */
export function decodeDocuments(documents: readonly ApiDocument[]): OperationInput[] {
  return documents.map((d) => ({
    ...(d.properties ? { properties: d.properties } : {}),
    ...(d.body !== undefined ? { body: Buffer.from(d.body, d.encoding === 'base64' ? 'base64' : 'utf8') } : {}),
  }));
}
