// Small forms of the operator pages: a labelled control with its error line, and the
// runtime's problems (by JSON pointer) shown at their fields, named by the field's title.
import { h } from '../dom.js';

let serial = 0;

/** A labelled control: {wrap, control, title, show(message)}; `name` keys it for problems. */
export function field(title, control, { hint, required } = {}) {
  const id = control.id || (control.id = `pf${++serial}`);
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const help = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (help) control.setAttribute('aria-describedby', help.id);
  const mark = required ? h('span', { class: 'required', 'aria-hidden': 'true' }, '*') : null;
  const wrap = h('div', { class: 'field', 'data-field-wrap': control.name || id }, h('label', { for: id }, title, mark), control, help, error);
  let current = null;
  function show(message) {
    current = message ?? null;
    error.textContent = message ?? '';
    error.hidden = !message;
    wrap.classList.toggle('invalid', Boolean(message));
    const described = new Set((control.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean));
    if (message) {
      control.setAttribute('aria-invalid', 'true');
      described.add(error.id);
    } else {
      control.removeAttribute('aria-invalid');
      described.delete(error.id);
    }
    if (described.size > 0) control.setAttribute('aria-describedby', [...described].join(' '));
  }
  return { wrap, control, title, show, add: (message) => show(current ? `${current}; ${message}` : message) };
}

/** A problem's message that names its field by title first, as the runtime's own do. */
export function titled(title, message) {
  return message.startsWith('"') ? message : `"${title}" ${message}`;
}

/** A request-schema pointer (`/body/name`) and a service pointer (`/name`) name the same field. */
export function fieldPath(path) {
  return (path ?? '').replace(/^\/(body|querystring)(?=\/|$)/, '');
}

/**
 * Shows `problems` at the fields of `byPath` (pointer → field); the others go to `general`
 * (a list). Clears earlier messages first. Returns the first invalid control, to focus.
 */
export function showProblems(problems, byPath, general) {
  for (const f of byPath.values()) f.show(null);
  general.replaceChildren();
  let first = null;
  for (const p of problems) {
    const f = byPath.get(fieldPath(p.path));
    if (!f) {
      general.append(h('li', {}, p.path ? `${fieldPath(p.path) || '/'}: ${p.message}` : p.message));
      continue;
    }
    f.add(p.plain ? p.message : titled(f.title, p.message));
    first ??= f.control;
  }
  general.hidden = general.childElementCount === 0;
  return first;
}

/** A required text field left empty, in the runtime's words. */
export function requiredProblem(path, f) {
  return f.control.value.trim() === '' ? [{ path, message: `"${f.title}" is required` }] : [];
}

/**
 * A create form whose first field is a required name (`others`: [pointer, field] pairs
 * after it): checks the name here, then `send()` makes the record and `done(made)` shows
 * what follows; the runtime's problems go to their fields, and a refusal without a pointer
 * to the field `fieldOfCode[code]` names (else to the list under the fields).
 */
export function createForm(ui, { id, name, others = [], submit, send, done, fieldOfCode = {} }) {
  const byPath = new Map([['/name', name], ...others]);
  const general = h('ul', { class: 'problems', hidden: true });
  const onsubmit = async (event) => {
    event.preventDefault();
    const local = requiredProblem('/name', name);
    if (local.length > 0) {
      showProblems(local, byPath, general)?.focus();
      ui.say('The form has 1 problem(s).', true);
      return;
    }
    try {
      const made = await send();
      ui.unsaved.saved(form);
      await done(made);
    } catch (e) {
      const problems = ui.problemsOf(e);
      const shown = problems.length > 0 ? problems : [{ path: fieldOfCode[e.code] ?? '', message: e.message, plain: true }];
      (showProblems(shown, byPath, general) ?? name.control).focus();
      ui.say(ui.errorText(e), true);
    }
  };
  const controls = [name.wrap, ...others.map(([, f]) => f.wrap)];
  const form = ui.unsaved.watch(h('form', { novalidate: true, id, onsubmit }, controls, general, h('div', { class: 'actions' }, h('button', { type: 'submit' }, submit))));
  return form;
}
