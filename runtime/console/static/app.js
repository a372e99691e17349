// The runtime console: a hash-routed page over the HTTP API (runtime/console/plugin.ts
// serves it). Every view is built with DOM calls: no inline script, no HTML from data.
import { api, token, whenUnauthorized, executionEvents, ApiError } from './api.js';
import { h, put, badge, table, facts, when, duration, labelCells } from './dom.js';
import { schemaFields, validate } from './form.js';
import { createUnsaved } from './pages/unsaved.js';
import { tokensPage } from './pages/tokens.js';
import { accountsPage } from './pages/accounts.js';
import { schedulesPage, scheduleEditor } from './pages/schedules.js';
import { apiQuery, listHash, pager, searchBox } from './pages/lists.js';
import { operationsPage } from './pages/operations.js';
import { createDiagram } from './diagram.js';
import { executionDiagram, tickWhileRunning, coalesce, stepDataSection, advances, runningStatus as running } from './execution.js';

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const signOutButton = document.getElementById('sign-out');

let session = null; // {whoami, runtime, stream: AbortController}
const listeners = new Set(); // the current page's execution-event listeners
const resyncs = new Set(); // the current page's re-reads, run when the event stream (re)connects: events of a gap are lost
const unsaved = createUnsaved();

function say(message, error = false) {
  statusLine.textContent = message;
  statusLine.classList.toggle('error', error);
}

function errorText(error) {
  return error instanceof ApiError ? `${error.message} (${error.code})` : String(error?.message ?? error);
}

function problemsOf(error) {
  return error instanceof ApiError ? (error.details?.problems ?? []) : [];
}

/** Renders a page: replaces main, sets the title, focuses the heading for screen readers and keyboards. */
function page(title, ...content) {
  document.title = `${title} · quark console`;
  const heading = h('h1', { tabindex: '-1' }, title);
  put(main, 'replaceChildren', heading, ...content);
  heading.focus();
  return heading;
}

/** What the pages in pages/ use of this shell. */
const ui = {
  page,
  say,
  errorText,
  problemsOf,
  session: () => session,
  unsaved,
  /** Adds a listener of the execution events for the current page. */
  listen: (fn) => listeners.add(fn),
  /** Adds a re-read the current page runs when the event stream (re)connects. */
  resync: (fn) => resyncs.add(fn),
};

/** The process editor, loaded when its page opens: CodeMirror stays out of the first load. */
async function editorPage(processId) {
  const { editorPage: open } = await import('./pages/editor.js');
  await open(ui, processId);
}

// ---- session ---------------------------------------------------------------

whenUnauthorized(() => {
  signOut('Your token is no longer valid: sign in again.');
});

function signOut(message = 'Signed out.') {
  unsaved.forget();
  token.clear();
  session?.stream.abort();
  session = null;
  nav.hidden = true;
  signOutButton.hidden = true;
  who.textContent = '';
  if (location.hash !== '' && location.hash !== '#/') history.replaceState(null, '', '#/');
  renderSignIn();
  say(message);
}
signOutButton.addEventListener('click', () => signOut());

async function startSession() {
  const [whoami, runtime] = await Promise.all([api('GET', '/whoami'), api('GET', '/runtime')]);
  const stream = new AbortController();
  session = { whoami, runtime, stream };
  who.textContent = `${whoami.account.name} (${whoami.account.relation}) on ${runtime.name}`;
  nav.hidden = false;
  document.getElementById('nav-accounts').hidden = whoami.account.relation !== 'owner';
  signOutButton.hidden = false;
  executionEvents(
    (view) => {
      for (const listener of listeners) listener(view);
    },
    (state) => {
      document.body.setAttribute('data-events', state);
      if (state === 'live') for (const resync of resyncs) void resync();
    },
    stream.signal,
  );
}

function renderSignIn() {
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-hint' });
  const error = h('p', { class: 'field-error', id: 'token-error', role: 'alert', hidden: true });
  const form = h(
    'form',
    {
      class: 'signin',
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        const value = input.value.trim();
        error.hidden = true;
        if (!value) {
          error.textContent = 'Enter an account token.';
          error.hidden = false;
          input.focus();
          return;
        }
        try {
          await api('GET', '/whoami', undefined, value);
        } catch (e) {
          error.textContent = e instanceof ApiError && e.status === 401 ? 'This token is not valid on this runtime.' : errorText(e);
          error.hidden = false;
          input.focus();
          return;
        }
        token.set(value);
        input.value = '';
        await startSession();
        say(`Signed in as ${session.whoami.account.name}.`);
        if (location.hash === '' || location.hash === '#/') location.hash = '#/runtime';
        else route();
      },
    },
    h('div', { class: 'field' }, h('label', { for: 'token' }, 'Account token'), input, h('p', { class: 'hint', id: 'token-hint' }, 'A token from `quark init` or `quark tokens create`. It is kept for this tab only and forgotten when you sign out or close the tab.'), error),
    h('button', { type: 'submit' }, 'Sign in'),
  );
  page('Sign in', form);
  input.focus();
}

// ---- pages -----------------------------------------------------------------

async function runtimePage() {
  const [info, ready] = await Promise.all([api('GET', '/runtime'), fetch('/readyz', { cache: 'no-store' }).then((r) => r.json()).catch(() => ({ status: 'unreachable' }))]);
  session.runtime = info;
  const limits = Object.entries(info.limits ?? {});
  page(
    `Runtime ${info.name}`,
    facts([
      ['Id', info.id],
      ['Name', info.name],
      ['Kind', info.kind],
      info.owner ? ['Owner account', `${info.owner.name} (${info.owner.id})`] : null,
      ['Version', `${info.version} (runtime API ${info.runtimeApi})`],
      ['Started', when(info.startedAt)],
      ['Uptime', duration(info.uptimeSeconds * 1000)],
      ['Health', badge(ready.status === 'ready' ? 'ready' : ready.status)],
      ['Queue', h('span', { id: 'runtime-queue' }, `${info.executions.running} running (at most ${info.limits.maxRunningExecutions}), ${info.executions.queued} queued (at most ${info.limits.maxQueuedExecutions})`)],
      ['Test Connection', info.testConnection.allowed ? h('span', { id: 'tc-allowed' }, 'allowed for your account') : h('span', { id: 'tc-allowed' }, `not allowed: ${info.testConnection.reason}`)],
    ]),
    h('h2', {}, 'Limits'),
    table(['limit', 'value'], limits.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, String(v))))),
  );
}

async function connectorsPage() {
  const { loaded, quarantined } = await api('GET', '/connectors');
  page(
    'Connectors',
    h('h2', {}, `Loaded (${loaded.length})`),
    table(
      ['id', 'name', 'version', 'source', 'Test Connection', 'operations'],
      loaded.map((c) => h('tr', {}, h('td', {}, c.id), h('td', {}, c.name, c.description ? h('p', { class: 'hint' }, c.description) : null), h('td', {}, c.version), h('td', {}, c.source), h('td', {}, c.testConnection ? 'yes' : 'no'), h('td', {}, c.operations.map((o) => o.id).join(', ')))),
    ),
    h('h2', {}, `Quarantined (${quarantined.length})`),
    quarantined.length === 0
      ? h('p', { class: 'muted' }, 'No plugin is quarantined.')
      : table(['plugin', 'folder', 'reason'], quarantined.map((q) => h('tr', {}, h('td', {}, q.id ? `${q.id} ${q.version ?? ''}` : '—'), h('td', {}, `${q.dir} (${q.source})`), h('td', {}, h('strong', {}, q.reason.code), ' ', q.reason.message)))),
  );
}

async function connectionsPage(query = new URLSearchParams()) {
  const [{ connections, nextCursor }, { loaded }] = await Promise.all([api('GET', '/connections' + apiQuery(query)), api('GET', '/connectors')]);
  const choose = h('select', { id: 'new-connector' }, loaded.map((c) => h('option', { value: c.id }, `${c.name} (${c.id})`)));
  page(
    'Connections',
    h('div', { class: 'actions' }, h('label', { for: 'new-connector' }, 'Connector'), choose, h('button', { type: 'button', onclick: () => (location.hash = `#/connections/new/${encodeURIComponent(choose.value)}`) }, 'New connection')),
    searchBox('#/connections', query, 'Search connections', 'name or connector'),
    connections.length === 0
      ? h('p', { class: 'muted' }, query.get('q') ? 'No connection matches.' : 'No connections yet.')
      : table(
          ['name', 'connector', 'secrets', 'revision', 'updated', ''],
          connections.map((c) =>
            h(
              'tr',
              {},
              h('td', {}, h('a', { href: `#/connections/${encodeURIComponent(c.id)}` }, c.name)),
              h('td', {}, c.connector),
              h('td', {}, Object.entries(c.secrets).map(([p, set]) => `${p.slice(1)}: ${set ? 'set' : 'not set'}`).join(', ') || '—'),
              h('td', {}, String(c.revision)),
              h('td', {}, when(c.updatedAt)),
              h(
                'td',
                {},
                h('button', {
                  type: 'button',
                  class: 'danger',
                  'aria-label': `Delete ${c.name}`,
                  onclick: async () => {
                    if (!confirm(`Delete the connection "${c.name}"?`)) return;
                    try {
                      await api('DELETE', `/connections/${encodeURIComponent(c.id)}`);
                      say(`Deleted ${c.name}.`);
                      await connectionsPage(query);
                    } catch (e) {
                      say(errorText(e), true);
                    }
                  },
                }, 'Delete'),
              ),
            ),
          ),
        ),
    pager('#/connections', query, nextCursor),
  );
}

function testResult(result) {
  return h(
    'div',
    { class: 'panel', id: 'test-result' },
    h('p', {}, h('strong', {}, 'Test Connection: '), badge(result.status), ` in ${duration(result.durationMs)}`),
    h('ul', { class: 'checks' }, result.checks.map((c) => h('li', { 'data-check': c.id }, badge(c.status), ' ', h('strong', {}, c.title ?? c.id), c.code ? h('span', { class: 'muted' }, ` ${c.code}`) : null, h('div', { class: 'check-message' }, c.message)))),
  );
}

async function connectionForm(id, connectorId) {
  const connection = id ? await api('GET', `/connections/${encodeURIComponent(id)}`) : null;
  const connector = await api('GET', `/connectors/${encodeURIComponent(connection?.connector ?? connectorId)}`);
  const schema = connector.connectionSchema;
  const fields = schemaFields(schema, connection);
  const name = h('input', { id: 'conn-name', type: 'text', required: true, autocomplete: 'off', value: connection?.name ?? '', 'aria-describedby': 'conn-name-error' });
  const nameError = h('p', { class: 'field-error', id: 'conn-name-error', hidden: true });
  const result = h('div', { id: 'test-area', 'aria-live': 'polite' });
  const allowed = session.runtime.testConnection;

  function collect() {
    const { config, kept } = fields.read();
    const problems = validate(schema, config, kept);
    return { config, problems };
  }
  function showName(message) {
    nameError.textContent = message ?? '';
    nameError.hidden = !message;
    if (message) name.setAttribute('aria-invalid', 'true');
    else name.removeAttribute('aria-invalid');
  }

  const save = async (event) => {
    event.preventDefault();
    const { config, problems } = collect();
    const nameMissing = name.value.trim() === '';
    showName(nameMissing ? 'A name is required.' : null);
    const first = fields.showProblems(problems);
    if (nameMissing || problems.length > 0) {
      say(`The form has ${problems.length + (nameMissing ? 1 : 0)} problem(s).`, true);
      (nameMissing ? name : first)?.focus();
      return;
    }
    try {
      const saved = connection
        ? await api('PUT', `/connections/${encodeURIComponent(connection.id)}`, { name: name.value.trim(), config })
        : await api('POST', '/connections', { name: name.value.trim(), connector: connector.id, config });
      unsaved.saved(form);
      say(`Saved ${saved.name} (revision ${saved.revision}).`);
      location.hash = `#/connections/${encodeURIComponent(saved.id)}`;
      if (connection) await connectionForm(saved.id);
    } catch (e) {
      const first = fields.showProblems(problemsOf(e));
      say(errorText(e), true);
      first?.focus();
    }
  };

  const test = async () => {
    const { config, problems } = collect();
    if (allowed.allowed) {
      const first = fields.showProblems(problems);
      if (problems.length > 0) {
        say(`The form has ${problems.length} problem(s).`, true);
        first?.focus();
        return;
      }
    }
    button.disabled = true;
    put(result, 'replaceChildren', h('p', { id: 'test-progress', class: 'panel' }, h('progress', { 'aria-label': 'Testing' }), ' Testing the connection…'));
    result.scrollIntoView({ block: 'nearest' });
    result.setAttribute('aria-busy', 'true');
    try {
      const outcome = connection ? await api('POST', `/connections/${encodeURIComponent(connection.id)}/test`, { config }) : await api('POST', '/test-connection', { connector: connector.id, config });
      put(result, 'replaceChildren', testResult(outcome));
      result.scrollIntoView({ block: 'nearest' });
      say(`Test Connection: ${outcome.status}.`);
    } catch (e) {
      fields.showProblems(problemsOf(e));
      put(result, 'replaceChildren', h('div', { class: 'panel error', id: 'test-refused', role: 'alert' }, h('strong', {}, e.code === 'QUARK_ERR_RUNTIME_NOT_ASSOCIATED' ? 'Test Connection refused: ' : 'Test Connection could not run: '), e.message));
      result.scrollIntoView({ block: 'nearest' });
      say(errorText(e), true);
    } finally {
      result.removeAttribute('aria-busy');
      button.disabled = false;
    }
  };
  const button = h('button', { type: 'button', class: 'secondary', id: 'test-connection', onclick: test }, 'Test Connection');
  const form = connectionFormElement({ save, name, nameError, fields, connection, button, allowed });

  page(
    connection ? `Connection ${connection.name}` : `New ${connector.name} connection`,
    schema.description ? h('p', { class: 'hint' }, schema.description) : null,
    form,
    result,
    connection ? h('p', { class: 'muted' }, `Revision ${connection.revision}, updated ${when(connection.updatedAt)}.`) : null,
  );
  name.focus();
}

function connectionFormElement({ save, name, nameError, fields, connection, button, allowed }) {
  return unsaved.watch(
    h(
      'form',
      { novalidate: true, onsubmit: save, id: 'connection-form' },
      h('div', { class: 'field' }, h('label', { for: 'conn-name' }, 'Name', h('span', { class: 'required', 'aria-hidden': 'true' }, '*')), name, nameError),
      fields.element,
      h('p', { class: 'hint' }, h('span', { class: 'required', 'aria-hidden': 'true' }, '*'), ' required'),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, connection ? 'Save' : 'Create'), button, h('a', { href: '#/connections', class: 'button secondary' }, 'Back to connections')),
      allowed.allowed ? null : h('p', { class: 'hint', id: 'test-not-allowed' }, `Test Connection is not available to your account here: ${allowed.reason}.`),
    ),
  );
}

async function deploymentsPage(query = new URLSearchParams()) {
  const { deployments, nextCursor } = await api('GET', '/deployments' + apiQuery(query));
  const text = h('textarea', { id: 'definition', spellcheck: 'false', 'aria-describedby': 'definition-hint definition-problems' });
  const file = h('input', {
    type: 'file',
    id: 'definition-file',
    accept: 'application/json,.json',
    onchange: async () => {
      if (file.files?.[0]) text.value = await file.files[0].text();
    },
  });
  const problems = h('ul', { class: 'problems', id: 'definition-problems', 'aria-live': 'polite' });
  const deploy = async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    let definition;
    try {
      definition = JSON.parse(text.value);
    } catch (e) {
      problems.append(h('li', {}, `not JSON: ${e.message}`));
      text.focus();
      return;
    }
    try {
      const view = await api('POST', '/deployments', definition);
      say(`Deployed ${view.process} version ${view.version}.`);
      unsaved.forget();
      text.value = '';
      await deploymentsPage();
    } catch (e) {
      const list = problemsOf(e);
      put(problems, 'append', h('li', {}, errorText(e)), list.map((p) => h('li', {}, h('code', {}, p.path || '/'), ` ${p.message}`)));
      say(errorText(e), true);
      text.focus();
    }
  };
  page(
    'Deployments',
    searchBox('#/deployments', query, 'Search deployments', 'process id or name'),
    deployments.length === 0
      ? h('p', { class: 'muted' }, query.get('q') ? 'No process matches.' : 'No process is deployed.')
      : table(
          ['process', 'name', 'active version', 'latest', 'updated', 'schedules'],
          deployments.map((d) => h('tr', {}, h('td', {}, h('a', { href: `#/deployments/${encodeURIComponent(d.process)}` }, d.process)), h('td', {}, d.name), h('td', {}, d.activeVersion === null ? h('span', { class: 'muted' }, 'undeployed') : String(d.activeVersion)), h('td', {}, String(d.latestVersion)), h('td', {}, when(d.updatedAt)), h('td', {}, (d.schedules ?? []).map((s) => s.cron).join(', ') || '—', d.problems ? h('span', { class: 'error' }, ` (${d.problems.length} problem(s))`) : null))),
        ),
    pager('#/deployments', query, nextCursor),
    h('h2', {}, 'Deploy a process'),
    h('p', {}, h('a', { href: '#/editor', class: 'button', id: 'open-editor' }, 'Write one in the editor'), ' with the diagram drawn as you type, a test run and its step data; or deploy a file or pasted JSON here.'),
    unsaved.watch(h(
      'form',
      { onsubmit: deploy, novalidate: true, id: 'deploy-form' },
      h('div', { class: 'field' }, h('label', { for: 'definition-file' }, 'Upload a definition'), file),
      h('div', { class: 'field' }, h('label', { for: 'definition' }, 'or paste it (JSON)'), text, h('p', { class: 'hint', id: 'definition-hint' }, 'Validated by the runtime against schemas/process.schema.json; every problem is listed with its path.')),
      problems,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Deploy')),
    )),
  );
}

async function deploymentPage(processId) {
  const d = await api('GET', `/deployments/${encodeURIComponent(processId)}`);
  const act = (label, fn, attrs = {}) =>
    h('button', {
      type: 'button',
      ...attrs,
      onclick: async () => {
        try {
          await fn();
        } catch (e) {
          say(errorText(e), true);
        }
      },
    }, label);
  const docs = h('textarea', { id: 'run-document', spellcheck: 'false', placeholder: 'optional: the body of one document passed in', 'aria-describedby': 'run-hint' });
  page(
    `Process ${d.process}`,
    facts([
      ['Name', d.name],
      ['Active version', d.activeVersion === null ? 'none (undeployed)' : String(d.activeVersion)],
      ['Latest version', String(d.latestVersion)],
      ['Schedules', (d.schedules ?? []).map((s) => `${s.cron}${s.timezone ? ` (${s.timezone})` : ''}${s.catchUp === 'once' ? ', catch-up once' : ''}`).join('; ') || '—'],
      ['Next runs', (d.nextRuns ?? []).map(when).join(', ') || '—'],
    ]),
    loadProblems(d.problems),
    h('h2', {}, 'Run now'),
    h('div', { class: 'field' }, h('label', { for: 'run-document' }, 'Document body'), docs, h('p', { class: 'hint', id: 'run-hint' }, 'Leave empty to run without documents passed in.')),
    h(
      'div',
      { class: 'actions' },
      act('Run now', async () => {
        const body = docs.value;
        const view = await api('POST', '/executions', { process: d.process, trigger: 'manual', ...(body ? { documents: [{ body }] } : {}) });
        say(`Started ${view.id}.`);
        location.hash = `#/executions/${view.id}`;
      }, { id: 'run-now', disabled: d.activeVersion === null }),
      h('a', { href: `#/editor/${encodeURIComponent(d.process)}`, class: 'button secondary', id: 'edit-process' }, 'Edit in the editor'),
      act('Undeploy', async () => {
        if (!confirm(`Undeploy ${d.process}? Its versions are kept.`)) return;
        await api('DELETE', `/deployments/${encodeURIComponent(d.process)}`);
        say(`Undeployed ${d.process}.`);
        await deploymentPage(processId);
      }, { class: 'danger', disabled: d.activeVersion === null }),
      h('a', { href: '#/deployments', class: 'button secondary' }, 'Back to deployments'),
    ),
    h('h2', {}, 'Versions'),
    table(
      ['version', 'name', 'deployed', 'by', ''],
      d.versions.map((v) =>
        h('tr', {}, h('td', {}, String(v.version), v.version === d.activeVersion ? ' (active)' : ''), h('td', {}, v.name), h('td', {}, when(v.deployedAt)), h('td', {}, v.deployedBy ?? ''), h('td', {}, v.version === d.activeVersion ? '' : act(`Roll back to ${v.version}`, async () => {
          const view = await api('POST', `/deployments/${encodeURIComponent(d.process)}/rollback`, { version: v.version });
          say(`Rolled back: version ${view.version} is version ${v.version}'s definition.`);
          await deploymentPage(processId);
        }, { class: 'secondary' }))),
      ),
    ),
    h('h2', {}, 'Definition'),
    d.definition === null ? h('p', { class: 'error' }, 'The stored definition of this version cannot be read.') : createDiagram(d.definition, { title: `Diagram of ${d.process}` }).element,
  );
}

/** What the runtime could not load or arm for a process (a bad stored schedule, a damaged definition). */
function loadProblems(problems) {
  if (!problems || problems.length === 0) return null;
  return h(
    'section',
    { class: 'load-problems', 'aria-labelledby': 'load-problems-heading' },
    h('h2', { id: 'load-problems-heading' }, 'Load problems'),
    h('ul', { class: 'problems' }, problems.map((p) => h('li', {}, h('code', {}, p.path), ` ${p.code}: ${p.message}`))),
  );
}

const statuses = ['queued', 'in-process', 'complete', 'complete-with-warnings', 'error', 'aborted', 'discarded'];
const executionHeaders = ['execution', 'process', 'version', 'trigger', 'status', 'queued', 'duration', 'in / out / failed'];

function executionRow(e) {
  return labelCells(executionCells(e), executionHeaders);
}

function executionCells(e) {
  return h('tr', { 'data-execution': e.id }, h('td', {}, h('a', { href: `#/executions/${e.id}` }, e.id)), h('td', {}, e.processId), h('td', {}, e.version === null ? 'test' : String(e.version)), h('td', {}, e.trigger), h('td', {}, badge(e.status)), h('td', {}, when(e.queuedAt)), h('td', {}, duration(e.durationMs)), h('td', {}, `${e.documentsIn} / ${e.documentsOut} / ${e.documentsFailed}`));
}

async function executionsPage(query) {
  const filter = { process: query.get('process') ?? '', status: query.get('status') ?? '' };
  const search = query.get('q') ?? '';
  const paged = Boolean(query.get('cursor'));
  const listPath = '/executions' + apiQuery(query, filter);
  const rows = new Map();
  const latest = new Map(); // the most advanced view of each execution seen, shown or filtered out
  const tbody = h('tbody', { id: 'executions-body' });
  const newestFirst = (a, b) => b.queuedAt.localeCompare(a.queuedAt) || b.id.localeCompare(a.id);
  const render = () => tbody.replaceChildren(...[...rows.values()].sort(newestFirst).map(executionRow));
  /**
   * Takes a view of an execution, an event's or (`listed`) one the API listed on this page;
   * the most advanced view seen is the one shown. Returns whether the rows changed.
   */
  function show(view, listed) {
    const known = latest.get(view.id);
    const newer = advances(known, view);
    if (newer) latest.set(view.id, view);
    else if (!listed) return false;
    const best = newer ? view : known;
    // a later page or a search only follows the rows it lists; the first page takes new ones too
    if (!listed && (paged || search) && !rows.has(best.id)) return false;
    if (filter.process && best.processId !== filter.process) return false;
    if (filter.status && best.status !== filter.status) return rows.delete(best.id);
    rows.set(best.id, best);
    return true;
  }
  let nextCursor;
  async function read() {
    const list = await api('GET', listPath);
    nextCursor = list.nextCursor;
    return list.executions.map((e) => show(e, true)).some(Boolean);
  }
  // subscribe first, then read: an execution that changes in between is not shown stale
  listeners.add((view) => {
    if (show(view, false)) render();
  });
  resyncs.add(() => read().then((changed) => changed && render()).catch((e) => say(errorText(e), true)));
  const [, { deployments }] = await Promise.all([read(), api('GET', '/deployments')]);
  render();
  const go = () => {
    location.hash = listHash('#/executions', { process: processSelect.value, status: statusSelect.value, q: search });
  };
  const processSelect = h('select', { id: 'filter-process', onchange: go }, h('option', { value: '' }, 'all'), deployments.map((d) => h('option', { value: d.process, selected: d.process === filter.process }, d.process)));
  const statusSelect = h('select', { id: 'filter-status', onchange: go }, h('option', { value: '' }, 'all'), statuses.map((s) => h('option', { value: s, selected: s === filter.status }, s)));
  page(
    'Executions',
    h('div', { class: 'filters' }, h('label', { for: 'filter-process' }, 'Process', processSelect), h('label', { for: 'filter-status' }, 'Status', statusSelect), h('span', { class: 'muted', id: 'live-state' }, 'Updates live.')),
    searchBox('#/executions', query, 'Search executions', 'execution or process id', () => filter),
    h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, executionHeaders.map((x) => h('th', { scope: 'col' }, x)))), tbody)),
    pager('#/executions', query, nextCursor, filter),
  );
}

async function executionPage(id) {
  const path = `/executions/${encodeURIComponent(id)}`;
  let view;
  let shown = false;
  let live = null; // the diagram with the counts (execution.js)
  const stepData = stepDataSection(id);
  /** Takes a newer view of this execution; false when it is older than the one shown. */
  function adopt(candidate) {
    if (!advances(view, candidate)) return false;
    view = candidate;
    if (shown) render();
    live?.update(view);
    stepData.update(view);
    return true;
  }
  const reread = async () => adopt(await api('GET', path));
  // subscribe first, then read: an end between the two is never lost
  listeners.add(async (event) => {
    if (event.id !== id) return;
    try {
      // an ended execution is read again for its document errors
      if (running(event.status)) adopt({ ...event, errors: view?.errors });
      else await reread();
      if (shown) await tailLog();
    } catch (e) {
      say(errorText(e), true);
    }
  });
  resyncs.add(async () => {
    try {
      if ((await reread()) && shown) await tailLog();
    } catch (e) {
      say(errorText(e), true);
    }
  });
  await reread();
  const body = h('div', { id: 'execution-detail' });
  const logBox = h('pre', { class: 'log', id: 'execution-log', tabindex: '0', 'aria-label': 'Execution log' });
  async function loadLog() {
    const text = await api('GET', `${path}/log`);
    const lines = String(text).split('\n').filter(Boolean).map((line) => {
      try {
        const l = JSON.parse(line);
        const level = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }[l.level] ?? l.level;
        const { level: _l, time, msg, execution: _e, process: _p, version: _v, pid: _pid, hostname: _h, ...rest } = l;
        const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
        return `${new Date(time).toISOString()} ${level} ${msg ?? ''}${extra}`;
      } catch {
        return line;
      }
    });
    logBox.textContent = lines.join('\n') || '(no log lines yet)';
  }
  // the log follows the events (counts come up to 4 times a second): one reload at a time
  const tailLog = coalesce(loadLog);
  function render() {
    const steps = Object.entries(view.steps ?? {});
    put(body, 'replaceChildren', 
      facts([
        ['Process', h('a', { href: `#/deployments/${encodeURIComponent(view.processId)}` }, view.processId)],
        ['Version', view.version === null ? 'test mode' : String(view.version)],
        ['Trigger', view.trigger],
        ['Status', h('span', { id: 'execution-status' }, badge(view.status))],
        ['Queued', when(view.queuedAt)],
        ['Started', when(view.startedAt)],
        ['Ended', when(view.endedAt)],
        ['Duration', h('span', { id: 'execution-duration', 'data-execution': id }, duration(view.durationMs))],
        ['Documents', `${view.documentsIn} in, ${view.documentsOut} out, ${view.documentsFailed} failed`],
        ['Warnings', String(view.warnings)],
        view.errorCode ? ['Error', `${view.errorCode}: ${view.errorMessage}`] : null,
        view.progress ? ['Progress', `${view.progress.step}: ${view.progress.bytesDone}${view.progress.bytesTotal ? ' of ' + view.progress.bytesTotal : ''} bytes`] : null,
      ]),
      running(view.status) ? h('div', { class: 'actions' }, h('button', {
        type: 'button',
        class: 'danger',
        id: 'cancel-execution',
        onclick: async () => {
          try {
            adopt(await api('POST', `${path}/cancel`));
            say(`Cancel requested for ${id}.`);
          } catch (e) {
            say(errorText(e), true);
          }
        },
      }, 'Cancel')) : null,
      h('h2', {}, 'Steps'),
      steps.length === 0 ? h('p', { class: 'muted' }, 'No step has run yet.') : table(['step', 'in', 'out', 'errors'], steps.map(([step, c]) => h('tr', {}, h('td', {}, step), h('td', {}, String(c.in)), h('td', {}, String(c.out)), h('td', {}, String(c.errors))))),
      h('h2', {}, 'Document errors'),
      (view.errors ?? []).length === 0 ? h('p', { class: 'muted' }, 'None.') : table(['step', 'code', 'message'], view.errors.map((e) => h('tr', {}, h('td', {}, e.step), h('td', {}, e.code), h('td', {}, e.message)))),
    );
  }
  render();
  shown = true;
  live = executionDiagram(view, stepData);
  live.update(view);
  stepData.update(view);
  tickWhileRunning({ current: () => view, target: () => main.querySelector(`#execution-duration[data-execution="${CSS.escape(id)}"]`), format: duration, tail: tailLog });
  page(`Execution ${id}`, body, h('h2', {}, 'Diagram'), live.element, stepData.element, h('h2', {}, 'Log'), h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => loadLog() }, 'Reload the log')), logBox);
  await loadLog();
}

// ---- router ----------------------------------------------------------------

const routes = [
  [/^#\/runtime$/, runtimePage, 'runtime'],
  [/^#\/connectors$/, connectorsPage, 'connectors'],
  [/^#\/connections$/, connectionsPage, 'connections'],
  [/^#\/connections\/new\/([^/]+)$/, (c) => connectionForm(null, decodeURIComponent(c)), 'connections'],
  [/^#\/connections\/([^/]+)$/, (id) => connectionForm(decodeURIComponent(id)), 'connections'],
  [/^#\/deployments$/, deploymentsPage, 'deployments'],
  [/^#\/deployments\/([^/]+)$/, (p) => deploymentPage(decodeURIComponent(p)), 'deployments'],
  [/^#\/editor$/, () => editorPage(null), 'deployments'],
  [/^#\/editor\/([^/]+)$/, (p) => editorPage(decodeURIComponent(p)), 'deployments'],
  [/^#\/executions$/, executionsPage, 'executions'],
  [/^#\/executions\/([^/]+)$/, (id) => executionPage(decodeURIComponent(id)), 'executions'],
  [/^#\/schedules$/, () => schedulesPage(ui), 'schedules'],
  [/^#\/schedules\/([^/]+)$/, (p) => scheduleEditor(ui, decodeURIComponent(p)), 'schedules'],
  [/^#\/tokens$/, () => tokensPage(ui), 'tokens'],
  [/^#\/accounts$/, () => accountsPage(ui), 'accounts'],
  [/^#\/operations$/, (query) => operationsPage(ui, query), 'operations'],
];

let generation = 0;
async function route() {
  listeners.clear();
  resyncs.clear();
  main.classList.remove('wide');
  if (!session) return renderSignIn();
  const [path, search = ''] = (location.hash || '#/runtime').split('?');
  const match = routes.find(([re]) => re.test(path));
  for (const a of nav.querySelectorAll('a')) a.toggleAttribute('aria-current', false);
  if (!match) {
    location.replace('#/runtime');
    return;
  }
  const current = nav.querySelector(`a[href="#/${match[2]}"]`);
  current?.setAttribute('aria-current', 'page');
  const mine = ++generation;
  try {
    const args = match[0].exec(path).slice(1);
    await match[1](...args, new URLSearchParams(search));
  } catch (e) {
    if (mine !== generation || !session) return;
    page('Something went wrong', h('p', { class: 'panel error', role: 'alert' }, errorText(e)));
  }
}
// a form with unsaved changes holds the page unless the user agrees to leave it
let shownHash = location.hash;
window.addEventListener('hashchange', () => {
  if (!unsaved.mayLeave()) {
    history.replaceState(null, '', shownHash || '#/');
    return;
  }
  shownHash = location.hash;
  say('');
  void route();
});

(async () => {
  if (token.get()) {
    try {
      await startSession();
    } catch {
      token.clear();
    }
  }
  await route();
})();
