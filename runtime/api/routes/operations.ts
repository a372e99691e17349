import type { FastifyPluginAsync } from 'fastify';
import { presentDocuments, type OperationRun, type Runtime } from '../../index.js';
import { decodeDocuments, documentsSchema, type ApiDocument } from '../documents.js';

interface Body {
  parameters?: Record<string, unknown>;
  documents?: ApiDocument[];
}

async function present(run: OperationRun) {
  const budget = { used: 0 };
  const results = [];
  for (const r of run.results) {
    const documents = await presentDocuments(r.documents ?? [], budget);
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
              documents: documentsSchema(10000),
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
            documents: decodeDocuments(body.documents ?? [{}]),
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
