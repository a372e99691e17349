import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Runtime, TestConnectionResult } from '../../index.js';
import { matches, pageOf, pageQuerySchema, type PageQuery } from '../paging.js';

const config = { type: 'object' } as const;
const name = { type: 'string', minLength: 1, maxLength: 200 } as const;

export function connectionRoutes(runtime: Runtime): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: PageQuery }>('/connections', { schema: { querystring: { type: 'object', additionalProperties: false, properties: pageQuerySchema } } }, async (request) => {
      const { q } = request.query;
      const found = (await runtime.connections.list(request.caller)).filter((c) => matches(q, c.name, c.connector));
      const page = pageOf('connections', found, { keyOf: (c) => [c.name, c.id], length: 2 }, request.query);
      return { connections: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    });
    app.get<{ Params: { id: string } }>('/connections/:id', async (request) => runtime.connections.get(request.caller, request.params.id));
    app.post<{ Body: { name: string; connector: string; config: Record<string, unknown> } }>(
      '/connections',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'connector', 'config'],
            properties: { name, connector: { type: 'string', minLength: 1 }, config },
          },
        },
      },
      async (request, reply) => reply.status(201).send(await runtime.connections.create(request.caller, request.body)),
    );
    app.put<{ Params: { id: string }; Body: { name?: string; config: Record<string, unknown> } }>(
      '/connections/:id',
      {
        schema: {
          body: { type: 'object', additionalProperties: false, required: ['config'], properties: { name, config } },
        },
      },
      async (request) => runtime.connections.update(request.caller, request.params.id, request.body),
    );
    app.delete<{ Params: { id: string } }>('/connections/:id', async (request, reply) => {
      await runtime.connections.delete(request.caller, request.params.id);
      return reply.status(204).send();
    });

    // The container rule comes first: a refused caller learns nothing about the request's
    // validity and nothing is read or run.
    const authorize = async (request: FastifyRequest) => runtime.testConnection.authorize(request.caller);

    // Test Connection: of a saved connection, optionally with unsaved changes...
    app.post<{ Params: { id: string }; Body: { config?: Record<string, unknown> } | undefined }>(
      '/connections/:id/test',
      { onRequest: authorize, schema: { body: { type: ['object', 'null'], additionalProperties: false, properties: { config } } } },
      async (request): Promise<TestConnectionResult> =>
        runtime.testConnection.run(request.caller, { connection: request.params.id, ...(request.body?.config ? { config: request.body.config } : {}) }),
    );
    // ...or of an unsaved configuration.
    app.post<{ Body: { connector: string; config: Record<string, unknown> } }>(
      '/test-connection',
      {
        onRequest: authorize,
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['connector', 'config'],
            properties: { connector: { type: 'string', minLength: 1 }, config },
          },
        },
      },
      async (request): Promise<TestConnectionResult> => runtime.testConnection.run(request.caller, request.body),
    );
  };
}
