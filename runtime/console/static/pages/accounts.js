// Accounts: the owner sees every account of the runtime and adds tenants (cloud runtimes
// only) and guests; any other account sees only its own.
import { api } from '../api.js';
import { h, table, when } from '../dom.js';
import { field, requiredProblem, showProblems } from './fields.js';

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
  const byPath = new Map([['/name', name], ['/relation', relation]]);
  const general = h('ul', { class: 'problems', hidden: true });
  const add = async (event) => {
    event.preventDefault();
    const local = requiredProblem('/name', name);
    if (local.length > 0) {
      showProblems(local, byPath, general)?.focus();
      ui.say('The form has 1 problem(s).', true);
      return;
    }
    try {
      const made = await api('POST', '/accounts', { name: name.control.value.trim(), relation: relation.control.value });
      ui.unsaved.saved(form);
      await accountsPage(ui);
      ui.say(`Added the ${made.relation} account ${made.name}.`);
    } catch (e) {
      const problems = ui.problemsOf(e);
      const at = fieldOfCode[e.code];
      const shown = problems.length > 0 ? problems : [{ path: at ?? '', message: e.message, plain: true }];
      (showProblems(shown, byPath, general) ?? name.control).focus();
      ui.say(ui.errorText(e), true);
    }
  };
  const form = ui.unsaved.watch(h('form', { novalidate: true, id: 'account-form', onsubmit: add }, name.wrap, relation.wrap, general, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add account'))));
  return form;
}
