// Accounts: the owner sees every account of the runtime and adds tenants (cloud runtimes
// only) and guests; any other account sees only its own.
import { api } from '../api.js';
import { h, table, when } from '../dom.js';
import { createForm, field } from './fields.js';

/** Refusals without a pointer that still belong to one field. */
const fieldOfCode = { QUARK_ERR_ACCOUNT_EXISTS: '/name', QUARK_ERR_ACCOUNT_TENANTS_UNSUPPORTED: '/relation' };

export async function accountsPage(ui) {
  const { accounts } = await api('GET', '/accounts');
  const owner = ui.session().whoami.account.relation === 'owner';
  ui.page(
    'Accounts',
    table(['name', 'relation', 'created', 'id'], accounts.map((a) => h('tr', { 'data-account': a.id }, h('td', {}, a.name), h('td', {}, a.relation), h('td', {}, when(a.createdAt)), h('td', {}, a.id)))),
    owner ? [h('h2', {}, 'Add an account'), accountForm(ui)] : h('p', { class: 'muted' }, 'Only the owner account manages accounts.'),
  );
}

function accountForm(ui) {
  const kind = ui.session().runtime.kind;
  const name = field('Account name', h('input', { type: 'text', name: 'name', autocomplete: 'off', spellcheck: 'false' }), { required: true, hint: 'Letters, digits, spaces and . _ @ -, starting with a letter or digit.' });
  const relation = field(
    'Relation',
    h('select', { name: 'relation' }, h('option', { value: 'guest' }, 'guest: reads the runtime, runs nothing'), h('option', { value: 'tenant', selected: kind === 'cloud' }, 'tenant: its own connections and processes')),
    { hint: kind === 'cloud' ? 'This is a cloud runtime: it takes tenants.' : `This is a ${kind} runtime: only a cloud runtime takes tenants.` },
  );
  return createForm(ui, {
    id: 'account-form',
    name,
    others: [['/relation', relation]],
    submit: 'Add account',
    fieldOfCode,
    send: () => api('POST', '/accounts', { name: name.control.value.trim(), relation: relation.control.value }),
    done: async (made) => {
      await accountsPage(ui);
      ui.say(`Added the ${made.relation} account ${made.name}.`);
    },
  });
}
