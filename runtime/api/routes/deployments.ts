import type { FastifyPluginAsync } from 'fastify';
import type { Runtime, ScheduleRecord } from '../../index.js';
import { matches, pageOf, pageQuerySchema, positiveInteger, type PageQuery } from '../paging.js';

const processParam = { type: 'object', properties: { process: { type: 'string', minLength: 1, maxLength: 63 } } } as const;

export function deploymentRoutes(runtime: Runtime): FastifyPluginAsync {
  return async (app) => {
    // the definition is checked by the deployment service against schemas/process.schema.json
    // (all problems at once, with paths into the definition); here only its outer shape
    app.post<{ Body: Record<string, unknown> }>('/deployments', { schema: { body: { type: 'object' } } }, async (request, reply) =>
      reply.status(201).send(await runtime.deployments.deploy(request.caller, request.body)),
    );
    app.get<{ Querystring: PageQuery }>('/deployments', { schema: { querystring: { type: 'object', additionalProperties: false, properties: pageQuerySchema } } }, async (request) => {
      const { q } = request.query;
      const found = (await runtime.deployments.list(request.caller)).filter((d) => matches(q, d.process, d.name));
      const page = pageOf('deployments', found, { keyOf: (d) => [d.process], length: 1 }, request.query);
      return { deployments: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    });
    app.get<{ Params: { process: string }; Querystring: { version?: string } }>(
      '/deployments/:process',
      { schema: { params: processParam, querystring: { type: 'object', additionalProperties: false, properties: { version: positiveInteger } } } },
      async (request) => runtime.deployments.get(request.caller, request.params.process, request.query.version === undefined ? undefined : Number(request.query.version)),
    );
    app.post<{ Params: { process: string }; Body: { version: number } }>(
      '/deployments/:process/rollback',
      { schema: { params: processParam, body: { type: 'object', additionalProperties: false, required: ['version'], properties: { version: { type: 'integer', minimum: 1 } } } } },
      async (request, reply) => reply.status(201).send(await runtime.deployments.rollback(request.caller, request.params.process, request.body.version)),
    );
    app.delete<{ Params: { process: string } }>('/deployments/:process', { schema: { params: processParam } }, async (request) =>
      runtime.deployments.undeploy(request.caller, request.params.process),
    );
    app.put<{ Params: { process: string }; Body: { schedules: ScheduleRecord[] } }>(
      '/deployments/:process/schedules',
      {
        schema: {
          params: processParam,
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['schedules'],
            properties: {
              schedules: {
                type: 'array',
                maxItems: 20,
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['cron'],
                  properties: {
                    cron: { title: 'Cron expression', type: 'string', minLength: 1, maxLength: 200 },
                    timezone: { title: 'Time zone', type: 'string', minLength: 1, maxLength: 100 },
                    catchUp: { title: 'Missed fires', enum: ['skip', 'once'] },
                  },
                },
              },
            },
          },
        },
      },
      async (request) => runtime.deployments.setSchedules(request.caller, request.params.process, request.body.schedules),
    );
  };
}
