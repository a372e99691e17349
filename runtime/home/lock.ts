/**
 * One process per runtime home. The lock is an exclusive SQLite lock on <home>/lock.db
 * (SQLite takes it with fcntl): held by an open write transaction for the life of the
 * process, and released by the kernel when the process ends, however it ends, so a
 * kill -9 or a crash never leaves a stale lock. <home>/runtime.pid (mode 0600) names the
 * holder (pid, address) for the refusal of a second process; it is information only,
 * never the lock.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { quarkError, messageOf } from '../core/errors.js';
import { ownerOnlyFile, ownerOnlySidecars } from '../core/files.js';

export interface HolderInfo {
  pid: number;
  startedAt: string;
  /** The API's address, once it listens. */
  url?: string;
}

export interface HomeLock {
  /** Records the API's address in the holder file. */
  announce(url: string): void;
  /** Releases the lock and removes the holder file (also done by the kernel at exit). */
  release(): void;
}

export const lockFileName = 'lock.db';
export const holderFileName = 'runtime.pid';

function readHolder(file: string): HolderInfo | undefined {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<HolderInfo>;
    return typeof value.pid === 'number' ? { pid: value.pid, startedAt: String(value.startedAt ?? ''), ...(typeof value.url === 'string' ? { url: value.url } : {}) } : undefined;
  } catch {
    return undefined;
  }
}

function describeHolder(holder: HolderInfo | undefined): string {
  if (!holder) return 'another process';
  return `quark process ${holder.pid}${holder.url ? ` (listening on ${holder.url})` : ''}${holder.startedAt ? `, started ${holder.startedAt}` : ''}`;
}

function lockedError(home: string, holderFile: string, action: string) {
  const holder = readHolder(holderFile);
  return quarkError(
    'QUARK_ERR_HOME_LOCKED',
    `cannot ${action}: the runtime home ${home} is in use by ${describeHolder(holder)}; stop it first, or use another --home`,
    { home, ...(holder ? { pid: holder.pid, ...(holder.url ? { url: holder.url } : {}) } : {}) },
  );
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/**
 * Takes the home's lock or throws QUARK_ERR_HOME_LOCKED naming the process that holds it.
 * `action` completes "cannot …" in that message (e.g. "start").
 */
export function lockHome(home: string, action: string): HomeLock {
  const lockFile = join(home, lockFileName);
  const holderFile = join(home, holderFileName);
  ownerOnlyFile(lockFile);
  let db: Database.Database;
  try {
    db = new Database(lockFile, { timeout: 0 });
  } catch (error) {
    throw quarkError('QUARK_ERR_HOME_STORE_UNREADABLE', `cannot open the lock file ${lockFile}: ${messageOf(error)}`, undefined, error);
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // a transaction that writes, left open: the exclusive lock stays until the process ends
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS held (pid INTEGER)');
  } catch (error) {
    db.close();
    if (isBusy(error)) throw lockedError(home, holderFile, action);
    throw quarkError('QUARK_ERR_HOME_STORE_UNREADABLE', `cannot lock ${lockFile}: ${messageOf(error)}`, undefined, error);
  }
  ownerOnlySidecars(lockFile);
  const info: HolderInfo = { pid: process.pid, startedAt: new Date().toISOString() };
  const write = () => {
    ownerOnlyFile(holderFile);
    writeFileSync(holderFile, JSON.stringify(info) + '\n');
  };
  write();
  let held = true;
  return {
    announce(url: string): void {
      info.url = url;
      if (held) write();
    },
    release(): void {
      if (!held) return;
      held = false;
      rmSync(holderFile, { force: true });
      db.close();
    },
  };
}
