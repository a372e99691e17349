/**
 * quark/sdk — the only module a connector plugin imports from quark.
 *
 *   import { defineConnector, check } from 'quark/sdk';
 *   export default defineConnector({
 *     async testConnection({ config, signal }) {
 *       return { checks: [check.ok('reachable', 'The endpoint answered.')] };
 *     },
 *   });
 *
 * It has no dependency on the rest of the runtime: the runtime imports the plugin's
 * module inside a worker thread and calls what defineConnector returned.
 */

import type { OperationHandler, RecoverHandler } from './operations.js';

export type { Body, InputDocument, OutputDocument, OperationResult, OperationContext, OperationHandler, PositionalBody, PositionalSink } from './operations.js';
export type { ResourceDescription, HeldResource, Resources, RecoveredResource, RecoverContext, RecoverHandler } from './operations.js';
export { result, isPositionalBody } from './operations.js';

/** The version of the plugin API this runtime offers; manifests state a semver range of it. */
export const RUNTIME_API_VERSION = '1.3.0';

export type CheckStatus = 'ok' | 'warning' | 'failed' | 'skipped';
export type OverallStatus = 'ok' | 'warning' | 'failed';

/** One thing Test Connection checked, with a message that tells the operator what to do. */
export interface Check {
  id: string;
  title?: string;
  status: CheckStatus;
  message: string;
  /** A stable, connector-specific code for the outcome, e.g. `InvalidAccessKeyId`. */
  code?: string;
}

export interface TestReport {
  /** The runtime derives the status from the checks (failed > warning > ok); a status set here counts only when it is worse. */
  status?: OverallStatus;
  checks: Check[];
}

/** Runtime-level settings a connector may need. */
export interface RuntimeSettings {
  /** The runtime's HTTP proxy; credentials, if any, are fields of the connection. */
  proxy?: { host: string; port: number };
}

export interface ConnectorLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface TestContext<Config> {
  /** The connection configuration, validated against the connector's schema, secrets decrypted. */
  config: Config;
  /** Aborted when the test's time limit is reached; pass it to every I/O call. */
  signal: AbortSignal;
  runtime: RuntimeSettings;
  log: ConnectorLogger;
}

/** What a plugin implements. Test Connection is an optional capability. */
export interface ConnectorImplementation<Config> {
  testConnection?(context: TestContext<Config>): Promise<TestReport> | TestReport;
  /** Operation handlers by operation id, as declared in connector.json. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  operations?: Record<string, OperationHandler<Config, any>>;
  /**
   * Releases a resource an operation held (context.resources.hold) and did not release,
   * because the runtime died or the release failed. Needed to hold resources. Since 1.2.0.
   */
  recover?: RecoverHandler<Config>;
}

const connectorBrand = Symbol.for('quark.connector');

export interface Connector<Config = Record<string, unknown>> extends ConnectorImplementation<Config> {
  readonly [connectorBrand]: string;
}

/** Marks a plugin's implementation as a quark connector. Use it for the module's default export. */
export function defineConnector<Config = Record<string, unknown>>(implementation: ConnectorImplementation<Config>): Connector<Config> {
  if (implementation === null || typeof implementation !== 'object') {
    throw new TypeError('defineConnector expects an object with testConnection and/or operations');
  }
  if (implementation.testConnection !== undefined && typeof implementation.testConnection !== 'function') {
    throw new TypeError('defineConnector: testConnection must be a function');
  }
  if (implementation.recover !== undefined && typeof implementation.recover !== 'function') {
    throw new TypeError('defineConnector: recover must be a function');
  }
  return Object.freeze({ ...implementation, [connectorBrand]: RUNTIME_API_VERSION });
}

/** True for a value made by defineConnector (of any quark version). */
export function isConnector(value: unknown): value is Connector<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as Record<symbol, unknown>)[connectorBrand] === 'string';
}

function makeCheck(status: CheckStatus) {
  return (id: string, message: string, extra: { title?: string; code?: string } = {}): Check => ({ id, status, message, ...extra });
}

/** Builders for checks: `check.failed('credentials', 'The secret key is wrong.', { code: 'SignatureDoesNotMatch' })`. */
export const check = {
  ok: makeCheck('ok'),
  warning: makeCheck('warning'),
  failed: makeCheck('failed'),
  skipped: makeCheck('skipped'),
};

/** The overall status of a list of checks: failed if any failed, else warning if any warned, else ok. */
export function overallStatus(checks: readonly Check[]): OverallStatus {
  if (checks.some((c) => c.status === 'failed')) return 'failed';
  if (checks.some((c) => c.status === 'warning')) return 'warning';
  return 'ok';
}
