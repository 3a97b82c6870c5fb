// The public gallery (/gallery): the public images of the configured tenant, newest first
// (cursor paging of GET /api/v1/gallery), in the shared grid and viewer. Public API only.
import { createGrid, createViewer } from './grid.js';

const $ = (id) => document.getElementById(id);
const label = (img, i) => img.description || (img.tags.length ? img.tags.join(', ') : `Image ${i + 1}`);
const src = (img) => img.path;

const grid = createGrid({
  list: $('grid'), sentinel: $('more'), status: $('status'), count: $('count'), src, label,
  async next(cursor) {
    const r = await fetch(`/api/v1/gallery?limit=40${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : `HTTP ${r.status}`);
    return { items: body.images, cursor: body.next_cursor };
  },
  open: (i) => viewer.open(i),
});
const viewer = createViewer({
  dialog: $('viewer'), img: $('viewer-img'), caption: $('viewer-caption'), prev: $('prev'),
  next: $('next'), close: $('close'), grid, src, label,
});
grid.more();
