// Search and paging of the console's lists (connections, deployments, executions): the
// state lives in the page's hash (`#/connections?q=orders&cursor=…`), the API pages with
// its opaque cursor, and a page shows "Next page" while the API gives a nextCursor.
import { h } from '../dom.js';

export const pageSize = 25;

/** The API query of a list page: its filters, the search, the cursor and the page size. */
export function apiQuery(query, filters = {}) {
  const params = new URLSearchParams({ limit: String(pageSize) });
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  for (const k of ['q', 'cursor']) if (query.get(k)) params.set(k, query.get(k));
  return '?' + params;
}

/** The hash of a list page with these parameters (empty ones left out). */
export function listHash(base, values) {
  const params = new URLSearchParams(Object.entries(values).filter(([, v]) => v));
  return `${base}${params.size ? '?' + params : ''}`;
}

/** A search box; searching starts again at the first page, keeping `keep` (the filters). */
export function searchBox(base, query, label, what, keep = () => ({})) {
  const input = h('input', { type: 'search', id: 'list-search', name: 'q', value: query.get('q') ?? '', placeholder: what, autocomplete: 'off', spellcheck: 'false' });
  return h(
    'form',
    { class: 'search filters', role: 'search', onsubmit: (event) => (event.preventDefault(), (location.hash = listHash(base, { ...keep(), q: input.value.trim() }))) },
    h('label', { for: 'list-search' }, label, input),
    h('button', { type: 'submit', class: 'secondary' }, 'Search'),
    query.get('q') ? h('a', { href: listHash(base, keep()), class: 'button secondary' }, 'Clear search') : null,
  );
}

/** "First page" once paged on, "Next page" while there is one. */
export function pager(base, query, nextCursor, keep = {}) {
  const q = query.get('q') ?? '';
  const first = query.get('cursor') ? h('a', { href: listHash(base, { ...keep, q }), class: 'button secondary', id: 'first-page' }, 'First page') : null;
  const next = nextCursor ? h('a', { href: listHash(base, { ...keep, q, cursor: nextCursor }), class: 'button secondary', id: 'next-page' }, 'Next page') : null;
  return first || next ? h('nav', { class: 'pager', 'aria-label': 'Pages' }, first, next) : null;
}
