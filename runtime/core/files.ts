import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';

/**
 * Creates `file` empty with mode 0600 if it does not exist, and makes it 0600 if it does
 * (a home made by an older version). Files SQLite adds beside a database (-wal, -shm,
 * -journal) take the database file's mode, so a store opened on such a file keeps them
 * owner-only too.
 */
export function ownerOnlyFile(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
}

/** Makes the files SQLite keeps beside `database` owner-only, where they exist. */
export function ownerOnlySidecars(database: string): void {
  for (const suffix of ['-wal', '-shm', '-journal']) {
    if (existsSync(database + suffix)) chmodSync(database + suffix, 0o600);
  }
}
