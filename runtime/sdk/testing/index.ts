/**
 * quark/sdk/testing — the plugin author's conformance kit: the spec rules
 * (`lintConnector`, the rules `quark connector validate` checks before it imports the module) and the behaviour
 * checks (`runConformance`, `assertConformance`). Imports nothing of the runtime.
 */
export { lintConnector, formatProblems, secretNameClass, nameWords, operationKinds, CannotLintError } from './spec-rules.js';
export type { SpecProblem, SpecRule, LintResult, LintOptions } from './spec-rules.js';
export { runConformance, assertConformance, memoryBody, memoryResources, capturingLogger, garbageConfigs } from './conformance.js';
export type { ConformanceOptions, ConformanceReport, ConformanceCheck, OperationCase, DocumentInput, LogLine, Asserter, HeldRecord } from './conformance.js';
