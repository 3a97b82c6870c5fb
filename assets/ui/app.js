// The browser (/ui/): the tenant's images in the shared grid, searched (q) and filtered by tags
// (all of / any of / none of), sorted, paged by cursor; the viewer's panel shows the tags, the
// generation info (prompt, negative prompt, parameters, each with a copy button) and the EXIF.
// Signed in through the browser session; public API only.
import { api, currentToken, refresh, signOut } from './session.js';
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
// Uploads: one request per file (so one bad file fails alone), with a progress bar each and
// overall, the batch's tags and privacy, and the API's own message for a refused file.
const queue = $('queue');
const overall = $('overall');
$('upload-open').addEventListener('click', () => {
  $('upload').hidden = !$('upload').hidden;
  if (!$('upload').hidden) $('files').focus();
});
function uploadOne(file, progress) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append('file', file, file.name);
    const tags = $('up-tags').value.split(',').map((t) => t.trim()).filter(Boolean).join(',');
    if (tags) form.append('tags', tags);
    if ($('up-private').checked) form.append('is_private', 'true');
    const send = (tokenRetry) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/api/v1/images');
      xhr.setRequestHeader('Authorization', `Bearer ${currentToken()}`);
      xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) progress(e.loaded / e.total); });
      xhr.addEventListener('load', async () => {
        if (xhr.status === 401 && tokenRetry && (await refresh())) { send(false); return; }
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        resolve(xhr.status === 201 ? { ok: true } : { ok: false, message: body.error ? body.error.message : `HTTP ${xhr.status}` });
      });
      xhr.addEventListener('error', () => resolve({ ok: false, message: 'the connection failed' }));
      xhr.send(form);
    };
    send(true);
  });
}
async function upload(files) {
  $('upload').hidden = false;
  const rows = [...files].map((file) => {
    const li = el('li');
    const name = el('span', file.name, 'name');
    const bar = el('progress');
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute('aria-label', `Upload of ${file.name}`);
    const state = el('span', 'waiting', 'state');
    li.append(name, bar, state);
    queue.append(li);
    return { file, bar, state, li };
  });
  let done = 0;
  let failed = 0;
  const total = rows.length;
  overall.textContent = `0 of ${total} uploaded`;
  // Two at a time.
  const work = rows.slice();
  await Promise.all([0, 1].map(async () => {
    while (work.length) {
      const r = work.shift();
      r.state.textContent = 'uploading';
      const res = await uploadOne(r.file, (f) => { r.bar.value = f; });
      r.bar.value = 1;
      if (res.ok) { done += 1; r.state.textContent = 'done'; r.li.className = 'ok'; }
      else { failed += 1; r.state.textContent = res.message; r.li.className = 'failed'; }
      overall.textContent = `${done} of ${total} uploaded${failed ? `, ${failed} refused` : ''}`;
    }
  }));
  grid.reset();
}
$('files').addEventListener('change', (e) => { upload(e.target.files); e.target.value = ''; });
for (const target of [document.body]) {
  target.addEventListener('dragover', (e) => { e.preventDefault(); $('drop').classList.add('over'); });
  target.addEventListener('dragleave', () => $('drop').classList.remove('over'));
  target.addEventListener('drop', (e) => {
    e.preventDefault();
    $('drop').classList.remove('over');
    if (e.dataTransfer && e.dataTransfer.files.length) upload(e.dataTransfer.files);
  });
}

$('signout').addEventListener('click', async () => {
  await signOut();
  window.location.replace('/ui/login');
});

if (user) {
  $('who').textContent = user.email;
  grid.more();
}
