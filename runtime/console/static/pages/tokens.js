// Tokens: the account's tokens (every token for the owner), create (the token is shown
// once, here, and never again), revoke.
import { api } from '../api.js';
import { h, table, when, badge } from '../dom.js';
import { createForm, field } from './fields.js';

/** `made`: a token just created ({token, name, accountId}), shown once on this render. */
export async function tokensPage(ui, made = null) {
  const [{ tokens }, { accounts }] = await Promise.all([api('GET', '/tokens'), api('GET', '/accounts')]);
  const me = ui.session().whoami.account;
  const names = new Map(accounts.map((a) => [a.id, a.name]));
  const form = tokenForm(ui, me, accounts);
  ui.page(
    'Tokens',
    made ? createdPanel(made, names) : null,
    tokens.length === 0 ? h('p', { class: 'muted' }, 'No tokens.') : table(['name', 'account', 'created', 'state', ''], tokens.map((tk) => tokenRow(ui, tk, names))),
    h('h2', {}, 'Create a token'),
    form,
  );
  if (made) document.getElementById('token-value')?.focus();
}

function createdPanel(made, names) {
  const panel = h(
    'div',
    { class: 'panel', id: 'token-created', role: 'alert' },
    h('p', {}, h('strong', {}, `Token "${made.name}" created for ${names.get(made.accountId) ?? made.accountId}. `), 'Copy it now: it is shown once, and the runtime keeps only its hash.'),
    h('p', {}, h('code', { class: 'token-once', id: 'token-value', tabindex: '0', 'aria-label': 'The new token' }, made.token)),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => panel.remove() }, 'I have copied it')),
  );
  return panel;
}

function tokenRow(ui, tk, names) {
  const revoke = async () => {
    if (!confirm(`Revoke the token "${tk.name}"? Whoever uses it is signed out.`)) return;
    try {
      await api('DELETE', `/tokens/${encodeURIComponent(tk.id)}`);
      ui.say(`Revoked the token ${tk.name}.`);
      await tokensPage(ui);
    } catch (e) {
      ui.say(ui.errorText(e), true);
    }
  };
  return h(
    'tr',
    { 'data-token': tk.id },
    h('td', {}, tk.name, h('div', { class: 'hint' }, tk.id)),
    h('td', {}, names.get(tk.accountId) ?? tk.accountId),
    h('td', {}, when(tk.createdAt)),
    h('td', {}, tk.revokedAt ? [badge('revoked'), ' ', when(tk.revokedAt)] : badge('active')),
    h('td', {}, tk.revokedAt ? '' : h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${tk.name}`, onclick: revoke }, 'Revoke')),
  );
}

function tokenForm(ui, me, accounts) {
  const name = field('Token name', h('input', { type: 'text', name: 'name', autocomplete: 'off', spellcheck: 'false' }), { required: true, hint: 'What the token is for, such as "ci" or "laptop".' });
  const owner = me.relation === 'owner';
  const account = owner ? field('Account', h('select', { name: 'account' }, accounts.map((a) => h('option', { value: a.id, selected: a.id === me.id }, `${a.name} (${a.relation})`)))) : null;
  return createForm(ui, {
    id: 'token-form',
    name,
    others: account ? [['/account', account]] : [],
    submit: 'Create token',
    send: () => {
      const target = account?.control.value;
      return api('POST', '/tokens', { name: name.control.value.trim(), ...(target && target !== me.id ? { account: target } : {}) });
    },
    done: async (made) => {
      ui.say(`Created the token ${made.name}.`);
      await tokensPage(ui, made);
    },
  });
}
