/**
 * Schedules: cron timers for the active deployments, rebuilt from the store at start
 * (so schedules survive a restart) and whenever a process's deployment or schedules
 * change. A firing starts an execution with trigger "schedule" for its nominal fire time
 * (the time of the cron expression, not the clock's) and is recorded in the store; at
 * start, a schedule whose `catchUp` is `once` and that missed at least one fire while
 * the runtime was stopped fires one catch-up run, for the last fire it missed. A stored
 * schedule that cannot be armed (written by an older version that did not check it) is
 * reported, not fatal: the other schedules are armed.
 *
 * With no head node: every node sharing a store arms every timer; the execution of a
 * fire is unique per process and nominal time in the store, so of the nodes that fire
 * it only one starts it. A change made on one node reaches the others through the
 * store's notifications; after a lost listening connection, and every `resyncMs`, each
 * node reads the schedules again and re-arms what changed.
 */
import { Cron } from 'croner';
import { messageOf, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Store, ScheduleRecord, ScheduledFire, ProcessRecord } from '../store/types.js';

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
  /** Starts the run of one fire; it must not throw (a fire another node started already is its own to tell). */
  fire(accountId: string, processId: string, fire: ScheduledFire): void;
  /** The clock; tests give their own to prove catch-up without waiting. */
  now?: () => Date;
  /** This node's id: a change it published is not armed twice. */
  nodeId?: string;
  /** How often the schedules are read again when the store has notifications, in case one was lost (default 60 s). */
  resyncMs?: number;
}

/** The channel schedule changes go out on. */
export const scheduleChannel = 'schedules';

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

/** Past this many pattern times between two fires, the search for the nominal one gives up (the clock jumped). */
const nominalSearchLimit = 100_000;

/**
 * The nominal time of a fire: the last time of the schedule's pattern after `since` and
 * not after `now`. Every node that fires it finds the same one, whatever its clock's skew
 * within the schedule's period. undefined when there is none.
 */
export function nominalFire(job: Cron, since: Date, now: Date): Date | undefined {
  let latest: Date | undefined;
  let n = 0;
  for (let at = job.nextRun(since); at && at <= now && n < nominalSearchLimit; at = job.nextRun(at), n++) latest = at;
  return latest;
}

/** A fire of schedule `s` at `at`: its key names the schedule by its cron and time zone, so a schedule moved in the list is the same one. */
export function scheduledFire(s: ScheduleRecord, at: Date): ScheduledFire {
  const iso = at.toISOString();
  return { at: iso, key: [iso, s.cron, s.timezone].filter((part) => part !== undefined && part !== '').join(' ') };
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

interface ArmedJob {
  job: Cron;
  /** The nominal time of its last fire, or when it was armed: where the search for the next one starts. */
  since: Date;
}

interface Armed {
  /** One entry per schedule, in order; undefined where it could not be armed. */
  jobs: (ArmedJob | undefined)[];
  problems: LoadProblem[];
  /** What was armed (active version and schedules); a resync re-arms a process whose stored one differs. */
  fingerprint: string;
}

interface SchedulerContext {
  deps: SchedulerDeps;
  now: () => Date;
  armed: Map<string, Armed>;
  /** The refresh of each process in flight: refreshes of one process run one after the other. */
  pending: Map<string, Promise<void>>;
  stopped: boolean;
  /** Stops listening to the other nodes' changes; the resync timer. */
  unlisten?: () => void;
  resync?: NodeJS.Timeout;
}

/** What a resync compares: '' for a process with nothing to arm. */
function fingerprintOf(record: ProcessRecord | undefined): string {
  if (!record || record.activeVersion === null || (record.schedules.length === 0 && !record.schedulesUnreadable)) return '';
  return JSON.stringify([record.activeVersion, record.schedules, record.schedulesUnreadable === true]);
}

/** Fires at the nominal time `at`, and records the fire; the promise (never rejected) resolves when it is recorded — the timer does not wait for it. */
function fired(ctx: SchedulerContext, accountId: string, processId: string, s: ScheduleRecord, at: Date): Promise<void> {
  const { logger, store } = ctx.deps;
  const fire = scheduledFire(s, at);
  logger.info({ process: processId, cron: s.cron, at: fire.at }, 'schedule fired');
  const recorded = store.processes.recordFire(accountId, processId, s, fire.at).catch((error: unknown) => {
    logger.error({ process: processId, cron: s.cron, err: error }, 'the schedule fired but its fire time could not be recorded');
  });
  ctx.deps.fire(accountId, processId, fire);
  return recorded;
}

/** The timer's callback: finds the nominal time of this fire, then fires. */
function onTimer(ctx: SchedulerContext, accountId: string, processId: string, s: ScheduleRecord, armedJob: ArmedJob): void {
  const now = ctx.now();
  const at = nominalFire(armedJob.job, armedJob.since, now);
  if (!at) {
    ctx.deps.logger.warn({ process: processId, cron: s.cron, since: armedJob.since.toISOString(), now: now.toISOString() }, 'the timer fired with no fire time of its schedule due (the clock moved back?); skipped');
    return;
  }
  armedJob.since = at;
  void fired(ctx, accountId, processId, s, at);
}

function armOne(ctx: SchedulerContext, accountId: string, processId: string, s: ScheduleRecord, index: number, armed: Armed): void {
  const problem = scheduleProblem(s, ctx.now());
  if (problem === undefined) {
    try {
      const armedJob = { since: ctx.now() } as ArmedJob;
      armedJob.job = new Cron(s.cron, cronOptions(s), () => onTimer(ctx, accountId, processId, s, armedJob));
      armed.jobs.push(armedJob);
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
  for (const armedJob of ctx.armed.get(keyOf(accountId, processId))?.jobs ?? []) armedJob?.job.stop();
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
    ctx.armed.set(keyOf(accountId, processId), { jobs: [], problems: [{ path: '/schedules', code: 'QUARK_ERR_SCHEDULE_INVALID', message }], fingerprint: fingerprintOf(record) });
    return;
  }
  if (record.schedules.length === 0) return;
  const armed: Armed = { jobs: [], problems: [], fingerprint: fingerprintOf(record) };
  record.schedules.forEach((s, i) => armOne(ctx, accountId, processId, s, i, armed));
  ctx.armed.set(keyOf(accountId, processId), armed);
}

/**
 * At start, for each armed schedule: the fires missed since it last fired (or was set)
 * are counted; `once` fires one catch-up run, for the last missed fire (nodes starting
 * together find the same one, and only one of them starts it), `skip` says in the log
 * what was skipped. Either way the schedule counts from that last missed fire.
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
    const latest = missed === 0 ? undefined : nominalFire(armed.jobs[i]!.job, new Date(last!), now);
    if (!latest) continue;
    const policy = s.catchUp ?? 'skip';
    const fields = { process: processId, cron: s.cron, missed: missed >= missedCountLimit ? `at least ${missed}` : String(missed), since: last, catchUp: policy };
    if (policy === 'once') logger.info(fields, 'fires were missed while the runtime was stopped: one catch-up run');
    else logger.warn(fields, 'fires were missed while the runtime was stopped: skipped (catchUp: skip)');
    if (policy === 'once' && !caughtUp) {
      // one run for the process, even when several of its schedules missed fires
      caughtUp = true;
      await fired(ctx, accountId, processId, s, latest);
    } else {
      await store.processes.recordFire(accountId, processId, s, latest.toISOString());
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
  const armed = ctx.armed.get(keyOf(accountId, processId)) ?? { jobs: [], problems: [], fingerprint: '' };
  armed.problems.push({ path: '/schedules', code: 'QUARK_ERR_SCHEDULE_INVALID', message: `cannot be armed: ${messageOf(error)}` });
  ctx.armed.set(keyOf(accountId, processId), armed);
}

/** A change made here: re-armed here, and told to the other nodes (a failure to tell them is logged; their resync catches up). */
async function changed(ctx: SchedulerContext, accountId: string, processId: string): Promise<void> {
  await refresh(ctx, accountId, processId);
  const notifications = ctx.deps.store.notifications;
  if (!notifications) return;
  try {
    await notifications.notify(scheduleChannel, JSON.stringify({ node: ctx.deps.nodeId ?? null, account: accountId, process: processId }));
  } catch (error) {
    ctx.deps.logger.warn({ process: processId, account: accountId, err: error }, 'the other nodes could not be told of a schedule change; they arm it at their next resync');
  }
}

/** Another node's change: re-armed here. A message that cannot be read makes this node read every schedule again. */
function heard(ctx: SchedulerContext, payload: string): void {
  let change: { node?: unknown; account?: unknown; process?: unknown };
  try {
    change = JSON.parse(payload) as typeof change;
  } catch {
    change = {};
  }
  if (typeof change.account !== 'string' || typeof change.process !== 'string') {
    void resync(ctx);
    return;
  }
  if (change.node !== null && change.node === ctx.deps.nodeId) return;
  ctx.deps.logger.debug({ process: change.process, account: change.account, from: change.node }, 'a schedule change from another node: arming it here');
  void refresh(ctx, change.account, change.process);
}

/** Reads every process and re-arms those whose stored schedules differ from what is armed (resolves when done; never rejects). */
async function resync(ctx: SchedulerContext): Promise<void> {
  if (ctx.stopped) return;
  try {
    const processes = await ctx.deps.store.processes.list();
    const stored = new Set(processes.map((p) => keyOf(p.accountId, p.processId)));
    const stale = processes.filter((p) => fingerprintOf(p) !== (ctx.armed.get(keyOf(p.accountId, p.processId))?.fingerprint ?? ''));
    const gone = [...ctx.armed.keys()].filter((key) => !stored.has(key)).map((key) => key.split('\u0000') as [string, string]);
    await Promise.all([...stale.map((p) => refresh(ctx, p.accountId, p.processId)), ...gone.map(([a, p]) => refresh(ctx, a, p))]);
  } catch (error) {
    ctx.deps.logger.warn({ err: error }, 'the schedules could not be read again; trying at the next resync');
  }
}

/** With a shared store: the other nodes' changes are armed as they come, and everything is read again after a gap and every resyncMs. */
async function follow(ctx: SchedulerContext): Promise<void> {
  const notifications = ctx.deps.store.notifications;
  if (!notifications) return;
  ctx.resync = setInterval(() => void resync(ctx), ctx.deps.resyncMs ?? 60_000);
  ctx.resync.unref();
  try {
    ctx.unlisten = await notifications.listen(scheduleChannel, {
      message: (payload) => heard(ctx, payload),
      dropped: () => ctx.deps.logger.warn('the connection that hears schedule changes from the other nodes was lost; opening it again'),
      resumed: () => {
        ctx.deps.logger.info('hearing schedule changes again; reading every schedule for what changed meanwhile');
        void resync(ctx);
      },
    });
    // stopped while the listening started
    if (ctx.stopped) ctx.unlisten();
  } catch (error) {
    ctx.deps.logger.error({ err: error }, 'schedule changes made on other nodes cannot be heard; they are armed here at each resync');
  }
}

export function createScheduler(deps: SchedulerDeps) {
  const ctx: SchedulerContext = { deps, now: deps.now ?? (() => new Date()), armed: new Map(), pending: new Map(), stopped: false };
  return {
    /** After a change made on this node: arms the process's schedules again and tells the other nodes; resolves when armed (a failure is reported as a problem of the process, never thrown). */
    refresh: (accountId: string, processId: string) => changed(ctx, accountId, processId),
    /** Listens to the other nodes' changes (a shared store), then arms every stored schedule and catches up missed fires; resolves when done. */
    async start(): Promise<void> {
      // listening first: a change made while the schedules are read is heard, not lost
      await follow(ctx);
      const processes = await deps.store.processes.list();
      await Promise.all(processes.map((p) => refresh(ctx, p.accountId, p.processId, () => catchUp(ctx, p.accountId, p.processId))));
    },
    /** Reads every schedule again and re-arms what changed (what a lost notification would have said). */
    resync: () => resync(ctx),
    /** The next firing times of a process's schedules (null where one is not armed). */
    next(accountId: string, processId: string): (string | null)[] {
      return (ctx.armed.get(keyOf(accountId, processId))?.jobs ?? []).map((armedJob) => armedJob?.job.nextRun()?.toISOString() ?? null);
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
      ctx.unlisten?.();
      if (ctx.resync) clearInterval(ctx.resync);
      for (const armed of ctx.armed.values()) for (const armedJob of armed.jobs) armedJob?.job.stop();
      ctx.armed.clear();
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
