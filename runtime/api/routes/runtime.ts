import type { FastifyPluginAsync } from 'fastify';
import type { Runtime } from '../../index.js';

export function runtimeRoutes(runtime: Runtime): FastifyPluginAsync {
  return async (app) => {
    app.get('/runtime', async (request) => runtime.info(request.caller));
    app.get('/whoami', async (request) => runtime.whoami(request.caller));
    app.get('/nodes', async (request) => runtime.nodes(request.caller));
  };
}
