// Schedules: every deployed process with its cron schedules and their next runs, and an
// editor per process (set, clear). The runtime checks cron and time zone; its refusal is
// shown at the field, named by the field's title.
import { api } from '../api.js';
import { h, table, when } from '../dom.js';
import { field, showProblems } from './fields.js';

const describe = (s) => `${s.cron}${s.timezone ? ` (${s.timezone})` : ''}${s.catchUp === 'once' ? ', catch-up once' : ''}`;

export async function schedulesPage(ui) {
  const { deployments } = await api('GET', '/deployments');
  const active = deployments.filter((d) => d.activeVersion !== null);
  const details = await Promise.all(active.map((d) => api('GET', `/deployments/${encodeURIComponent(d.process)}`)));
  ui.page(
    'Schedules',
    active.length === 0
      ? h('p', { class: 'muted' }, 'No process is deployed.')
      : table(
          ['process', 'schedules', 'next runs', ''],
          details.map((d) =>
            h(
              'tr',
              { 'data-process': d.process },
              h('td', {}, d.process, h('div', { class: 'hint' }, d.name)),
              h('td', {}, d.schedules.length === 0 ? h('span', { class: 'muted' }, 'none') : d.schedules.map(describe).join('; ')),
              h('td', {}, (d.nextRuns ?? []).map((r) => (r ? when(r) : 'not armed')).join(', ') || '—'),
              h('td', {}, h('a', { href: `#/schedules/${encodeURIComponent(d.process)}`, 'aria-label': `Edit the schedules of ${d.process}` }, 'Edit')),
            ),
          ),
        ),
  );
}

function timezoneList() {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return h('datalist', { id: 'timezones' }, ['UTC', ...zones].map((z) => h('option', { value: z })));
}

/** One schedule's fields: cron, time zone, catch-up; `remove` drops the row. */
function scheduleRow(index, s, remove) {
  const cron = field('Cron expression', h('input', { type: 'text', name: `cron-${index}`, value: s.cron ?? '', spellcheck: 'false', autocomplete: 'off' }), { required: true, hint: 'Five or six fields: "0 * * * *" is every hour.' });
  const timezone = field('Time zone', h('input', { type: 'text', name: `timezone-${index}`, value: s.timezone ?? '', list: 'timezones', spellcheck: 'false', autocomplete: 'off' }), { hint: 'An IANA name such as Europe/Paris; empty is the runtime\'s time zone.' });
  const catchUp = field('Missed fires', h('select', { name: `catchUp-${index}` }, h('option', { value: 'skip' }, 'skip them'), h('option', { value: 'once', selected: s.catchUp === 'once' }, 'run once at start')));
  const row = h('div', { class: 'schedule-row', 'data-schedule': String(index) }, cron.wrap, timezone.wrap, catchUp.wrap, h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove schedule ${index + 1}`, onclick: remove }, 'Remove')));
  const read = () => ({ cron: cron.control.value.trim(), ...(timezone.control.value.trim() ? { timezone: timezone.control.value.trim() } : {}), ...(catchUp.control.value === 'once' ? { catchUp: 'once' } : {}) });
  return { row, read, fields: { cron, timezone, catchUp } };
}

export async function scheduleEditor(ui, processId) {
  const d = await api('GET', `/deployments/${encodeURIComponent(processId)}`);
  let rows = [];
  const list = h('div', { id: 'schedule-rows' });
  const general = h('ul', { class: 'problems', hidden: true });
  const render = (schedules) => {
    rows = schedules.map((s, i) => scheduleRow(i, s, () => {
      render(rows.map((r) => r.read()).filter((_, j) => j !== i));
      form.dispatchEvent(new Event('change'));
    }));
    list.replaceChildren(...rows.map((r) => r.row));
    if (rows.length === 0) list.append(h('p', { class: 'muted' }, 'No schedule: the process runs only when started.'));
  };
  const byPath = () => new Map(rows.flatMap((r, i) => Object.entries(r.fields).map(([k, f]) => [`/schedules/${i}/${k}`, f])));
  const save = async (schedules) => {
    const empty = schedules.flatMap((s, i) => (s.cron === '' ? [{ path: `/schedules/${i}/cron`, message: 'is required' }] : []));
    if (empty.length > 0) {
      showProblems(empty, byPath(), general)?.focus();
      ui.say(`The form has ${empty.length} problem(s).`, true);
      return;
    }
    try {
      await api('PUT', `/deployments/${encodeURIComponent(d.process)}/schedules`, { schedules });
      ui.unsaved.saved(form);
      await scheduleEditor(ui, processId);
      ui.say(schedules.length === 0 ? `Cleared the schedules of ${d.process}.` : `Saved ${schedules.length} schedule(s) of ${d.process}.`);
    } catch (e) {
      (showProblems(ui.problemsOf(e), byPath(), general) ?? list).focus?.();
      ui.say(ui.errorText(e), true);
    }
  };
  const form = ui.unsaved.watch(
    h(
      'form',
      { novalidate: true, id: 'schedules-form', onsubmit: (event) => (event.preventDefault(), save(rows.map((r) => r.read()))) },
      list,
      timezoneList(),
      general,
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => (render([...rows.map((r) => r.read()), { cron: '' }]), rows.at(-1).fields.cron.control.focus()) }, 'Add a schedule'),
        h('button', { type: 'submit' }, 'Save schedules'),
        h('button', { type: 'button', class: 'danger', disabled: d.schedules.length === 0, onclick: () => confirm(`Remove every schedule of ${d.process}?`) && save([]) }, 'Clear schedules'),
        h('a', { href: '#/schedules', class: 'button secondary' }, 'Back to schedules'),
      ),
    ),
  );
  render(d.schedules);
  ui.page(
    `Schedules of ${d.process}`,
    d.activeVersion === null ? h('p', { class: 'panel error' }, 'This process is undeployed: deploy it again to schedule it.') : null,
    h('h2', {}, 'Next runs'),
    d.schedules.length === 0 ? h('p', { class: 'muted', id: 'next-runs' }, 'None.') : h('ul', { id: 'next-runs' }, d.schedules.map((s, i) => h('li', {}, `${describe(s)}: `, d.nextRuns?.[i] ? when(d.nextRuns[i]) : 'not armed'))),
    h('h2', {}, 'Edit'),
    form,
  );
}
