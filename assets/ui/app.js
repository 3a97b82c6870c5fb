// The browser (/ui/): the tenant's images in the shared grid, searched (q) and filtered by tags
// (all of / any of / none of), sorted, paged by cursor; the viewer's panel shows the tags, the
// generation info (prompt, negative prompt, parameters, each with a copy button) and the EXIF.
// Signed in through the browser session; public API only.
import { api, refresh, signOut } from './session.js';
import { createGrid, createViewer } from './grid.js';

const $ = (id) => document.getElementById(id);
// Signed in first: nothing is asked of the API before there is a token.
const user = await refresh();
if (!user) window.location.replace('/ui/login');
let query = new URLSearchParams();
const label = (img) => img.description || img.filename || img.file_name;
const src = (img) => img.url;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function copyButton(what, text) {
  const b = el('button', 'Copy', 'copy');
  b.type = 'button';
  b.setAttribute('aria-label', `Copy the ${what}`);
  b.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(text); b.textContent = 'Copied'; } catch (_) { b.textContent = 'Copy failed'; }
  });
  return b;
}

function describe(img) {
  $('panel-title').textContent = img.filename || img.file_name;
  const tags = $('panel-tags');
  tags.replaceChildren(el('h3', 'Tags'), el('p', img.tags.length ? img.tags.join(', ') : 'None'));
  const gen = $('panel-gen');
  gen.replaceChildren();
  const g = img.generation;
  if (g) {
    gen.append(el('h3', 'Generation'));
    for (const [key, name] of [['prompt', 'Prompt'], ['negative_prompt', 'Negative prompt']]) {
      if (!g[key]) continue;
      const block = el('div', undefined, 'gen');
      block.append(el('h4', name), el('p', g[key], `text ${key}`), copyButton(name.toLowerCase(), g[key]));
      gen.append(block);
    }
    const dl = el('dl');
    for (const [key, name] of [['model', 'Model'], ['sampler', 'Sampler'], ['steps', 'Steps'], ['cfg_scale', 'CFG'],
      ['seed', 'Seed'], ['size', 'Size']]) {
      if (g[key] === null || g[key] === undefined) continue;
      dl.append(el('dt', name), el('dd', String(g[key])));
    }
    if (g.loras && g.loras.length) dl.append(el('dt', 'LoRAs'), el('dd', g.loras.join(', ')));
    gen.append(dl);
  }
  const exif = $('panel-exif');
  exif.replaceChildren();
  const entries = Object.entries(img.exif || {});
  if (entries.length) {
    exif.append(el('h3', 'EXIF'));
    const dl = el('dl');
    for (const [k, v] of entries) dl.append(el('dt', k), el('dd', typeof v === 'object' ? JSON.stringify(v) : String(v)));
    exif.append(dl);
  }
}

const grid = createGrid({
  list: $('grid'), sentinel: $('more'), status: $('status'), count: $('count'), src, label,
  async next(cursor) {
    const q = new URLSearchParams(query);
    q.set('limit', '50');
    if (cursor) q.set('cursor', cursor);
    const body = await api(`/api/v1/images?${q}`);
    return { items: body.images, cursor: body.next_cursor };
  },
  open: (i) => viewer.open(i),
});
const viewer = createViewer({
  dialog: $('viewer'), img: $('viewer-img'), caption: $('viewer-caption'), prev: $('prev'),
  next: $('next'), close: $('close'), grid, src, label, describe,
});

$('filters').addEventListener('submit', (e) => {
  e.preventDefault();
  query = new URLSearchParams();
  const q = $('q').value.trim();
  if (q) query.set('q', q);
  for (const k of ['tag', 'any_tag', 'not_tag']) {
    const v = $(k).value.split(',').map((t) => t.trim()).filter(Boolean).join(',');
    if (v) query.set(k, v);
  }
  query.set('sort', $('sort').value);
  grid.reset();
});
$('signout').addEventListener('click', async () => {
  await signOut();
  window.location.replace('/ui/login');
});

if (user) {
  $('who').textContent = user.email;
  grid.more();
}
