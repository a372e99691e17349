import type { FastifyPluginAsync } from 'fastify';
import type { Runtime } from '../../index.js';

// titles and descriptions word the problems (the console shows them at the field)
const name = {
  title: 'Account name',
  description: 'letters, digits, spaces and . _ @ -, starting with a letter or digit',
  type: 'string',
  minLength: 1,
  maxLength: 100,
  pattern: '^[A-Za-z0-9][A-Za-z0-9 ._@-]*$',
} as const;

export function accountRoutes(runtime: Runtime): FastifyPluginAsync {
  return async (app) => {
    app.get('/accounts', async (request) => ({ accounts: await runtime.accounts.list(request.caller) }));
    app.post<{ Body: { name: string; relation: 'tenant' | 'guest' } }>(
      '/accounts',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'relation'],
            properties: { name, relation: { enum: ['tenant', 'guest'] } },
          },
        },
      },
      async (request, reply) => reply.status(201).send(await runtime.accounts.add(request.caller, request.body)),
    );

    app.get('/tokens', async (request) => ({ tokens: await runtime.tokens.list(request.caller) }));
    app.post<{ Body: { name: string; account?: string } }>(
      '/tokens',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['name'],
            properties: { name: { title: 'Token name', type: 'string', minLength: 1, maxLength: 100 }, account: { title: 'Account', type: 'string', minLength: 1 } },
          },
        },
      },
      async (request, reply) => {
        const { token, view } = await runtime.tokens.create(request.caller, request.body);
        return reply.status(201).send({ ...view, token });
      },
    );
    app.delete<{ Params: { id: string } }>('/tokens/:id', async (request) => runtime.tokens.revoke(request.caller, request.params.id));
  };
}
