// A shared album (/ui/shared#album=<id>&token=<token>): the album an album token opens, read
// only, no sign-in. The token stays in the fragment (never sent in a Referer or a server log);
// the page sends it as `token=` to the API and to `/img`.
import { createGrid, createViewer } from './grid.js';

const $ = (id) => document.getElementById(id);
const args = new URLSearchParams(window.location.hash.slice(1));
const album = args.get('album') || '';
const token = args.get('token') || '';
const t = `token=${encodeURIComponent(token)}`;
const label = (img, i) => img.description || (img.tags.length ? img.tags.join(', ') : `Image ${i + 1}`);
const src = (img) => `${img.url}${img.url.includes('?') ? '&' : '?'}${t}`;

async function get(path) {
  const r = await fetch(path);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error ? body.error.message : `HTTP ${r.status}`);
  return body;
}

let a = null;
try {
  a = (await get(`/api/v1/albums/${encodeURIComponent(album)}?${t}`)).album;
} catch (e) {
  $('status').textContent = `This album cannot be shown: ${e.message}`;
}
if (a) {
  $('title').textContent = a.name;
  document.title = `${a.name} · Refract`;
  $('description').textContent = a.description || '';
  // The grid starts loading as soon as it exists (its sentinel is in view).
  const grid = createGrid({
    list: $('grid'), sentinel: $('more'), status: $('status'), count: $('count'), src, label,
    // Album order, paged by number (the cursor is the next page).
    async next(cursor) {
      const page = Number(cursor || 1);
      const body = await get(`/api/v1/albums/${encodeURIComponent(album)}/images?per_page=50&page=${page}&${t}`);
      return { items: body.images, cursor: page * body.per_page < body.total ? String(page + 1) : null };
    },
    open: (i) => viewer.open(i),
  });
  const viewer = createViewer({
    dialog: $('viewer'), img: $('viewer-img'), caption: $('viewer-caption'), prev: $('prev'),
    next: $('next'), close: $('close'), grid, src, label,
  });
}
