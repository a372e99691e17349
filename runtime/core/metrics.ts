import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface PoolGaugeSource {
  stats(): { threads: number; idleThreads: number; queueSize: number; completed: number; utilization: number };
}

export type LoadProblemKind = 'schedule' | 'deployment' | 'connection';

/** The runtime's Prometheus metrics; one registry per runtime instance, none global. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'quark_' });
  const httpRequests = new Counter({
    name: 'quark_http_requests_total',
    help: 'HTTP requests served, by method, route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'quark_http_request_duration_seconds',
    help: 'HTTP request duration.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [registry],
  });
  const testConnections = new Counter({
    name: 'quark_test_connection_total',
    help: 'Test Connection outcomes: ok, warning, failed, refused (container rule) or invalid (schema).',
    labelNames: ['connector', 'outcome'] as const,
    registers: [registry],
  });
  const executionsStarted = new Counter({
    name: 'quark_executions_started_total',
    help: 'Executions started, by trigger (manual, api, schedule, test).',
    labelNames: ['trigger'] as const,
    registers: [registry],
  });
  const executionsFinished = new Counter({
    name: 'quark_executions_finished_total',
    help: 'Executions ended, by status (complete, complete-with-warnings, error, aborted, discarded).',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const executionsRefused = new Counter({
    name: 'quark_executions_refused_total',
    help: 'Executions refused because the running limit was reached and the queue was full.',
    registers: [registry],
  });
  const executionDuration = new Histogram({
    name: 'quark_execution_duration_seconds',
    help: 'Execution duration from start to end, by status.',
    labelNames: ['status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600],
    registers: [registry],
  });
  const executionDocuments = new Counter({
    name: 'quark_execution_documents_total',
    help: 'Documents of executions: in (passed to executions), out (ended a path), failed (uncaught errors).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const recoveredResources = new Counter({
    name: 'quark_recovered_resources_total',
    help: 'Recover attempts at resources operations left behind, by connector and outcome: released, failed (retried), kept (connector not loaded), dropped (connection gone).',
    labelNames: ['connector', 'outcome'] as const,
    registers: [registry],
  });
  let executionSource: (() => { running: number; queued: number }) | undefined;
  new Gauge({
    name: 'quark_executions_running',
    help: 'Executions running now.',
    registers: [registry],
    collect() {
      if (executionSource) this.set(executionSource().running);
    },
  });
  new Gauge({
    name: 'quark_executions_queued',
    help: 'Executions waiting for a free slot.',
    registers: [registry],
    collect() {
      if (executionSource) this.set(executionSource().queued);
    },
  });
  let loadProblemSource: (() => Promise<Record<LoadProblemKind, number>>) | undefined;
  new Gauge({
    name: 'quark_load_problems',
    help: 'Stored records the runtime could not load or arm: schedules, deployments (unreadable definition), connections (connector not loaded, or a local folder refused by the isolation rules).',
    labelNames: ['kind'] as const,
    registers: [registry],
    // counted from the store when scraped (prom-client awaits an async collect)
    async collect() {
      if (!loadProblemSource) return;
      for (const [kind, count] of Object.entries(await loadProblemSource())) this.set({ kind }, count);
    },
  });
  let poolSource: PoolGaugeSource | undefined;
  const poolGauge = (name: string, help: string, pick: (s: ReturnType<PoolGaugeSource['stats']>) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        if (poolSource) this.set(pick(poolSource.stats()));
      },
    });
  poolGauge('quark_worker_pool_threads', 'Worker threads alive in the plugin pool.', (s) => s.threads);
  poolGauge('quark_worker_pool_idle_threads', 'Idle worker threads.', (s) => s.idleThreads);
  poolGauge('quark_worker_pool_queue_size', 'Tasks waiting for a worker.', (s) => s.queueSize);
  poolGauge('quark_worker_pool_completed_tasks', 'Tasks completed by the pool since start.', (s) => s.completed);
  poolGauge('quark_worker_pool_utilization', 'Pool utilization (0..1).', (s) => s.utilization);

  return {
    registry,
    httpRequests,
    httpDuration,
    testConnections,
    executionsStarted,
    executionsFinished,
    executionsRefused,
    executionDuration,
    executionDocuments,
    recoveredResources,
    watchExecutions(source: () => { running: number; queued: number }) {
      executionSource = source;
    },
    watchLoadProblems(source: () => Promise<Record<LoadProblemKind, number>>) {
      loadProblemSource = source;
    },
    watchPool(source: PoolGaugeSource) {
      poolSource = source;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
