/**
 * Schedules: cron timers for the active deployments, rebuilt from the store at start
 * (so schedules survive a restart) and whenever a process's deployment or schedules
 * change. A firing starts an execution with trigger "schedule" and is recorded in the
 * store; at start, a schedule whose `catchUp` is `once` and that missed at least one
 * fire while the runtime was stopped fires one catch-up run. A stored schedule that
 * cannot be armed (written by an older version that did not check it) is reported, not
 * fatal: the other schedules are armed.
 */
import { Cron } from 'croner';
import { messageOf, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Store, ScheduleRecord } from '../store/types.js';

/** A stored record the runtime could not load or arm, as `deployments show` reports it. */
export interface LoadProblem {
  /** JSON pointer into the deployment summary, e.g. /schedules/0. */
  path: string;
  code: ErrorCode;
  message: string;
}

export interface SchedulerDeps {
  store: Store;
  logger: Logger;
  fire(accountId: string, processId: string): void;
  /** The clock; tests give their own to prove catch-up without waiting. */
  now?: () => Date;
}

/** Counting missed fires stops here: the log says "at least". */
const missedCountLimit = 1000;

function cronOptions(s: ScheduleRecord) {
  // protect: a firing that comes while the previous one's start is still going is skipped
  return { protect: true, ...(s.timezone ? { timezone: s.timezone } : {}) };
}

/**
 * Why the scheduler cannot arm a schedule, or undefined when it can: builds the timer it
 * would arm, paused, and asks for its next run, which is where croner reads the time zone
 * (a paused timer with "Mars/Base" is made without complaint).
 */
export function scheduleProblem(s: ScheduleRecord, now: Date = new Date()): string | undefined {
  let job: Cron | undefined;
  try {
    job = new Cron(s.cron, { ...cronOptions(s), paused: true });
    if (!job.nextRun(now)) return 'never fires (no such date)';
    return undefined;
  } catch (error) {
    return messageOf(error);
  } finally {
    job?.stop();
  }
}

/** How many fires of `s` fell after `since` and up to `now` (at most missedCountLimit). */
export function missedFires(s: ScheduleRecord, since: Date, now: Date): number {
  const job = new Cron(s.cron, { ...cronOptions(s), paused: true });
  try {
    let count = 0;
    for (let at = job.nextRun(since); at && at <= now && count < missedCountLimit; at = job.nextRun(at)) count++;
    return count;
  } finally {
    job.stop();
  }
}

const keyOf = (accountId: string, processId: string) => `${accountId}\u0000${processId}`;
const sameSchedule = (a: { cron: string; timezone?: string }, b: { cron: string; timezone?: string }) => a.cron === b.cron && (a.timezone ?? '') === (b.timezone ?? '');

interface Armed {
  /** One entry per schedule, in order; undefined where it could not be armed. */
  jobs: (Cron | undefined)[];
  problems: LoadProblem[];
}

interface SchedulerContext {
  deps: SchedulerDeps;
  now: () => Date;
  armed: Map<string, Armed>;
  /** The refresh of each process in flight: refreshes of one process run one after the other. */
  pending: Map<string, Promise<void>>;
  stopped: boolean;
}

/** Fires, and records the fire; the promise (never rejected) resolves when it is recorded — the timer does not wait for it. */
function fired(ctx: SchedulerContext, accountId: string, processId: string, s: ScheduleRecord): Promise<void> {
  const { logger, store } = ctx.deps;
  logger.info({ process: processId, cron: s.cron }, 'schedule fired');
  const recorded = store.processes.recordFire(accountId, processId, s, ctx.now().toISOString()).catch((error: unknown) => {
    logger.error({ process: processId, cron: s.cron, err: error }, 'the schedule fired but its fire time could not be recorded');
  });
  ctx.deps.fire(accountId, processId);
  return recorded;
}

function armOne(ctx: SchedulerContext, accountId: string, processId: string, s: ScheduleRecord, index: number, armed: Armed): void {
  const problem = scheduleProblem(s, ctx.now());
  if (problem === undefined) {
    try {
      armed.jobs.push(new Cron(s.cron, cronOptions(s), () => void fired(ctx, accountId, processId, s)));
      return;
    } catch (error) {
      armed.problems.push({ path: `/schedules/${index}`, code: 'QUARK_ERR_SCHEDULE_INVALID', message: `cannot be armed: ${messageOf(error)}` });
    }
  } else {
    armed.problems.push({ path: `/schedules/${index}`, code: 'QUARK_ERR_SCHEDULE_INVALID', message: `cannot be armed: ${problem}` });
  }
  armed.jobs.push(undefined);
  ctx.deps.logger.error({ process: processId, account: accountId, schedule: s, problem: armed.problems.at(-1)!.message }, 'a stored schedule cannot be armed; the process runs on its other schedules, and by hand');
}

function disarm(ctx: SchedulerContext, accountId: string, processId: string): void {
  for (const job of ctx.armed.get(keyOf(accountId, processId))?.jobs ?? []) job?.stop();
  ctx.armed.delete(keyOf(accountId, processId));
}

/** Reads the process and arms its schedules again (after its deployment or schedules changed). */
async function rearm(ctx: SchedulerContext, accountId: string, processId: string): Promise<void> {
  const record = await ctx.deps.store.processes.get(accountId, processId);
  disarm(ctx, accountId, processId);
  if (ctx.stopped || !record || record.activeVersion === null) return;
  if (record.schedulesUnreadable) {
    const message = 'the stored schedules cannot be read (damaged store record); set them again';
    ctx.deps.logger.error({ process: processId, account: accountId }, message);
    ctx.armed.set(keyOf(accountId, processId), { jobs: [], problems: [{ path: '/schedules', code: 'QUARK_ERR_SCHEDULE_INVALID', message }] });
    return;
  }
  if (record.schedules.length === 0) return;
  const armed: Armed = { jobs: [], problems: [] };
  record.schedules.forEach((s, i) => armOne(ctx, accountId, processId, s, i, armed));
  ctx.armed.set(keyOf(accountId, processId), armed);
}

/**
 * At start, for each armed schedule: the fires missed since it last fired (or was set)
 * are counted; `once` fires one catch-up run, `skip` says in the log what was skipped.
 * Either way the schedule counts from now.
 */
async function catchUp(ctx: SchedulerContext, accountId: string, processId: string): Promise<void> {
  const { store, logger } = ctx.deps;
  const record = await store.processes.get(accountId, processId);
  const armed = ctx.armed.get(keyOf(accountId, processId));
  if (!record || !armed) return;
  const fires = await store.processes.lastFires(accountId, processId);
  const now = ctx.now();
  let caughtUp = false;
  for (const [i, s] of record.schedules.entries()) {
    if (!armed.jobs[i]) continue;
    const last = fires.find((f) => sameSchedule(f, s))?.lastFiredAt;
    const missed = last === undefined ? 0 : missedFires(s, new Date(last), now);
    if (missed === 0) continue;
    const policy = s.catchUp ?? 'skip';
    const fields = { process: processId, cron: s.cron, missed: missed >= missedCountLimit ? `at least ${missed}` : String(missed), since: last, catchUp: policy };
    if (policy === 'once') logger.info(fields, 'fires were missed while the runtime was stopped: one catch-up run');
    else logger.warn(fields, 'fires were missed while the runtime was stopped: skipped (catchUp: skip)');
    if (policy === 'once' && !caughtUp) {
      // one run for the process, even when several of its schedules missed fires
      caughtUp = true;
      await fired(ctx, accountId, processId, s);
    } else {
      await store.processes.recordFire(accountId, processId, s, now.toISOString());
    }
  }
}

/** Refreshes of one process run in order, each after the one before it ended; resolves when this one has (never rejects). */
function refresh(ctx: SchedulerContext, accountId: string, processId: string, then?: () => Promise<void>): Promise<void> {
  const key = keyOf(accountId, processId);
  const run = async () => {
    await rearm(ctx, accountId, processId);
    await then?.();
  };
  const next = (ctx.pending.get(key) ?? Promise.resolve()).then(run).catch((error: unknown) => armFailed(ctx, accountId, processId, error));
  ctx.pending.set(key, next);
  void next.then(() => {
    if (ctx.pending.get(key) === next) ctx.pending.delete(key);
  });
  return next;
}

/** A record that throws is reported and the others go on. */
function armFailed(ctx: SchedulerContext, accountId: string, processId: string, error: unknown): void {
  ctx.deps.logger.error({ process: processId, account: accountId, err: error }, 'the schedules of a process could not be armed');
  const armed = ctx.armed.get(keyOf(accountId, processId)) ?? { jobs: [], problems: [] };
  armed.problems.push({ path: '/schedules', code: 'QUARK_ERR_SCHEDULE_INVALID', message: `cannot be armed: ${messageOf(error)}` });
  ctx.armed.set(keyOf(accountId, processId), armed);
}

export function createScheduler(deps: SchedulerDeps) {
  const ctx: SchedulerContext = { deps, now: deps.now ?? (() => new Date()), armed: new Map(), pending: new Map(), stopped: false };
  return {
    /** Arms the process's schedules again; resolves when they are (a failure is reported as a problem of the process, never thrown). */
    refresh: (accountId: string, processId: string) => refresh(ctx, accountId, processId),
    /** Arms every stored schedule and catches up missed fires; resolves when done. */
    async start(): Promise<void> {
      const processes = await deps.store.processes.list();
      await Promise.all(processes.map((p) => refresh(ctx, p.accountId, p.processId, () => catchUp(ctx, p.accountId, p.processId))));
    },
    /** The next firing times of a process's schedules (null where one is not armed). */
    next(accountId: string, processId: string): (string | null)[] {
      return (ctx.armed.get(keyOf(accountId, processId))?.jobs ?? []).map((job) => job?.nextRun()?.toISOString() ?? null);
    },
    /** The schedules of a process that could not be armed. */
    problems(accountId: string, processId: string): LoadProblem[] {
      return ctx.armed.get(keyOf(accountId, processId))?.problems ?? [];
    },
    /** How many stored schedules are not armed, over every process. */
    problemCount(): number {
      let count = 0;
      for (const armed of ctx.armed.values()) count += armed.problems.length;
      return count;
    },
    stop(): void {
      ctx.stopped = true;
      for (const armed of ctx.armed.values()) for (const job of armed.jobs) job?.stop();
      ctx.armed.clear();
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
