/**
 * Deployments: versioned process definitions per account. Deploy validates everything
 * first (validate.ts) and records nothing when anything is wrong; each deploy and each
 * rollback makes a new version; undeploy keeps the history.
 */
import { quarkError, describeProblems, type FieldProblem } from '../core/errors.js';
import { nowIso } from '../core/ids.js';
import type { AccessControl, Caller } from '../accounts/access.js';
import type { Validator } from '../schema/index.js';
import type { Store, ScheduleRecord, DeploymentRecord } from '../store/types.js';
import type { ProcessDefinition } from './definition.js';
import { validateProcess } from './validate.js';
import { scheduleProblem, type LoadProblem } from './scheduler.js';

export interface DeploymentView {
  process: string;
  name: string;
  version: number;
  deployedAt: string;
  deployedBy: string;
  note?: string;
}

export interface DeploymentSummary {
  process: string;
  name: string;
  /** null once undeployed. */
  activeVersion: number | null;
  latestVersion: number;
  updatedAt: string;
  schedules: ScheduleRecord[];
  /** Stored records of the process the runtime could not load or arm (absent when none). */
  problems?: LoadProblem[];
}

export interface DeploymentDetail extends DeploymentSummary {
  version: number;
  /** null when the stored definition cannot be read (see problems). */
  definition: ProcessDefinition | null;
  versions: DeploymentView[];
}

/** The answer of a deploy or a rollback: the new version and the schedules it runs on. */
export interface DeployedView extends DeploymentView {
  /** Kept from the previous active version; a process deployed anew (or after an undeploy) has none. */
  schedules: ScheduleRecord[];
}

export interface DeploymentDeps {
  store: Store;
  access: AccessControl;
  validateSchema: Validator;
  /** Resolves a connection's operation for an account (throws a QuarkError when it cannot). */
  operation(caller: Caller, ref: { connection: string; operation: string }): Promise<{ validateParameters: Validator }>;
  /** Told when a process's active version or schedules change. */
  onChange(accountId: string, processId: string): Promise<void>;
  /** The process's schedules that could not be armed (from the scheduler). */
  scheduleProblems?(accountId: string, processId: string): LoadProblem[];
  /** Why a saved connection (id or name) cannot run, e.g. its connector is not loaded; undefined when it can (or does not exist). */
  connectionProblem?(accountId: string, connection: string): Promise<string | undefined>;
  /** limits.maxNestingDepth, checked at deploy (and for test-mode definitions). */
  maxNestingDepth: number;
}

/** The connections a definition's operation steps (and operation start) use, with their pointers. */
function connectionsOf(definition: ProcessDefinition): { path: string; connection: string }[] {
  const used = definition.steps.flatMap((step, i) => (step.kind === 'operation' ? [{ path: `/steps/${i}/connection`, connection: step.connection }] : []));
  return definition.start.kind === 'operation' ? [{ path: '/start/connection', connection: definition.start.connection }, ...used] : used;
}

const viewOf = (d: DeploymentRecord): DeploymentView => ({
  process: d.processId,
  name: d.name,
  version: d.version,
  deployedAt: d.deployedAt,
  deployedBy: d.deployedBy,
  ...(d.note ? { note: d.note } : {}),
});

export function createDeployments(deps: DeploymentDeps) {
  const { store, access } = deps;
  // a version never changes: the parsed definition of each process's active version is
  // kept after the first read, one per process (a new version replaces it), so memory
  // does not grow with every version that ever ran
  const definitions = new Map<string, { version: number; definition: ProcessDefinition }>();

  /** The active version's definition; throws QUARK_ERR_PROCESS_UNREADABLE when its stored JSON is damaged. */
  async function active(accountId: string, processId: string): Promise<{ definition: ProcessDefinition; version: number } | undefined> {
    const record = await store.processes.get(accountId, processId);
    const key = `${accountId}\u0000${processId}`;
    if (!record || record.activeVersion === null) {
      definitions.delete(key);
      return undefined;
    }
    const cached = definitions.get(key);
    if (cached?.version === record.activeVersion) return cached;
    const deployment = await store.processes.version(accountId, processId, record.activeVersion);
    if (!deployment) return undefined;
    if (deployment.definition === null) throw unreadable(processId, record.activeVersion);
    const entry = { version: record.activeVersion, definition: deployment.definition as unknown as ProcessDefinition };
    definitions.set(key, entry);
    return entry;
  }

  /** active(), with a damaged definition read as none (for checks that look across processes). */
  async function readableActive(accountId: string, processId: string) {
    try {
      return await active(accountId, processId);
    } catch {
      return undefined;
    }
  }

  /** What the runtime could not load for a process: its definition, its connections' connectors, its schedules. */
  async function problemsOf(accountId: string, processId: string, activeVersion: number | null): Promise<LoadProblem[]> {
    const problems: LoadProblem[] = [];
    if (activeVersion !== null && (await store.processes.version(accountId, processId, activeVersion))?.definition === null) {
      problems.push({ path: '/activeVersion', code: 'QUARK_ERR_PROCESS_UNREADABLE', message: unreadable(processId, activeVersion).message });
    }
    const definition = (await readableActive(accountId, processId))?.definition;
    for (const use of definition && deps.connectionProblem ? connectionsOf(definition) : []) {
      const problem = await deps.connectionProblem!(accountId, use.connection);
      if (problem !== undefined) problems.push({ path: use.path, code: 'QUARK_ERR_CONNECTOR_NOT_FOUND', message: problem });
    }
    return [...problems, ...(deps.scheduleProblems?.(accountId, processId) ?? [])];
  }

  /** Like requireActive, without reading the definition: a damaged one can still be undeployed or rescheduled. */
  async function requireDeployed(accountId: string, processId: string): Promise<void> {
    const record = await store.processes.get(accountId, processId);
    if (!record || record.activeVersion === null) throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', `no deployed process "${processId}" in your account`);
  }

  async function requireActive(accountId: string, processId: string) {
    const found = await active(accountId, processId);
    if (!found) throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', `no deployed process "${processId}" in your account`);
    return found;
  }

  /** Validates a definition for this caller; throws QUARK_ERR_PROCESS_INVALID with every problem. */
  async function validate(caller: Caller, input: unknown): Promise<ProcessDefinition> {
    access.requireMember(caller, 'deploy or run processes');
    const problems = await validateProcess(input, {
      validateSchema: deps.validateSchema,
      operation: (ref) => deps.operation(caller, ref),
      deployed: async (id) => (await readableActive(caller.account.id, id))?.definition,
      maxNestingDepth: deps.maxNestingDepth,
    });
    if (problems.length > 0) throw invalid(problems);
    return input as ProcessDefinition;
  }

  /**
   * Records a new active version. Schedules stay with a process while it is deployed; a
   * process deployed anew, or after an undeploy, starts with none (undeploy removes them).
   */
  async function record(caller: Caller, definition: ProcessDefinition, note: string | null): Promise<DeployedView> {
    const d: Omit<DeploymentRecord, 'version'> = {
      accountId: caller.account.id,
      processId: definition.id,
      name: definition.name,
      definition: definition as unknown as Record<string, unknown>,
      deployedAt: nowIso(),
      deployedBy: caller.account.name,
      note,
    };
    // the store allocates the version: parallel deploys of one process get distinct ones
    const { version, schedules } = await store.transaction(async (tx) => {
      const before = await tx.processes.get(d.accountId, d.processId);
      const allocated = await tx.processes.deploy(d);
      if (before && before.activeVersion === null && before.schedules.length > 0) await tx.processes.setSchedules(d.accountId, d.processId, [], d.deployedAt);
      return { version: allocated, schedules: (await tx.processes.get(d.accountId, d.processId))?.schedules ?? [] };
    });
    await deps.onChange(caller.account.id, definition.id);
    return { ...viewOf({ ...d, version }), schedules };
  }

  async function summary(accountId: string, processId: string): Promise<DeploymentSummary> {
    const p = await store.processes.get(accountId, processId);
    if (!p) throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', `no process "${processId}" in your account`);
    const latest = (await store.processes.version(accountId, processId, await store.processes.latestVersion(accountId, processId)))!;
    const problems = await problemsOf(accountId, processId, p.activeVersion);
    return { process: processId, name: latest.name, activeVersion: p.activeVersion, latestVersion: latest.version, updatedAt: p.updatedAt, schedules: p.schedules, ...(problems.length > 0 ? { problems } : {}) };
  }

  /** The other deployed processes of the account that call `processId`. */
  async function callersOf(accountId: string, processId: string): Promise<string[]> {
    const found: string[] = [];
    for (const p of await store.processes.list(accountId)) {
      if (p.processId === processId) continue;
      const definition = (await readableActive(accountId, p.processId))?.definition;
      if (definition?.steps.some((s) => s.kind === 'process-call' && s.process === processId)) found.push(p.processId);
    }
    return found;
  }

  return {
    validate,
    active,
    /** How many parsed definitions are kept in memory: at most one per deployed process. */
    cachedDefinitions: () => definitions.size,
    requireActive,
    async deploy(caller: Caller, input: unknown): Promise<DeployedView> {
      return record(caller, await validate(caller, input), null);
    },
    async list(caller: Caller): Promise<DeploymentSummary[]> {
      const processes = await store.processes.list(caller.account.id);
      return Promise.all(processes.map((p) => summary(caller.account.id, p.processId)));
    },
    async get(caller: Caller, processId: string, version?: number): Promise<DeploymentDetail> {
      const head = await summary(caller.account.id, processId);
      const wanted = version ?? head.activeVersion ?? head.latestVersion;
      const deployment = await store.processes.version(caller.account.id, processId, wanted);
      if (!deployment) throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', `process "${processId}" has no version ${wanted}`);
      const versions = (await store.processes.versions(caller.account.id, processId)).map(viewOf);
      return { ...head, version: deployment.version, definition: deployment.definition as unknown as ProcessDefinition | null, versions };
    },
    /** Deploys an earlier version's definition again, as a new version (validated again: connections may have changed). */
    async rollback(caller: Caller, processId: string, version: number): Promise<DeployedView> {
      access.requireMember(caller, 'deploy processes');
      const earlier = await store.processes.version(caller.account.id, processId, version);
      if (!earlier) throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', `process "${processId}" has no version ${version}`);
      if (earlier.definition === null) throw unreadable(processId, version);
      return record(caller, await validate(caller, earlier.definition), `rollback to version ${version}`);
    },
    /** Stops a process and removes its schedules (the answer's removedSchedules lists them). */
    async undeploy(caller: Caller, processId: string): Promise<DeploymentSummary & { removedSchedules: ScheduleRecord[] }> {
      access.requireMember(caller, 'undeploy processes');
      await requireDeployed(caller.account.id, processId);
      const callers = await callersOf(caller.account.id, processId);
      if (callers.length > 0) {
        throw quarkError('QUARK_ERR_PROCESS_IN_USE', `process "${processId}" is called by deployed process(es) ${callers.map((id) => `"${id}"`).join(', ')}; undeploy or change them first`);
      }
      const removedSchedules = await store.transaction(async (tx) => {
        const at = nowIso();
        const removed = (await tx.processes.get(caller.account.id, processId))?.schedules ?? [];
        await tx.processes.setActive(caller.account.id, processId, null, at);
        await tx.processes.setSchedules(caller.account.id, processId, [], at);
        return removed;
      });
      await deps.onChange(caller.account.id, processId);
      return { ...(await summary(caller.account.id, processId)), removedSchedules };
    },
    async setSchedules(caller: Caller, processId: string, schedules: ScheduleRecord[]): Promise<DeploymentSummary> {
      access.requireMember(caller, 'schedule processes');
      await requireDeployed(caller.account.id, processId);
      const problems = schedules.flatMap((s, i) => scheduleProblems(s, `/schedules/${i}`));
      if (problems.length > 0) throw quarkError('QUARK_ERR_SCHEDULE_INVALID', `invalid schedule: ${describeProblems(problems)}`, { problems });
      await store.processes.setSchedules(caller.account.id, processId, schedules, nowIso());
      await deps.onChange(caller.account.id, processId);
      return summary(caller.account.id, processId);
    },
  };
}

/**
 * A schedule checked the way the scheduler arms it, before it is stored: the cron alone
 * first (a problem at /cron), then with the time zone (a problem at /timezone).
 */
export function scheduleProblems(s: ScheduleRecord, path: string): FieldProblem[] {
  const cron = scheduleProblem({ cron: s.cron });
  if (cron !== undefined) return [{ path: `${path}/cron`, message: `is not a cron expression the scheduler can arm: ${cron}` }];
  if (s.timezone === undefined) return [];
  const zone = scheduleProblem(s);
  if (zone === undefined) return [];
  return [{ path: `${path}/timezone`, message: `is not a time zone the scheduler knows (an IANA name such as Europe/Paris or UTC): ${zone}` }];
}

function unreadable(processId: string, version: number) {
  return quarkError('QUARK_ERR_PROCESS_UNREADABLE', `the stored definition of process "${processId}" version ${version} cannot be read (damaged store record); deploy the process again, or roll back to a readable version`);
}

export function invalid(problems: FieldProblem[]) {
  const shown = describeProblems(problems.slice(0, 5));
  return quarkError('QUARK_ERR_PROCESS_INVALID', `the process definition has ${problems.length} problem(s): ${shown}${problems.length > 5 ? '; …' : ''}`, { problems });
}

export type Deployments = ReturnType<typeof createDeployments>;
