/**
 * Deploy-time validation: everything a run would trip on, all problems at once, each
 * with the JSON pointer of the offending field. Schema first (the rest needs its shape),
 * then step ids, references, graph shape, connections and operations, parameters,
 * expressions and called processes.
 */
import { QuarkError, messageOf, type FieldProblem } from '../core/errors.js';
import { unescapePointer } from '../core/json-pointer.js';
import { findTooDeep, tooDeepMessage } from '../core/json-depth.js';
import type { Validator } from '../schema/index.js';
import { expressionError } from '../engine/expressions.js';
import { expressionsOf, isExpression, targetsOf, type ProcessDefinition, type Step } from './definition.js';

export interface ValidationDeps {
  validateSchema: Validator;
  /** Resolves a connection's operation for the deploying account; throws a QuarkError when it cannot. */
  operation(ref: { connection: string; operation: string }): Promise<{ validateParameters: Validator }>;
  /** The active definition of another deployed process of the account, if any. */
  deployed(processId: string): Promise<ProcessDefinition | undefined>;
  /** limits.maxNestingDepth: a definition nested deeper is refused before anything else reads it. */
  maxNestingDepth: number;
}

export async function validateProcess(input: unknown, deps: ValidationDeps): Promise<FieldProblem[]> {
  // storing, cloning or posting a value nested thousands of levels deep overflows the stack
  const deep = findTooDeep(input, deps.maxNestingDepth);
  if (deep) return [{ path: deep.path, message: tooDeepMessage(deep) }];
  const schemaProblems = deps.validateSchema(input);
  if (schemaProblems.length > 0) return schemaProblems;
  const definition = input as ProcessDefinition;
  const problems: FieldProblem[] = [];
  const index = new Map<string, number>();
  definition.steps.forEach((step, i) => {
    const first = index.get(step.id);
    if (first !== undefined) problems.push({ path: `/steps/${i}/id`, message: `duplicates the id of /steps/${first}` });
    else index.set(step.id, i);
  });

  // references to steps
  const edges = new Map<string, string[]>();
  const reference = (id: string, path: string) => {
    if (!index.has(id)) problems.push({ path, message: `refers to step "${id}", which is not in this process` });
  };
  if (definition.start.next !== undefined) reference(definition.start.next, '/start/next');
  definition.steps.forEach((step, i) => {
    const targets = targetsOf(step, `/steps/${i}`);
    for (const t of targets) reference(t.id, t.path);
    if (index.get(step.id) === i) edges.set(step.id, targets.map((t) => t.id).filter((id) => index.has(id)));
  });

  // every step reachable from the start
  const reached = new Set<string>();
  const stack = definition.start.next !== undefined && index.has(definition.start.next) ? [definition.start.next] : [];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    stack.push(...(edges.get(id) ?? []));
  }
  definition.steps.forEach((step, i) => {
    if (!reached.has(step.id) && index.get(step.id) === i) problems.push({ path: `/steps/${i}`, message: `step "${step.id}" is not reachable from the start` });
  });

  // cycles (documents would loop for ever; repeat work with a try step's retries)
  const state = new Map<string, 'open' | 'done'>();
  const reportedCycles = new Set<string>();
  const visit = (id: string, trail: string[]) => {
    state.set(id, 'open');
    for (const next of edges.get(id) ?? []) {
      if (state.get(next) === 'open') {
        const cycle = [...trail.slice(trail.indexOf(next)), id, next];
        const key = [...new Set(cycle)].sort().join(',');
        if (!reportedCycles.has(key)) {
          reportedCycles.add(key);
          problems.push({ path: `/steps/${index.get(id)}`, message: `closes a cycle (${cycle.join(' → ')}); processes may not loop: use a try step's retries to repeat work` });
        }
      } else if (!state.has(next)) visit(next, [...trail, id]);
    }
    state.set(id, 'done');
  };
  for (const step of definition.steps) if (!state.has(step.id)) visit(step.id, []);

  // connections, operations, parameters
  const checkOperation = async (step: { connection: string; operation: string; parameters?: Record<string, unknown> }, base: string) => {
    let resolved: { validateParameters: Validator };
    try {
      resolved = await deps.operation(step);
    } catch (error) {
      const code = error instanceof QuarkError ? error.code : undefined;
      const field = code === 'QUARK_ERR_OPERATION_NOT_FOUND' ? 'operation' : 'connection';
      problems.push({ path: `${base}/${field}`, message: messageOf(error) });
      return;
    }
    const literal: Record<string, unknown> = {};
    const computed = new Set<string>();
    for (const [name, value] of Object.entries(step.parameters ?? {})) {
      if (isExpression(value)) computed.add(name);
      else literal[name] = value;
    }
    for (const p of resolved.validateParameters(literal)) {
      // a parameter computed per document is checked when it is computed
      const field = p.path.split('/')[1];
      if (field !== undefined && computed.has(unescapePointer(field))) continue;
      problems.push({ path: `${base}/parameters${p.path === '/' ? '' : p.path}`, message: p.message });
    }
  };
  if (definition.start.kind === 'operation') await checkOperation(definition.start, '/start');
  for (const [i, step] of definition.steps.entries()) {
    if (step.kind === 'operation') await checkOperation(step, `/steps/${i}`);
  }

  // expressions compile
  const expressions = [...expressionsOf(definition.start as Step, '/start'), ...definition.steps.flatMap((step, i) => expressionsOf(step, `/steps/${i}`))];
  for (const { expression, path } of expressions) {
    const error = expressionError(expression);
    if (error) problems.push({ path, message: error });
  }

  // called processes: deployed, start with documents, no recursion
  for (const [i, step] of definition.steps.entries()) {
    if (step.kind !== 'process-call') continue;
    const path = `/steps/${i}/process`;
    if (step.process === definition.id) {
      problems.push({ path, message: 'a process cannot call itself' });
      continue;
    }
    const callee = await deps.deployed(step.process);
    if (!callee) {
      problems.push({ path, message: `no deployed process "${step.process}" in your account; deploy it first` });
      continue;
    }
    if (callee.start.kind !== 'documents') problems.push({ path, message: `process "${step.process}" starts with "${callee.start.kind}"; a called process must start with "documents"` });
    const loop = await callChain(step.process, definition.id, deps, [definition.id, step.process]);
    if (loop) problems.push({ path, message: `calling "${step.process}" would recurse: ${loop.join(' → ')}` });
  }
  return problems;
}

/** A chain of deployed process calls from `from` back to `target`, if there is one. */
async function callChain(from: string, target: string, deps: ValidationDeps, trail: string[]): Promise<string[] | undefined> {
  const definition = await deps.deployed(from);
  for (const step of definition?.steps ?? []) {
    if (step.kind !== 'process-call') continue;
    if (step.process === target) return [...trail, target];
    if (trail.includes(step.process)) continue;
    const found = await callChain(step.process, target, deps, [...trail, step.process]);
    if (found) return found;
  }
  return undefined;
}

