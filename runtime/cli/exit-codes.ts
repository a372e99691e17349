
/** The CLI's exit codes; documented in README.md. */
export const exitCodes = {
  ok: 0,
  /** A Test Connection whose result is failed, or any error without a more precise code. */
  failed: 1,
  /** Bad arguments or input: a usage error or a 400 from the runtime. */
  invalid: 2,
  /** A Test Connection whose result is warning. */
  warning: 3,
  /** No, unknown or revoked token (401). */
  unauthenticated: 4,
  /** The account may not do this (403). */
  forbidden: 5,
  /** Test Connection refused: the runtime is not associated with the caller's account. */
  notAssociated: 6,
  notFound: 7,
  conflict: 8,
  /** The runtime could not be reached. */
  unreachable: 9,
  /** The runtime reported an internal error (5xx). */
  runtimeError: 10,
  /** The runtime refused new work for now: its execution queue is full (429). */
  busy: 11,
} as const;

/** `quark run --wait`: the exit code of an execution's final status. */
export function exitCodeForStatus(status: string): number {
  if (status === 'complete') return exitCodes.ok;
  if (status === 'complete-with-warnings') return exitCodes.warning;
  return exitCodes.failed;
}

export function exitCodeFor(code: string, status: number): number {
  if (code === 'QUARK_ERR_RUNTIME_NOT_ASSOCIATED') return exitCodes.notAssociated;
  if (code === 'QUARK_ERR_CLI_UNREACHABLE') return exitCodes.unreachable;
  if (status === 400) return exitCodes.invalid;
  if (status === 401) return exitCodes.unauthenticated;
  if (status === 403) return exitCodes.forbidden;
  if (status === 404) return exitCodes.notFound;
  if (status === 409) return exitCodes.conflict;
  if (status === 429) return exitCodes.busy;
  if (status >= 500) return exitCodes.runtimeError;
  return exitCodes.failed;
}
