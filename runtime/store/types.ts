/**
 * The store interface. The embedded SQLite implementation (sqlite-store.ts) is the
 * default; a clustered store for molecules implements the same interface.
 */

export type AccountRelation = 'owner' | 'tenant' | 'guest';

export interface AccountRecord {
  id: string;
  name: string;
  relation: AccountRelation;
  createdAt: string;
}

export interface TokenRecord {
  id: string;
  accountId: string;
  name: string;
  /** sha256 of the token; the token itself is never stored. */
  hash: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface ConnectionRecord {
  id: string;
  accountId: string;
  connectorId: string;
  name: string;
  /** The configuration without its secret fields. */
  config: Record<string, unknown>;
  /** Sealed secret values by JSON pointer. */
  secrets: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  revision: number;
}

export interface Store {
  accounts: {
    insert(account: AccountRecord): void;
    get(id: string): AccountRecord | undefined;
    findByName(name: string): AccountRecord | undefined;
    list(): AccountRecord[];
  };
  tokens: {
    insert(token: TokenRecord): void;
    findByHash(hash: string): TokenRecord | undefined;
    get(id: string): TokenRecord | undefined;
    list(accountId?: string): TokenRecord[];
    revoke(id: string, at: string): void;
  };
  connections: {
    insert(connection: ConnectionRecord): void;
    /** Replaces a connection if its revision is still `expectedRevision`; returns whether it did. */
    update(connection: ConnectionRecord, expectedRevision: number): boolean;
    get(accountId: string, id: string): ConnectionRecord | undefined;
    findByName(accountId: string, name: string): ConnectionRecord | undefined;
    list(accountId: string): ConnectionRecord[];
    delete(accountId: string, id: string): boolean;
  };
  /** Runs `work` in one transaction. */
  transaction<T>(work: () => T): T;
  healthy(): boolean;
  close(): void;
}
