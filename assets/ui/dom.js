// Small DOM helpers shared by the pages (no framework): building elements, copy buttons,
// tables, the navigation bar and the byte and date formats.

/** An element: `h('button', {type: 'button', onclick: f, class: 'x'}, 'text', child…)`.
 * `on…` props become listeners, `class` the class name, others attributes (`true` sets an
 * empty one, `false`/`null` none). */
export function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'value') e.value = v;
    else if (k === 'checked') e.checked = Boolean(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const $ = (id) => document.getElementById(id);

/** A button that copies `text` (or `text()`) to the clipboard. */
export function copyButton(what, text) {
  const b = h('button', { type: 'button', class: 'copy', 'aria-label': `Copy the ${what}` }, 'Copy');
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(typeof text === 'function' ? text() : text);
      b.textContent = 'Copied';
    } catch (_) {
      b.textContent = 'Copy failed';
    }
  });
  return b;
}

/** A table of `rows` with `columns`: `[[heading, row => cell (text or node)], …]`. */
export function table(caption, columns, rows) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map(([name]) => h('th', { scope: 'col' }, name)))),
    h('tbody', {}, rows.length
      ? rows.map((r) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(r)))))
      : h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'None')))));
}

/** `1.2 MB`. */
export function bytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${units[i]}`;
}

/** A local date and time, or `—`. */
export const when = (t) => (t ? new Date(t).toLocaleString() : '—');

/** Comma-separated words, trimmed, empties dropped. */
export const words = (s) => s.split(',').map((t) => t.trim()).filter(Boolean);

/** The navigation of the signed-in pages, `here` marked; Admin only for admins. */
export function nav(here, user) {
  const links = [['/ui/', 'Images'], ['/ui/albums', 'Albums']];
  if (isAdmin(user)) links.push(['/ui/admin', 'Admin']);
  links.push(['/gallery', 'Gallery']);
  return h('nav', { class: 'nav', 'aria-label': 'Pages' }, links.map(([href, name]) => h('a',
    { href, 'aria-current': href === here ? 'page' : false }, name)));
}

export const isAdmin = (user) => Boolean(user && (user.role === 'admin' || (user.scopes || []).includes('admin')));

/** A line in `status` (an element with role=status) for a moment. */
export function say(status, text) {
  status.textContent = text;
  clearTimeout(status.sayTimer);
  status.sayTimer = setTimeout(() => { if (status.textContent === text) status.textContent = ''; }, 6000);
}
