// The image grid and the viewer shared by the pages: a justified grid (each item grows with
// its aspect ratio), ThumbHash placeholders, `srcset` thumbnails from `/img`, infinite scroll
// through a `next()` that returns the next page, and a modal viewer (←/→, Esc, swipe).
import { thumbHashToDataURL } from './thumbhash.js';

const WIDTHS = [160, 240, 320, 480, 640, 960];

/** `/img/…?w=…` from an image's `/img` path or URL. */
export const variant = (url, w) => `${url}${url.includes('?') ? '&' : '?'}w=${w}`;

function placeholder(p) {
  if (p && p.thumbhash) {
    try {
      return `url("${thumbHashToDataURL(Uint8Array.from(atob(p.thumbhash), (c) => c.charCodeAt(0)))}")`;
    } catch (_) { /* fall back to the colour */ }
  }
  return '';
}

/**
 * A grid in `list` (a <ul>), filled by `next(cursor)` (→ `{items, cursor}`, `cursor` null on
 * the last page; "" asks for the first), each item shown by
 * `src(item)` and named by `label(item, i)`; `open(i)` when one is chosen.
 */
export function createGrid({ list, sentinel, status, count, next, src, label, open }) {
  const items = [];
  let done = false;
  let loading = false;
  let visible = false;
  // A search started over: answers to the previous one are dropped.
  let generation = 0;
  let cursor = '';

  function add(item) {
    const i = items.push(item) - 1;
    const ratio = item.width > 0 && item.height > 0 ? item.width / item.height : 1;
    const li = document.createElement('li');
    li.style.flexGrow = String(ratio * 100);
    li.style.flexBasis = `${Math.round(ratio * 180)}px`;
    const button = document.createElement('button');
    button.type = 'button';
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
    im.sizes = `(max-width: 600px) 50vw, ${Math.round(ratio * 260)}px`;
    im.srcset = WIDTHS.map((w) => `${variant(src(item), w)} ${w}w`).join(', ');
    im.src = variant(src(item), 320);
    im.addEventListener('load', () => im.classList.add('loaded'));
    frame.append(im);
    button.append(frame);
    button.addEventListener('click', () => open(i));
    li.append(button);
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
      list.replaceChildren();
      count.textContent = '';
      cursor = '';
      done = false;
      loading = false;
      more();
    },
    focus(i) {
      const li = list.children[i];
      if (li) li.querySelector('button').focus();
    },
  };
}

/** The viewer in `dialog`: `show(i)` draws item i of `grid.items` with `src`, `label`, and
 * `describe(item)` for its panel, if any. */
export function createViewer({ dialog, img, caption, prev, next, close, grid, src, label, describe }) {
  let current = -1;
  function show(i) {
    const items = grid.items;
    if (!items.length) return;
    current = (i + items.length) % items.length;
    const item = items[current];
    const w = Math.min(2400, Math.ceil(window.innerWidth * (window.devicePixelRatio || 1)));
    img.src = variant(src(item), Math.min(w, item.width || w));
    img.alt = label(item, current);
    caption.textContent = `${label(item, current)} — ${current + 1} / ${items.length}`;
    if (describe) describe(item);
    if (current >= items.length - 3) grid.more();
  }
  prev.addEventListener('click', () => show(current - 1));
  next.addEventListener('click', () => show(current + 1));
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('keydown', (e) => {
    if (e.target.closest && e.target.closest('input, textarea')) return;
    if (e.key === 'ArrowRight') { show(current + 1); e.preventDefault(); }
    if (e.key === 'ArrowLeft') { show(current - 1); e.preventDefault(); }
  });
  dialog.addEventListener('close', () => grid.focus(current));
  let touchX = null;
  dialog.addEventListener('touchstart', (e) => { touchX = e.touches[0].clientX; }, { passive: true });
  dialog.addEventListener('touchend', (e) => {
    if (touchX === null) return;
    const dx = e.changedTouches[0].clientX - touchX;
    if (Math.abs(dx) > 40) show(current + (dx < 0 ? 1 : -1));
    touchX = null;
  });
  return {
    open(i) {
      show(i);
      if (!dialog.open) dialog.showModal();
      close.focus();
    },
  };
}
