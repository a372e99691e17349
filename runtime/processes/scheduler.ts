/**
 * Schedules: cron timers for the active deployments, rebuilt from the store at start
 * (so schedules survive a restart) and whenever a process's deployment or schedules
 * change. A firing starts an execution with trigger "schedule".
 */
import { Cron } from 'croner';
import type { Logger } from '../core/logger.js';
import type { Store } from '../store/types.js';

export interface SchedulerDeps {
  store: Store;
  logger: Logger;
  fire(accountId: string, processId: string): void;
}

export function createScheduler(deps: SchedulerDeps) {
  const jobs = new Map<string, Cron[]>();
  const key = (accountId: string, processId: string) => `${accountId}\u0000${processId}`;

  function refresh(accountId: string, processId: string): void {
    for (const job of jobs.get(key(accountId, processId)) ?? []) job.stop();
    jobs.delete(key(accountId, processId));
    const record = deps.store.processes.get(accountId, processId);
    if (!record || record.activeVersion === null || record.schedules.length === 0) return;
    jobs.set(
      key(accountId, processId),
      record.schedules.map((s) =>
        // protect: a firing that comes while the previous one's start is still going is skipped
        new Cron(s.cron, { protect: true, ...(s.timezone ? { timezone: s.timezone } : {}) }, () => {
          deps.logger.info({ process: processId, cron: s.cron }, 'schedule fired');
          deps.fire(accountId, processId);
        }),
      ),
    );
  }

  return {
    refresh,
    start(): void {
      for (const p of deps.store.processes.list()) refresh(p.accountId, p.processId);
    },
    /** The next firing times of a process's schedules. */
    next(accountId: string, processId: string): (string | null)[] {
      return (jobs.get(key(accountId, processId)) ?? []).map((job) => job.nextRun()?.toISOString() ?? null);
    },
    stop(): void {
      for (const list of jobs.values()) for (const job of list) job.stop();
      jobs.clear();
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
