import { readFile } from 'node:fs/promises';
import type { FastifyPluginAsync } from 'fastify';
import type { OperationRun, Runtime } from '../../index.js';

/** Output bodies up to this size come back inline (base64); larger ones are described only. */
const inlineLimit = 16 * 1024 * 1024;
/** And no more than this in one answer, so a large query cannot exhaust the main thread. */
const answerLimit = 64 * 1024 * 1024;

interface Body {
  parameters?: Record<string, unknown>;
  documents?: { properties?: Record<string, string>; body?: string; encoding?: 'utf8' | 'base64' }[];
}

async function present(run: OperationRun) {
  const results = [];
  let inlined = 0;
  for (const r of run.results) {
    const documents = [];
    for (const d of r.documents ?? []) {
      const size = d.body.kind === 'inline' ? d.body.bytes.byteLength : d.body.size;
      if (size > inlineLimit || inlined + size > answerLimit) {
        documents.push({ properties: d.properties, size, bodyOmitted: size > inlineLimit ? `larger than ${inlineLimit} bytes; run it in a process to stream it` : `this answer already holds ${answerLimit} bytes of bodies` });
        continue;
      }
      inlined += size;
      const bytes = d.body.kind === 'inline' ? Buffer.from(d.body.bytes) : await readFile(d.body.path);
      documents.push({ properties: d.properties, size, encoding: 'base64', body: bytes.toString('base64') });
    }
    results.push({ status: r.status, ...(r.message !== undefined ? { message: r.message } : {}), ...(r.code ? { code: r.code } : {}), ...(r.properties ? { properties: r.properties } : {}), ...(r.status === 'success' ? { documents } : {}) });
  }
  return { connector: run.connector, operation: run.operation, durationMs: run.durationMs, results };
}

export function operationRoutes(runtime: Runtime): FastifyPluginAsync {
  return async (app) => {
    app.post<{ Params: { id: string; operation: string }; Body: Body | undefined }>(
      '/connections/:id/operations/:operation',
      {
        bodyLimit: 64 * 1024 * 1024,
        schema: {
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: {
              parameters: { type: 'object' },
              documents: {
                type: 'array',
                maxItems: 10000,
                items: {
                  type: 'object',
                  additionalProperties: false,
                  properties: {
                    properties: { type: 'object', additionalProperties: { type: 'string' } },
                    body: { type: 'string' },
                    encoding: { enum: ['utf8', 'base64'], default: 'utf8' },
                  },
                },
              },
            },
          },
        },
      },
      async (request, reply) => {
        const body = request.body ?? {};
        const controller = new AbortController();
        // a client that goes away before the answer cancels the operation (and its multipart upload)
        reply.raw.on('close', () => {
          if (!reply.raw.writableFinished) controller.abort();
        });
        const run = await runtime.runOperation(
          request.caller,
          {
            connection: request.params.id,
            operation: request.params.operation,
            parameters: body.parameters ?? {},
            documents: (body.documents ?? [{}]).map((d) => ({
              ...(d.properties ? { properties: d.properties } : {}),
              ...(d.body !== undefined ? { body: Buffer.from(d.body, d.encoding === 'base64' ? 'base64' : 'utf8') } : {}),
            })),
          },
          { signal: controller.signal },
        );
        try {
          return await present(run);
        } finally {
          await run.dispose();
        }
      },
    );
  };
}
