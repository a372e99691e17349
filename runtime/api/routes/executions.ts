import type { FastifyPluginAsync } from 'fastify';
import type { Caller, ExecutionStatus, Runtime } from '../../index.js';
import { decodeCursor, encodeCursor, invalidCursor, pageSize, pageQuerySchema, positiveInteger, type PageQuery } from '../paging.js';
import { decodeDocuments, documentsSchema, type ApiDocument } from '../documents.js';
import { answerStreamed, wantsStream } from '../stream.js';
import { quarkError } from '../../core/errors.js';

interface StartBody {
  process?: string;
  definition?: Record<string, unknown>;
  documents?: ApiDocument[];
  wait?: boolean;
  trigger?: 'manual' | 'api';
  recordStepData?: boolean;
}

const statuses = ['queued', 'in-process', 'complete', 'complete-with-warnings', 'error', 'aborted', 'discarded'];

/** Comment lines keep idle proxies from closing a quiet event stream. */
const heartbeatMs = 15_000;

/** Newest first, paged by the last row's queued time and id (one more row says whether a next page exists). */
async function executionsPage(runtime: Runtime, caller: Caller, query: PageQuery & { process?: string; status?: ExecutionStatus }) {
  const size = pageSize(query.limit);
  const after = query.cursor === undefined ? undefined : decodeCursor('executions', query.cursor, 2);
  const rows = await runtime.executions.list(caller, {
    ...(query.process ? { process: query.process } : {}),
    ...(query.status ? { status: query.status } : {}),
    ...(query.q ? { search: query.q } : {}),
    ...(after ? { before: { queuedAt: after[0]!, id: after[1]! } } : {}),
    limit: size + 1,
  });
  const executions = rows.slice(0, size);
  const last = executions.at(-1);
  return { executions, ...(rows.length > size && last ? { nextCursor: encodeCursor('executions', [last.queuedAt, last.id]) } : {}) };
}

function streamWithoutWait() {
  const message = 'wait is false, but Accept: application/x-ndjson asks for the output documents as they are made, which only a caller that waits gets; send wait: true (or leave it out), or drop the Accept header';
  return quarkError('QUARK_ERR_API_INVALID_REQUEST', `the request is not valid: ${message}`, { problems: [{ path: '/body/wait', message }] });
}

export function executionRoutes(runtime: Runtime): FastifyPluginAsync {
  return async (app) => {
    // Server-sent events: each status change of the caller's account's executions, as
    // `event: execution` with the ExecutionView as data. Open streams end when the
    // runtime shuts down, so they do not hold the server open.
    const streams = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const end of [...streams]) end();
    });
    app.get('/executions/events', async (request, reply) => {
      const raw = reply.raw;
      const unsubscribe = runtime.executions.subscribe(request.caller, (view) => {
        raw.write(`event: execution\ndata: ${JSON.stringify(view)}\n\n`);
      });
      reply.hijack();
      raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
      raw.write(': connected\n\n');
      const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), heartbeatMs);
      heartbeat.unref();
      const end = () => {
        if (!streams.delete(end)) return;
        clearInterval(heartbeat);
        unsubscribe();
        raw.end();
      };
      streams.add(end);
      request.raw.on('close', end);
      raw.on('close', end);
    });
    app.post<{ Body: StartBody }>(
      '/executions',
      {
        bodyLimit: 64 * 1024 * 1024,
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            oneOf: [{ required: ['process'] }, { required: ['definition'] }],
            properties: {
              process: { type: 'string', minLength: 1, maxLength: 63 },
              definition: { type: 'object' },
              wait: { type: 'boolean' },
              trigger: { enum: ['manual', 'api'], default: 'api' },
              recordStepData: { type: 'boolean' },
              documents: documentsSchema(100000),
            },
          },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const streamed = wantsStream(request);
        // the stream is the answer of a caller that waits: `wait` may be left out, not sent as false
        if (streamed && body.wait === false) throw streamWithoutWait();
        const documents = body.documents && decodeDocuments(body.documents);
        const start = { ...(body.process !== undefined ? { process: body.process } : {}), ...(body.definition !== undefined ? { definition: body.definition } : {}), ...(documents ? { documents } : {}), trigger: body.trigger ?? 'api', ...(body.recordStepData ? { recordStepData: true } : {}) } as const;
        if (streamed) return answerStreamed(reply, (stream) => runtime.executions.start(request.caller, start, { wait: true, stream }));
        const view = await runtime.executions.start(request.caller, start, { wait: body.wait === true });
        return reply.status(body.wait ? 200 : 202).send(view);
      },
    );
    app.get<{ Querystring: PageQuery & { process?: string; status?: ExecutionStatus } }>(
      '/executions',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { process: { type: 'string', minLength: 1 }, status: { enum: statuses }, ...pageQuerySchema },
          },
        },
      },
      async (request) => executionsPage(runtime, request.caller, request.query),
    );
    app.get<{ Params: { id: string } }>('/executions/:id', async (request) => runtime.executions.get(request.caller, request.params.id));
    app.get<{ Params: { id: string } }>('/executions/:id/steps', async (request) => ({ steps: await runtime.executions.recordedSteps(request.caller, request.params.id) }));
    app.get<{ Params: { id: string; step: string }; Querystring: { cursor?: string; limit?: string } }>(
      '/executions/:id/steps/:step/documents',
      { schema: { querystring: { type: 'object', additionalProperties: false, properties: { cursor: pageQuerySchema.cursor, limit: positiveInteger } } } },
      async (request) => {
        const { cursor, limit } = request.query;
        if (cursor !== undefined && !/^[0-9]{1,15}$/.test(cursor)) throw invalidCursor('step documents', 'next');
        return runtime.executions.stepDocuments(request.caller, request.params.id, request.params.step, { ...(cursor !== undefined ? { cursor } : {}), limit: Math.min(Number(limit ?? 20), 100) });
      },
    );
    app.post<{ Params: { id: string } }>('/executions/:id/cancel', async (request) => runtime.executions.cancel(request.caller, request.params.id));
    app.get<{ Params: { id: string } }>('/executions/:id/log', async (request, reply) => {
      const chunks = await runtime.executions.log(request.caller, request.params.id);
      void reply.type('application/x-ndjson');
      return reply.send(chunks.join(''));
    });
  };
}
