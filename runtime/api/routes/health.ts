import type { FastifyPluginAsync } from 'fastify';
import type { Runtime } from '../../index.js';

/** Unauthenticated: liveness, readiness and Prometheus metrics. */
export function healthRoutes(runtime: Runtime): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_request, reply) => {
      const readiness = await runtime.checkReady();
      return readiness.ready ? reply.status(200).send({ status: 'ready' }) : reply.status(503).send({ status: 'not ready', reason: readiness.reason });
    });
    app.get('/metrics', async (_request, reply) => {
      const body = await runtime.metrics.registry.metrics();
      return reply.type(runtime.metrics.registry.contentType).send(body);
    });
  };
}
