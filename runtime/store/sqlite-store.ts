import Database from 'better-sqlite3';
import { quarkError, messageOf } from '../core/errors.js';
import type { Store, AccountRecord, TokenRecord, ConnectionRecord } from './types.js';

/** Schema migrations, applied in order; PRAGMA user_version records how many ran. */
const migrations: string[] = [
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     relation TEXT NOT NULL CHECK (relation IN ('owner', 'tenant', 'guest')),
     created_at TEXT NOT NULL
   );
   CREATE TABLE tokens (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     name TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL,
     revoked_at TEXT
   );
   CREATE TABLE connections (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     connector_id TEXT NOT NULL,
     name TEXT NOT NULL,
     config TEXT NOT NULL,
     secrets TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     revision INTEGER NOT NULL,
     UNIQUE (account_id, name)
   );`,
];

interface ConnectionRow {
  id: string;
  account_id: string;
  connector_id: string;
  name: string;
  config: string;
  secrets: string;
  created_at: string;
  updated_at: string;
  revision: number;
}

interface TokenRow {
  id: string;
  account_id: string;
  name: string;
  hash: string;
  created_at: string;
  revoked_at: string | null;
}

const toConnection = (row: ConnectionRow): ConnectionRecord => ({
  id: row.id,
  accountId: row.account_id,
  connectorId: row.connector_id,
  name: row.name,
  config: JSON.parse(row.config) as Record<string, unknown>,
  secrets: JSON.parse(row.secrets) as Record<string, string>,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  revision: row.revision,
});

const toToken = (row: TokenRow): TokenRecord => ({
  id: row.id,
  accountId: row.account_id,
  name: row.name,
  hash: row.hash,
  createdAt: row.created_at,
  revokedAt: row.revoked_at,
});

const accountColumns = 'id, name, relation, created_at AS createdAt';

export function openSqliteStore(file: string): Store {
  let db: Database.Database;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const applied = db.pragma('user_version', { simple: true }) as number;
    for (let i = applied; i < migrations.length; i++) {
      db.transaction(() => {
        db.exec(migrations[i]!);
        db.pragma(`user_version = ${i + 1}`);
      })();
    }
  } catch (error) {
    throw quarkError('QUARK_ERR_HOME_STORE_UNREADABLE', `cannot open the store ${file}: ${messageOf(error)}`, undefined, error);
  }

  const q = {
    accountInsert: db.prepare('INSERT INTO accounts (id, name, relation, created_at) VALUES (@id, @name, @relation, @createdAt)'),
    accountGet: db.prepare(`SELECT ${accountColumns} FROM accounts WHERE id = ?`),
    accountByName: db.prepare(`SELECT ${accountColumns} FROM accounts WHERE name = ?`),
    accountList: db.prepare(`SELECT ${accountColumns} FROM accounts ORDER BY created_at, name`),
    tokenInsert: db.prepare('INSERT INTO tokens (id, account_id, name, hash, created_at, revoked_at) VALUES (@id, @accountId, @name, @hash, @createdAt, @revokedAt)'),
    tokenByHash: db.prepare('SELECT * FROM tokens WHERE hash = ?'),
    tokenGet: db.prepare('SELECT * FROM tokens WHERE id = ?'),
    tokenList: db.prepare('SELECT * FROM tokens ORDER BY created_at'),
    tokenListFor: db.prepare('SELECT * FROM tokens WHERE account_id = ? ORDER BY created_at'),
    tokenRevoke: db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
    connInsert: db.prepare(
      'INSERT INTO connections (id, account_id, connector_id, name, config, secrets, created_at, updated_at, revision) VALUES (@id, @accountId, @connectorId, @name, @config, @secrets, @createdAt, @updatedAt, @revision)',
    ),
    connUpdate: db.prepare(
      'UPDATE connections SET name = @name, config = @config, secrets = @secrets, updated_at = @updatedAt, revision = @revision WHERE id = @id AND account_id = @accountId AND revision = @expectedRevision',
    ),
    connGet: db.prepare('SELECT * FROM connections WHERE account_id = ? AND id = ?'),
    connByName: db.prepare('SELECT * FROM connections WHERE account_id = ? AND name = ?'),
    connList: db.prepare('SELECT * FROM connections WHERE account_id = ? ORDER BY name'),
    connDelete: db.prepare('DELETE FROM connections WHERE account_id = ? AND id = ?'),
  };

  const serialise = (c: ConnectionRecord) => ({ ...c, config: JSON.stringify(c.config), secrets: JSON.stringify(c.secrets) });

  return {
    accounts: {
      insert: (account) => void q.accountInsert.run(account),
      get: (id) => q.accountGet.get(id) as AccountRecord | undefined,
      findByName: (name) => q.accountByName.get(name) as AccountRecord | undefined,
      list: () => q.accountList.all() as AccountRecord[],
    },
    tokens: {
      insert: (token) => void q.tokenInsert.run(token),
      findByHash: (hash) => {
        const row = q.tokenByHash.get(hash) as TokenRow | undefined;
        return row && toToken(row);
      },
      get: (id) => {
        const row = q.tokenGet.get(id) as TokenRow | undefined;
        return row && toToken(row);
      },
      list: (accountId) => ((accountId === undefined ? q.tokenList.all() : q.tokenListFor.all(accountId)) as TokenRow[]).map(toToken),
      revoke: (id, at) => void q.tokenRevoke.run(at, id),
    },
    connections: {
      insert: (connection) => void q.connInsert.run(serialise(connection)),
      update: (connection, expectedRevision) => q.connUpdate.run({ ...serialise(connection), expectedRevision }).changes === 1,
      get: (accountId, id) => {
        const row = q.connGet.get(accountId, id) as ConnectionRow | undefined;
        return row && toConnection(row);
      },
      findByName: (accountId, name) => {
        const row = q.connByName.get(accountId, name) as ConnectionRow | undefined;
        return row && toConnection(row);
      },
      list: (accountId) => (q.connList.all(accountId) as ConnectionRow[]).map(toConnection),
      delete: (accountId, id) => q.connDelete.run(accountId, id).changes === 1,
    },
    transaction: (work) => db.transaction(work)(),
    healthy: () => db.open,
    close: () => db.close(),
  };
}
