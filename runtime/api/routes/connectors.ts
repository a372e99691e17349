import type { FastifyPluginAsync } from 'fastify';
import type { Runtime } from '../../index.js';

export function connectorRoutes(runtime: Runtime): FastifyPluginAsync {
  return async (app) => {
    app.get('/connectors', async (request) => runtime.connectors.list(request.caller));
    app.get<{ Params: { id: string } }>('/connectors/:id', async (request) => runtime.connectors.get(request.params.id));
  };
}
