// The public gallery (/gallery): the public images of the configured tenant, newest first, in
// a justified grid with infinite scroll (cursor paging of GET /api/v1/gallery), ThumbHash
// placeholders while thumbnails load, `srcset`/`sizes` so each screen gets the width it needs,
// and a viewer (←/→, Esc, swipe). Uses only the public API.
import { thumbHashToDataURL } from './thumbhash.js';

const grid = document.getElementById('grid');
const status = document.getElementById('status');
const count = document.getElementById('count');
const viewer = document.getElementById('viewer');
const viewerImg = document.getElementById('viewer-img');
const caption = document.getElementById('viewer-caption');
const WIDTHS = [160, 240, 320, 480, 640, 960];

const images = [];
let cursor = '';
let done = false;
let loading = false;
let current = -1;

/** `/img/…?w=…` (the path already percent-encoded by the server). */
const variant = (img, w) => `${img.path}${img.path.includes('?') ? '&' : '?'}w=${w}`;

function placeholder(img) {
  const p = img.placeholder || {};
  if (p.thumbhash) {
    try {
      const bytes = Uint8Array.from(atob(p.thumbhash), (c) => c.charCodeAt(0));
      return `url("${thumbHashToDataURL(bytes)}")`;
    } catch (_) { /* fall back to the colour */ }
  }
  return '';
}

function label(img, i) {
  return img.description || (img.tags.length ? img.tags.join(', ') : `Image ${i + 1}`);
}

function add(img) {
  const i = images.push(img) - 1;
  const ratio = img.width > 0 && img.height > 0 ? img.width / img.height : 1;
  const li = document.createElement('li');
  li.style.flexGrow = String(ratio * 100);
  li.style.flexBasis = `${Math.round(ratio * 180)}px`;
  const button = document.createElement('button');
  button.type = 'button';
  button.setAttribute('aria-label', `Open ${label(img, i)}`);
  const frame = document.createElement('span');
  frame.className = 'frame';
  frame.style.paddingBottom = `${(100 / ratio).toFixed(3)}%`;
  const ph = placeholder(img);
  if (ph) frame.style.backgroundImage = ph;
  else if (img.placeholder && img.placeholder.dominant_color) frame.style.backgroundColor = img.placeholder.dominant_color;
  const im = document.createElement('img');
  im.alt = label(img, i);
  im.loading = 'lazy';
  im.decoding = 'async';
  im.width = img.width;
  im.height = img.height;
  im.sizes = `(max-width: 600px) 50vw, ${Math.round(ratio * 260)}px`;
  im.srcset = WIDTHS.map((w) => `${variant(img, w)} ${w}w`).join(', ');
  im.src = variant(img, 320);
  im.addEventListener('load', () => im.classList.add('loaded'));
  frame.append(im);
  button.append(frame);
  button.addEventListener('click', () => open(i));
  li.append(button);
  grid.append(li);
}

async function more() {
  if (loading || done) return;
  loading = true;
  status.textContent = 'Loading…';
  try {
    const r = await fetch(`/api/v1/gallery?limit=40${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : `HTTP ${r.status}`);
    body.images.forEach(add);
    cursor = body.next_cursor || '';
    done = !body.next_cursor;
    count.textContent = `${images.length} image${images.length === 1 ? '' : 's'}`;
    status.textContent = done ? (images.length ? '' : 'No public images yet.') : '';
  } catch (e) {
    status.textContent = `Could not load the gallery: ${e.message}`;
  } finally {
    loading = false;
  }
  // Keep filling while the sentinel is still on screen.
  if (!done && sentinelVisible) more();
}

let sentinelVisible = false;
new IntersectionObserver((entries) => {
  sentinelVisible = entries.some((e) => e.isIntersecting);
  if (sentinelVisible) more();
}, { rootMargin: '800px 0px' }).observe(document.getElementById('more'));

function show(i) {
  current = (i + images.length) % images.length;
  const img = images[current];
  const w = Math.min(2400, Math.ceil(window.innerWidth * (window.devicePixelRatio || 1)));
  viewerImg.src = variant(img, Math.min(w, img.width || w));
  viewerImg.alt = label(img, current);
  caption.textContent = `${label(img, current)} — ${current + 1} / ${images.length}`;
  // Near the end: fetch the next page so → keeps going.
  if (current >= images.length - 3) more();
}

function open(i) {
  show(i);
  if (!viewer.open) viewer.showModal();
  document.getElementById('close').focus();
}

document.getElementById('prev').addEventListener('click', () => show(current - 1));
document.getElementById('next').addEventListener('click', () => show(current + 1));
document.getElementById('close').addEventListener('click', () => viewer.close());
viewer.addEventListener('keydown', (e) => {
  if (e.key === 'ArrowRight') { show(current + 1); e.preventDefault(); }
  if (e.key === 'ArrowLeft') { show(current - 1); e.preventDefault(); }
});
viewer.addEventListener('close', () => {
  const target = grid.children[current];
  if (target) target.querySelector('button').focus();
});
let touchX = null;
viewer.addEventListener('touchstart', (e) => { touchX = e.touches[0].clientX; }, { passive: true });
viewer.addEventListener('touchend', (e) => {
  if (touchX === null) return;
  const dx = e.changedTouches[0].clientX - touchX;
  if (Math.abs(dx) > 40) show(current + (dx < 0 ? 1 : -1));
  touchX = null;
});

more();
