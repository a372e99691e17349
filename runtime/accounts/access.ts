import { quarkError } from '../core/errors.js';
import { newId, nowIso } from '../core/ids.js';
import { isStoreConflict } from '../store/errors.js';
import type { Store, AccountRecord, AccountRelation, TokenRecord } from '../store/types.js';
import type { RuntimeKind } from '../home/index.js';
import { hashToken, issueToken } from './tokens.js';

/** Who is calling: the account behind a valid token. */
export interface Caller {
  account: AccountRecord;
  tokenId: string;
}

export interface TokenView {
  id: string;
  accountId: string;
  name: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface AccessControl {
  /** Resolves a bearer token; 401 for none, unknown or revoked. */
  authenticate(token: string | undefined): Promise<Caller>;
  isOwner(caller: Caller): boolean;
  requireOwner(caller: Caller, action: string): void;
  /**
   * The container rule: Test Connection runs only for the account the runtime is bound
   * to, on every runtime kind. The refusal does not name the owner.
   */
  requireAssociated(caller: Caller): void;
  /** Accounts that own resources on this runtime: the owner, and tenants of a cloud. */
  requireMember(caller: Caller, action: string): void;
  listAccounts(caller: Caller): Promise<AccountRecord[]>;
  /** The name is unique by the store's constraint: a clash is QUARK_ERR_ACCOUNT_EXISTS. */
  addAccount(caller: Caller, input: { name: string; relation: Exclude<AccountRelation, 'owner'> }): Promise<AccountRecord>;
  listTokens(caller: Caller): Promise<TokenView[]>;
  createToken(caller: Caller, input: { name: string; account?: string }): Promise<{ token: string; view: TokenView }>;
  /** The last owner token is checked and revoked in one transaction, so two revokes at once cannot both pass. */
  revokeToken(caller: Caller, id: string): Promise<TokenView>;
}

const view = ({ hash: _hash, ...rest }: TokenRecord): TokenView => rest;

export function createAccessControl({ store, kind, ownerId }: { store: Store; kind: RuntimeKind; ownerId: string }): AccessControl {
  const isOwner = (caller: Caller) => caller.account.id === ownerId;

  function requireOwner(caller: Caller, action: string): void {
    if (!isOwner(caller)) throw quarkError('QUARK_ERR_AUTH_FORBIDDEN', `only the runtime's owner account may ${action}`);
  }

  async function findAccount(ref: string): Promise<AccountRecord> {
    const account = (await store.accounts.get(ref)) ?? (await store.accounts.findByName(ref));
    if (!account) throw quarkError('QUARK_ERR_ACCOUNT_NOT_FOUND', `no account "${ref}" on this runtime`);
    return account;
  }

  return {
    async authenticate(token) {
      if (token === undefined || token === '') {
        throw quarkError('QUARK_ERR_AUTH_MISSING_TOKEN', 'send an account token as "Authorization: Bearer <token>"');
      }
      const record = await store.tokens.findByHash(hashToken(token));
      const account = record && record.revokedAt === null ? await store.accounts.get(record.accountId) : undefined;
      if (!record || !account) throw quarkError('QUARK_ERR_AUTH_INVALID_TOKEN', 'the token is not valid on this runtime (unknown or revoked)');
      return { account, tokenId: record.id };
    },
    isOwner,
    requireOwner,
    requireAssociated(caller) {
      if (!isOwner(caller)) {
        throw quarkError(
          'QUARK_ERR_RUNTIME_NOT_ASSOCIATED',
          'Test Connection is refused: this runtime is not associated with your account. Run Test Connection on a runtime (atom, molecule or cloud) that your account owns.',
        );
      }
    },
    requireMember(caller, action) {
      if (caller.account.relation === 'guest') throw quarkError('QUARK_ERR_AUTH_FORBIDDEN', `a guest account may not ${action} on this runtime`);
    },
    async listAccounts(caller) {
      return isOwner(caller) ? store.accounts.list() : [caller.account];
    },
    async addAccount(caller, { name, relation }) {
      requireOwner(caller, 'add accounts');
      if (relation === 'tenant' && kind !== 'cloud') {
        throw quarkError('QUARK_ERR_ACCOUNT_TENANTS_UNSUPPORTED', `this runtime is ${kind === 'atom' ? 'an' : 'a'} ${kind}; only a cloud runtime has tenant accounts`);
      }
      const account: AccountRecord = { id: newId('acc'), name, relation, createdAt: nowIso() };
      try {
        await store.accounts.insert(account);
      } catch (error) {
        if (isStoreConflict(error, 'account-name')) throw quarkError('QUARK_ERR_ACCOUNT_EXISTS', `an account named "${name}" already exists`, { problems: [{ path: '/name', message: 'is taken' }] }, error);
        throw error;
      }
      return account;
    },
    async listTokens(caller) {
      return (await (isOwner(caller) ? store.tokens.list() : store.tokens.list(caller.account.id))).map(view);
    },
    async createToken(caller, { name, account }) {
      const target = account === undefined ? caller.account : await findAccount(account);
      if (target.id !== caller.account.id) requireOwner(caller, 'create tokens for other accounts');
      const { record, token } = await issueToken(store, target.id, name);
      return { token, view: view(record) };
    },
    revokeToken(caller, id) {
      return store.transaction(async (tx) => {
        const record = await tx.tokens.get(id);
        if (!record || (record.accountId !== caller.account.id && !isOwner(caller))) {
          throw quarkError('QUARK_ERR_TOKEN_NOT_FOUND', `no token ${id}`);
        }
        if (record.revokedAt === null && record.accountId === ownerId) {
          const activeOwnerTokens = (await tx.tokens.list(ownerId)).filter((t) => t.revokedAt === null);
          if (activeOwnerTokens.length <= 1) throw quarkError('QUARK_ERR_TOKEN_LAST_OWNER', 'this is the owner account\'s last token; create another before revoking it');
        }
        const at = nowIso();
        await tx.tokens.revoke(id, at);
        return view({ ...record, revokedAt: record.revokedAt ?? at });
      });
    },
  };
}
