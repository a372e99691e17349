// A tiny element builder: h('button', {type: 'button', onclick}, 'Save').
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'value') el.value = value;
    else if (name === 'checked') el.checked = true;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function badge(status) {
  return h('span', { class: `badge s-${status}` }, status);
}

export function table(headers, rows, caption) {
  for (const row of rows) labelCells(row, headers);
  return h('div', { class: 'table-wrap' }, h('table', {}, caption ? h('caption', { class: 'muted' }, caption) : null, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, rows)));
}

/** Names each cell of a row by its column (`data-label`), which the narrow layout shows on the card. */
export function labelCells(row, headers) {
  [...row.children].forEach((cell, i) => {
    if (cell.dataset.label === undefined) cell.dataset.label = headers[i] ?? '';
  });
  return row;
}

export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** el.append / el.replaceChildren, leaving out null, undefined and false (which they would print). */
export function put(el, method, ...children) {
  el[method](...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/** Bytes as base64 (a file's body sent to the API). */
export function toBase64(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
