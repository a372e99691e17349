/**
 * A write-behind slot: the latest state of something (an execution's counts, its
 * persisted process properties) written to the store behind the caller, one write in
 * flight at a time. Changes that come while a write is in flight are merged into the
 * next one, so memory stays bounded by one pending value whatever the store's speed,
 * and writes land in order.
 */
export interface WriteBehind<T> {
  push(value: T): void;
  /** Resolves when nothing is pending or in flight. */
  settled(): Promise<void>;
}

export function createWriteBehind<T>(write: (value: T) => Promise<void>, merge: (pending: T, next: T) => T, onError: (error: unknown) => void): WriteBehind<T> {
  let pending: T | undefined;
  let flight: Promise<void> | undefined;
  const pump = () => {
    if (flight !== undefined || pending === undefined) return;
    const value = pending;
    pending = undefined;
    flight = write(value)
      .catch(onError)
      .finally(() => {
        flight = undefined;
        pump();
      });
  };
  return {
    push(value) {
      pending = pending === undefined ? value : merge(pending, value);
      pump();
    },
    async settled() {
      while (flight !== undefined) await flight;
    },
  };
}
