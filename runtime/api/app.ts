import Fastify, { LogController, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { quarkError } from '../core/errors.js';
import { checkBodyDepth } from '../core/json-depth.js';
import type { Caller, Runtime } from '../index.js';
import { errorHandler, frameworkErrorHandler, maxParamLength } from './errors.js';
import { healthRoutes } from './routes/health.js';
import { runtimeRoutes } from './routes/runtime.js';
import { accountRoutes } from './routes/accounts.js';
import { connectorRoutes } from './routes/connectors.js';
import { connectionRoutes } from './routes/connections.js';
import { operationRoutes } from './routes/operations.js';
import { deploymentRoutes } from './routes/deployments.js';
import { executionRoutes } from './routes/executions.js';
import { consolePlugin } from '../console/plugin.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller;
  }
}

export interface AppOptions {
  https?: { cert: Buffer; key: Buffer };
}

/** The caller of an authenticated route (set by the /api/v1 auth hook). */
export function callerOf(request: FastifyRequest): Caller {
  return request.caller;
}

/** The HTTP API: a thin layer over the runtime facade. */
export function buildApp(runtime: Runtime, options: AppOptions = {}): FastifyInstance {
  const serverOptions: FastifyServerOptions = {
    loggerInstance: runtime.logger,
    // two lines per request cost more than a short execution; /metrics counts requests
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    // while closing, new requests get QUARK_ERR_API_SHUTTING_DOWN from the hook below
    return503OnClosing: false,
    // verbose: the problems name fields by their schema titles (api/errors.ts)
    ajv: { customOptions: { allErrors: true, verbose: true, removeAdditional: false, coerceTypes: false, useDefaults: true } },
    // a connection name (200 characters) percent-encoded fits in a path parameter
    routerOptions: { maxParamLength },
    // a URL that does not decode, a parameter over the limit: answered in quark's format
    frameworkErrors: frameworkErrorHandler,
  };
  const app = (options.https ? Fastify({ ...serverOptions, https: options.https } as FastifyServerOptions) : Fastify(serverOptions)) as unknown as FastifyInstance;
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    const error = quarkError('QUARK_ERR_API_ROUTE_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0]}`);
    void reply.status(error.status).send({ error: error.toJSON() });
  });

  // On shutdown, answers to requests still in flight close their connection, so that a
  // keep-alive client does not hold the server open past the grace period.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request) => {
    if (closing && request.url !== '/healthz') throw quarkError('QUARK_ERR_API_SHUTTING_DOWN', 'the runtime is shutting down; retry on another node or after it restarts');
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) void reply.header('connection', 'close');
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    runtime.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    runtime.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  app.register(healthRoutes(runtime));
  // the console's static files: no auth (the page signs in with a token)
  app.register(consolePlugin());
  app.register(
    async (api) => {
      api.decorateRequest('caller', null as unknown as Caller);
      api.addHook('onRequest', async (request) => {
        const header = request.headers.authorization;
        const match = header === undefined ? undefined : /^Bearer\s+(\S+)$/i.exec(header);
        if (header !== undefined && !match) throw quarkError('QUARK_ERR_AUTH_MISSING_TOKEN', 'the Authorization header must be "Bearer <token>"');
        request.caller = await runtime.authenticate(match?.[1]);
      });
      // before the route's schema and any code that recurses or serialises the body
      api.addHook('preValidation', async (request) => checkBodyDepth(request.body, runtime.config.limits.maxNestingDepth));
      api.register(runtimeRoutes(runtime));
      api.register(accountRoutes(runtime));
      api.register(connectorRoutes(runtime));
      api.register(connectionRoutes(runtime));
      api.register(operationRoutes(runtime));
      api.register(deploymentRoutes(runtime));
      api.register(executionRoutes(runtime));
    },
    { prefix: '/api/v1' },
  );
  return app;
}
