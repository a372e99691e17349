/**
 * Deployments: versioned process definitions per account. Deploy validates everything
 * first (validate.ts) and records nothing when anything is wrong; each deploy and each
 * rollback makes a new version; undeploy keeps the history.
 */
import { Cron } from 'croner';
import { quarkError, messageOf, type FieldProblem } from '../core/errors.js';
import { nowIso } from '../core/ids.js';
import type { AccessControl, Caller } from '../accounts/access.js';
import type { Validator } from '../schema/index.js';
import type { Store, DeploymentRecord, ScheduleRecord } from '../store/types.js';
import type { ProcessDefinition } from './definition.js';
import { validateProcess } from './validate.js';

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
}

export interface DeploymentDetail extends DeploymentSummary {
  version: number;
  definition: ProcessDefinition;
  versions: DeploymentView[];
}

export interface DeploymentDeps {
  store: Store;
  access: AccessControl;
  validateSchema: Validator;
  /** Resolves a connection's operation for an account (throws a QuarkError when it cannot). */
  operation(caller: Caller, ref: { connection: string; operation: string }): { validateParameters: Validator };
  /** Told when a process's active version or schedules change. */
  onChange(accountId: string, processId: string): void;
  /** limits.maxNestingDepth, checked at deploy (and for test-mode definitions). */
  maxNestingDepth: number;
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

  function active(accountId: string, processId: string): { definition: ProcessDefinition; version: number } | undefined {
    const record = store.processes.get(accountId, processId);
    const key = `${accountId}\u0000${processId}`;
    if (!record || record.activeVersion === null) {
      definitions.delete(key);
      return undefined;
    }
    const cached = definitions.get(key);
    if (cached?.version === record.activeVersion) return cached;
    const deployment = store.processes.version(accountId, processId, record.activeVersion);
    if (!deployment) return undefined;
    const entry = { version: record.activeVersion, definition: deployment.definition as unknown as ProcessDefinition };
    definitions.set(key, entry);
    return entry;
  }

  function requireActive(accountId: string, processId: string) {
    const found = active(accountId, processId);
    if (!found) throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', `no deployed process "${processId}" in your account`);
    return found;
  }

  /** Validates a definition for this caller; throws QUARK_ERR_PROCESS_INVALID with every problem. */
  function validate(caller: Caller, input: unknown): ProcessDefinition {
    access.requireMember(caller, 'deploy or run processes');
    const problems = validateProcess(input, {
      validateSchema: deps.validateSchema,
      operation: (ref) => deps.operation(caller, ref),
      deployed: (id) => active(caller.account.id, id)?.definition,
      maxNestingDepth: deps.maxNestingDepth,
    });
    if (problems.length > 0) throw invalid(problems);
    return input as ProcessDefinition;
  }

  function record(caller: Caller, definition: ProcessDefinition, note: string | null): DeploymentView {
    const deployment = store.transaction(() => {
      const d: DeploymentRecord = {
        accountId: caller.account.id,
        processId: definition.id,
        version: store.processes.latestVersion(caller.account.id, definition.id) + 1,
        name: definition.name,
        definition: definition as unknown as Record<string, unknown>,
        deployedAt: nowIso(),
        deployedBy: caller.account.name,
        note,
      };
      store.processes.deploy(d);
      return d;
    });
    deps.onChange(caller.account.id, definition.id);
    return viewOf(deployment);
  }

  function summary(accountId: string, processId: string): DeploymentSummary {
    const p = store.processes.get(accountId, processId);
    if (!p) throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', `no process "${processId}" in your account`);
    const latest = store.processes.version(accountId, processId, store.processes.latestVersion(accountId, processId))!;
    return { process: processId, name: latest.name, activeVersion: p.activeVersion, latestVersion: latest.version, updatedAt: p.updatedAt, schedules: p.schedules };
  }

  return {
    validate,
    active,
    /** How many parsed definitions are kept in memory: at most one per deployed process. */
    cachedDefinitions: () => definitions.size,
    requireActive,
    deploy(caller: Caller, input: unknown): DeploymentView {
      return record(caller, validate(caller, input), null);
    },
    list(caller: Caller): DeploymentSummary[] {
      return store.processes.list(caller.account.id).map((p) => summary(caller.account.id, p.processId));
    },
    get(caller: Caller, processId: string, version?: number): DeploymentDetail {
      const head = summary(caller.account.id, processId);
      const wanted = version ?? head.activeVersion ?? head.latestVersion;
      const deployment = store.processes.version(caller.account.id, processId, wanted);
      if (!deployment) throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', `process "${processId}" has no version ${wanted}`);
      return { ...head, version: deployment.version, definition: deployment.definition as unknown as ProcessDefinition, versions: store.processes.versions(caller.account.id, processId).map(viewOf) };
    },
    /** Deploys an earlier version's definition again, as a new version (validated again: connections may have changed). */
    rollback(caller: Caller, processId: string, version: number): DeploymentView {
      access.requireMember(caller, 'deploy processes');
      const earlier = store.processes.version(caller.account.id, processId, version);
      if (!earlier) throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', `process "${processId}" has no version ${version}`);
      return record(caller, validate(caller, earlier.definition), `rollback to version ${version}`);
    },
    undeploy(caller: Caller, processId: string): DeploymentSummary {
      access.requireMember(caller, 'undeploy processes');
      requireActive(caller.account.id, processId);
      const callers = store.processes
        .list(caller.account.id)
        .filter((p) => p.processId !== processId && active(caller.account.id, p.processId)?.definition.steps.some((s) => s.kind === 'process-call' && s.process === processId));
      if (callers.length > 0) {
        throw quarkError('QUARK_ERR_PROCESS_IN_USE', `process "${processId}" is called by deployed process(es) ${callers.map((p) => `"${p.processId}"`).join(', ')}; undeploy or change them first`);
      }
      store.processes.setActive(caller.account.id, processId, null, nowIso());
      deps.onChange(caller.account.id, processId);
      return summary(caller.account.id, processId);
    },
    setSchedules(caller: Caller, processId: string, schedules: ScheduleRecord[]): DeploymentSummary {
      access.requireMember(caller, 'schedule processes');
      requireActive(caller.account.id, processId);
      const problems: FieldProblem[] = [];
      schedules.forEach((s, i) => {
        try {
          new Cron(s.cron, { paused: true, ...(s.timezone ? { timezone: s.timezone } : {}) }).stop();
        } catch (error) {
          problems.push({ path: `/schedules/${i}`, message: `is not a valid schedule: ${messageOf(error)}` });
        }
      });
      if (problems.length > 0) throw quarkError('QUARK_ERR_SCHEDULE_INVALID', `invalid schedule: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, { problems });
      store.processes.setSchedules(caller.account.id, processId, schedules, nowIso());
      deps.onChange(caller.account.id, processId);
      return summary(caller.account.id, processId);
    },
  };
}

export function invalid(problems: FieldProblem[]) {
  const shown = problems.slice(0, 5).map((p) => `${p.path} ${p.message}`).join('; ');
  return quarkError('QUARK_ERR_PROCESS_INVALID', `the process definition has ${problems.length} problem(s): ${shown}${problems.length > 5 ? '; …' : ''}`, { problems });
}

export type Deployments = ReturnType<typeof createDeployments>;
