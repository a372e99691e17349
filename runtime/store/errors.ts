/**
 * The typed failures of a Store (types.ts), the same for every implementation: callers
 * map them to HTTP (409, 503) without knowing which database refused.
 */

export type StoreConstraint = 'account-name' | 'connection-name' | 'token-hash' | 'deployment-version' | 'schedule-fire' | 'id';

/** A unique constraint refused the write. */
export class StoreConflictError extends Error {
  readonly constraint: StoreConstraint;

  constructor(constraint: StoreConstraint, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreConflictError';
    this.constraint = constraint;
  }
}

/** An optimistic check (a revision) lost: someone else changed the record first. */
export class StoreRaceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreRaceError';
  }
}

/**
 * A write of a run carried a lease epoch that is no longer the record's: another node
 * claimed the execution (or it was finalised) meanwhile. The writer has lost the run.
 */
export class StoreFencedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreFencedError';
  }
}

/** The refusal of a run's write whose lease epoch moved on. */
export const fencedWrite = (id: string, epoch: number): StoreFencedError =>
  new StoreFencedError(`execution ${id} is no longer held at lease epoch ${epoch}: another node claimed or finalised it`);

/** The store cannot be reached (PostgreSQL down, an SQLite I/O error, the store closed). */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export function isStoreConflict(error: unknown, constraint?: StoreConstraint): error is StoreConflictError {
  return error instanceof StoreConflictError && (constraint === undefined || error.constraint === constraint);
}
