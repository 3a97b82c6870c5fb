// The image grid and the viewer shared by the pages: a justified grid (each item grows with
// its aspect ratio), ThumbHash placeholders, `srcset` thumbnails from `/img`, infinite scroll
// through a `next()` that returns the next page, optional multi-select (checkboxes, shift-click
// for a range), and a modal viewer (←/→, Esc, swipe; zoom and pan at full resolution).
import { thumbHashToDataURL } from './thumbhash.js';

const WIDTHS = [160, 240, 320, 480, 640, 960];

/** `/img/…?w=…&fm=webp` from an image's `/img` path or URL: WebP, which every browser the
 * pages support decodes, at a fraction of a PNG's or JPEG's bytes (`fm=auto` keeps the
 * source's family unless the server negotiates). */
export const variant = (url, w) => `${url}${url.includes('?') ? '&' : '?'}w=${w}&fm=webp`;

function placeholder(p) {
  if (p && p.thumbhash) {
    try {
      return `url("${thumbHashToDataURL(Uint8Array.from(atob(p.thumbhash), (c) => c.charCodeAt(0)))}")`;
    } catch (_) { /* fall back to the colour */ }
  }
  return '';
}

/** Point `im` at `url`: directly, or (`load` given: a private image, which an <img> cannot
 * ask for with a token) through `load(url)` → an object URL. */
function point(im, url, load) {
  if (!load) { im.src = url; return; }
  load(url).then((blob) => {
    if (im.dataset.want !== url) return;
    if (im.src.startsWith('blob:')) URL.revokeObjectURL(im.src);
    im.src = blob;
  }).catch(() => { im.classList.add('failed'); });
  im.dataset.want = url;
}

/**
 * A grid in `list` (a <ul>), filled by `next(cursor)` (→ `{items, cursor}`, `cursor` null on
 * the last page; "" asks for the first), each item shown by
 * `src(item)` and named by `label(item, i)`; `open(i)` when one is chosen. With `selectable`,
 * each item has a checkbox and `onselect(ids)` hears the selection change. `loadPrivate(url)`
 * (→ an object URL) fetches the thumbnails of private items.
 */
export function createGrid({ list, sentinel, status, count, next, src, label, open, selectable, onselect, loadPrivate }) {
  const items = [];
  const selected = new Set();
  let lastPicked = -1;
  let done = false;
  let loading = false;
  let visible = false;
  // A search started over: answers to the previous one are dropped.
  let generation = 0;
  let cursor = '';

  function pick(i, on, range) {
    const from = range && lastPicked >= 0 ? Math.min(lastPicked, i) : i;
    const to = range && lastPicked >= 0 ? Math.max(lastPicked, i) : i;
    for (let k = from; k <= to; k += 1) {
      const id = items[k].id;
      if (on) selected.add(id); else selected.delete(id);
      const li = list.children[k];
      if (li) {
        li.classList.toggle('selected', on);
        li.querySelector('input.pick').checked = on;
      }
    }
    lastPicked = i;
    list.classList.toggle('selecting', selected.size > 0);
    if (onselect) onselect([...selected]);
  }

  function add(item) {
    const i = items.push(item) - 1;
    const ratio = item.width > 0 && item.height > 0 ? item.width / item.height : 1;
    const li = document.createElement('li');
    li.style.flexGrow = String(ratio * 100);
    li.style.flexBasis = `${Math.round(ratio * 180)}px`;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'open';
    button.setAttribute('aria-label', `Open ${label(item, i)}`);
    const frame = document.createElement('span');
    frame.className = 'frame';
    frame.style.paddingBottom = `${(100 / ratio).toFixed(3)}%`;
    const ph = placeholder(item.placeholder);
    if (ph) frame.style.backgroundImage = ph;
    else if (item.placeholder && item.placeholder.dominant_color) frame.style.backgroundColor = item.placeholder.dominant_color;
    const im = document.createElement('img');
    im.alt = label(item, i);
    im.loading = 'lazy';
    im.decoding = 'async';
    im.width = item.width;
    im.height = item.height;
    im.addEventListener('load', () => im.classList.add('loaded'));
    if (item.is_private && loadPrivate) {
      // One width for the box this item gets (no srcset: each is a fetch with the token).
      const want = Math.round(ratio * 260 * (window.devicePixelRatio || 1));
      point(im, variant(src(item), WIDTHS.find((w) => w >= want) || 960), loadPrivate);
    } else {
      im.sizes = `(max-width: 600px) 50vw, ${Math.round(ratio * 260)}px`;
      im.srcset = WIDTHS.map((w) => `${variant(src(item), w)} ${w}w`).join(', ');
      im.src = variant(src(item), 320);
    }
    frame.append(im);
    button.append(frame);
    button.addEventListener('click', (e) => {
      // With a selection under way, a click selects (shift: a range) rather than opens.
      if (selectable && (selected.size || e.shiftKey)) pick(i, !selected.has(item.id), e.shiftKey);
      else open(i);
    });
    li.append(button);
    if (selectable) {
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.className = 'pick';
      box.setAttribute('aria-label', `Select ${label(item, i)}`);
      box.addEventListener('click', (e) => pick(i, box.checked, e.shiftKey));
      li.append(box);
    }
    if (item.is_private) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'private';
      li.append(badge);
    }
    list.append(li);
  }

  async function more() {
    if (loading || done) return;
    loading = true;
    const mine = generation;
    status.textContent = 'Loading…';
    try {
      const page = await next(cursor);
      if (mine !== generation) return;
      page.items.forEach(add);
      cursor = page.cursor || '';
      done = !page.cursor;
      count.textContent = `${items.length}${done ? '' : '+'} image${items.length === 1 ? '' : 's'}`;
      status.textContent = done && !items.length ? 'No images.' : '';
    } catch (e) {
      if (mine !== generation) return;
      status.textContent = `Could not load: ${e.message}`;
      done = true;
    } finally {
      if (mine === generation) loading = false;
    }
    if (mine === generation && !done && visible) more();
  }

  new IntersectionObserver((entries) => {
    visible = entries.some((e) => e.isIntersecting);
    if (visible) more();
  }, { rootMargin: '800px 0px' }).observe(sentinel);

  return {
    items,
    more,
    /** Empty the grid (a new search); `next` starts over. */
    reset() {
      generation += 1;
      items.length = 0;
      for (const im of list.querySelectorAll('img')) if (im.src.startsWith('blob:')) URL.revokeObjectURL(im.src);
      list.replaceChildren();
      count.textContent = '';
      cursor = '';
      done = false;
      loading = false;
      if (selected.size) { selected.clear(); list.classList.remove('selecting'); if (onselect) onselect([]); }
      lastPicked = -1;
      more();
    },
    /** The selected items, in grid order. */
    selection: () => items.filter((it) => selected.has(it.id)),
    /** Select nothing. */
    clear() {
      selected.clear();
      for (const li of list.querySelectorAll('li.selected')) {
        li.classList.remove('selected');
        li.querySelector('input.pick').checked = false;
      }
      list.classList.remove('selecting');
      if (onselect) onselect([]);
    },
    focus(i) {
      const li = list.children[i];
      if (li) li.querySelector('button').focus();
    },
  };
}

/** The viewer in `dialog`: `show(i)` draws item i of `grid.items` with `src`, `label`, and
 * `describe(item, i)` for its panel, if any. Zoom: double-click, the wheel, + / − / 0, or
 * pinch; drag pans. Zoomed, it loads the image at full resolution over the screen-sized one. */
export function createViewer({ dialog, img, caption, prev, next, close, grid, src, label, describe, loadPrivate }) {
  let current = -1;
  let scale = 1;
  let tx = 0;
  let ty = 0;
  let full = false;
  const item = () => grid.items[current];

  function apply() {
    img.style.transform = scale === 1 ? '' : `translate(${tx}px, ${ty}px) scale(${scale})`;
    img.classList.toggle('zoomed', scale > 1);
    dialog.classList.toggle('zooming', scale > 1);
  }

  function load(w) {
    const it = item();
    const url = variant(src(it), Math.min(w, it.width || w));
    if (it.is_private && loadPrivate) point(img, url, loadPrivate);
    else img.src = url;
  }

  function zoom(to, cx, cy) {
    const next = Math.min(8, Math.max(1, to));
    if (next === scale) return;
    // Keep the point under (cx, cy) where it is.
    const r = img.getBoundingClientRect();
    const ox = (cx ?? r.left + r.width / 2) - (r.left + r.width / 2);
    const oy = (cy ?? r.top + r.height / 2) - (r.top + r.height / 2);
    const k = next / scale;
    tx = next === 1 ? 0 : tx - ox * (k - 1);
    ty = next === 1 ? 0 : ty - oy * (k - 1);
    scale = next;
    apply();
    if (scale > 1 && !full) {
      // Progressive: the screen-sized image stays until the full one has come.
      full = true;
      load(Math.min(item().width || 4096, 4096));
    }
  }

  function show(i) {
    const items = grid.items;
    if (!items.length) return;
    current = (i + items.length) % items.length;
    scale = 1; tx = 0; ty = 0; full = false;
    apply();
    const it = items[current];
    load(Math.min(2400, Math.ceil(window.innerWidth * (window.devicePixelRatio || 1))));
    img.alt = label(it, current);
    caption.textContent = `${label(it, current)} — ${current + 1} / ${items.length}`;
    if (describe) describe(it, current);
    if (current >= items.length - 3) grid.more();
  }
  prev.addEventListener('click', () => show(current - 1));
  next.addEventListener('click', () => show(current + 1));
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('keydown', (e) => {
    if (e.target.closest && e.target.closest('input, textarea, select')) return;
    if (e.key === 'ArrowRight') { show(current + 1); e.preventDefault(); }
    if (e.key === 'ArrowLeft') { show(current - 1); e.preventDefault(); }
    if (e.key === '+' || e.key === '=') { zoom(scale * 1.5); e.preventDefault(); }
    if (e.key === '-') { zoom(scale / 1.5); e.preventDefault(); }
    if (e.key === '0') { zoom(1); e.preventDefault(); }
  });
  dialog.addEventListener('close', () => grid.focus(current));
  img.addEventListener('dblclick', (e) => zoom(scale > 1 ? 1 : 2.5, e.clientX, e.clientY));
  img.addEventListener('wheel', (e) => {
    e.preventDefault();
    zoom(scale * (e.deltaY < 0 ? 1.25 : 0.8), e.clientX, e.clientY);
  }, { passive: false });
  // Pan with a mouse or one finger when zoomed; swipe to the next image when not; pinch zooms.
  const pointers = new Map();
  let drag = null;
  let pinch = null;
  img.addEventListener('pointerdown', (e) => {
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    img.setPointerCapture(e.pointerId);
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = { d: Math.hypot(a.x - b.x, a.y - b.y), s: scale };
      drag = null;
    } else {
      drag = { x: e.clientX, y: e.clientY, tx, ty };
    }
  });
  img.addEventListener('pointermove', (e) => {
    if (!pointers.has(e.pointerId)) return;
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pinch && pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      zoom(pinch.s * (Math.hypot(a.x - b.x, a.y - b.y) / pinch.d), (a.x + b.x) / 2, (a.y + b.y) / 2);
    } else if (drag && scale > 1) {
      tx = drag.tx + e.clientX - drag.x;
      ty = drag.ty + e.clientY - drag.y;
      apply();
    }
  });
  const up = (e) => {
    if (drag && scale === 1 && e.pointerType !== 'mouse' && pointers.size === 1) {
      const dx = e.clientX - drag.x;
      if (Math.abs(dx) > 40) show(current + (dx < 0 ? 1 : -1));
    }
    pointers.delete(e.pointerId);
    if (pointers.size < 2) pinch = null;
    drag = null;
  };
  img.addEventListener('pointerup', up);
  img.addEventListener('pointercancel', up);
  return {
    open(i) {
      show(i);
      if (!dialog.open) dialog.showModal();
      close.focus();
    },
    /** Draw the current item again (after a change to it). */
    refresh() { if (current >= 0 && dialog.open) show(current); },
    current: () => current,
    zoom: (to) => zoom(to),
    scale: () => scale,
  };
}
