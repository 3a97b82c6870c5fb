// The browser (/ui/): the tenant's images in the shared grid, searched (q) and filtered by tags
// (all of / any of / none of), sorted, paged by cursor, narrowed to a library folder; selected
// for batch actions (tags, album, privacy, ZIP, delete); the viewer's panel edits tags,
// privacy and albums, makes and revokes share links, and shows the generation info (prompt,
// negative prompt, parameters, each with a copy button) and the EXIF. Uploads by drag and drop
// or picker. Signed in through the browser session or an API key; public API only.
import { api, authFetch, currentToken, failure, refresh, signOut } from './session.js';
import { createGrid, createViewer } from './grid.js';
import { $, copyButton, h, nav, say, when, words } from './dom.js';

// Signed in first: nothing is asked of the API before there is a token.
const user = await refresh();
if (!user) window.location.replace('/ui/login');
let query = new URLSearchParams();
let folder = null;
const label = (img) => img.description || img.filename || img.file_name;
const src = (img) => img.url;
const notice = $('notice');
const canWrite = Boolean(user && (user.role === 'admin' || (user.scopes || []).some((s) => s === 'write' || s === 'admin')));

/** A private image's bytes with the token, as an object URL (an <img> cannot send one). */
async function loadPrivate(url) {
  const r = await authFetch(url);
  if (!r.ok) throw await failure(r);
  return URL.createObjectURL(await r.blob());
}

// Albums, for the upload form, the batch bar and the viewer.
let albums = [];
async function loadAlbums() {
  try {
    albums = (await api('/api/v1/albums?per_page=100')).albums;
  } catch (_) { albums = []; }
  for (const sel of [$('up-album'), $('batch-album')]) {
    const first = sel.options[0];
    sel.replaceChildren(first, ...albums.map((a) => h('option', { value: a.id }, a.name)));
  }
}
async function loadTagNames() {
  try {
    const body = await api('/api/v1/tags?limit=200');
    $('tag-names').replaceChildren(...body.tags.map((t) => h('option', { value: t.name })));
  } catch (_) { /* suggestions only */ }
}

// The viewer's panel.
function describe(img) {
  $('panel-title').textContent = img.filename || img.file_name;
  editPanel(img);
  sharePanel(img);
  const gen = $('panel-gen');
  gen.replaceChildren();
  const g = img.generation;
  if (g) {
    gen.append(h('h3', {}, 'Generation'));
    for (const [key, name] of [['prompt', 'Prompt'], ['negative_prompt', 'Negative prompt']]) {
      if (!g[key]) continue;
      gen.append(h('div', { class: 'gen' }, h('h4', {}, name), h('p', { class: `text ${key}` }, g[key]),
        copyButton(name.toLowerCase(), g[key])));
    }
    const dl = h('dl');
    for (const [key, name] of [['model', 'Model'], ['sampler', 'Sampler'], ['steps', 'Steps'], ['cfg_scale', 'CFG'],
      ['seed', 'Seed'], ['size', 'Size']]) {
      if (g[key] === null || g[key] === undefined) continue;
      dl.append(h('dt', {}, name), h('dd', {}, String(g[key])));
    }
    if (g.loras && g.loras.length) dl.append(h('dt', {}, 'LoRAs'), h('dd', {}, g.loras.join(', ')));
    gen.append(dl);
    if (img.generation_info) {
      const raw = typeof img.generation_info === 'string' ? img.generation_info : JSON.stringify(img.generation_info, null, 1);
      gen.append(copyButton('parameters', raw));
    }
  }
  const exif = $('panel-exif');
  exif.replaceChildren();
  const entries = Object.entries(img.exif || {});
  if (entries.length) {
    const dl = h('dl');
    for (const [k, v] of entries) dl.append(h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v)));
    exif.append(h('h3', {}, 'EXIF'), dl);
  }
}

/** Replace item `img` in the grid's list (after a PATCH) and redraw the viewer. */
function replaced(img, fresh) {
  Object.assign(img, fresh);
  viewer.refresh();
}

function editPanel(img) {
  const box = $('panel-edit');
  const info = h('p', { class: 'muted small' }, `${img.width}×${img.height} · ${img.format} · ${when(img.created_at)}`,
    img.expires_at ? ` · expires ${when(img.expires_at)}` : '');
  if (!canWrite) {
    box.replaceChildren(info, h('h3', {}, 'Tags'), h('p', {}, img.tags.length ? img.tags.join(', ') : 'None'));
    return;
  }
  const tags = h('input', { id: 'panel-tags-input', value: img.tags.join(', '), 'aria-describedby': 'panel-tags-help' });
  const msg = h('p', { class: 'small', role: 'status' });
  const save = async (body) => {
    try {
      replaced(img, await api(`/api/v1/images/${img.id}`, { method: 'PATCH', body }));
      say(notice, 'Saved.');
    } catch (e) { msg.textContent = e.message; }
  };
  const form = h('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); save({ tags: words(tags.value) }); } },
    h('label', { for: 'panel-tags-input' }, 'Tags'), tags,
    h('span', { id: 'panel-tags-help', class: 'muted small' }, 'comma-separated'),
    h('button', { type: 'submit' }, 'Save tags'));
  const priv = h('input', { type: 'checkbox', id: 'panel-private', checked: img.is_private,
    onchange: () => save({ is_private: priv.checked }) });
  const album = h('select', { id: 'panel-album', 'aria-label': 'Album' }, h('option', { value: '' }, 'Add to album…'),
    albums.map((a) => h('option', { value: a.id }, a.name)));
  const member = h('p', { id: 'panel-albums', class: 'small' });
  const drawMember = async () => {
    try {
      const { albums: of } = await api(`/api/v1/images/${img.id}/albums`);
      member.replaceChildren(of.length ? 'In ' : 'In no album', ...of.flatMap((a, i) => [i ? ', ' : '',
        h('a', { href: `/ui/albums#album=${encodeURIComponent(a.id)}` }, a.name)]));
    } catch (_) { member.replaceChildren(); }
  };
  const addAlbum = h('button', { type: 'button', onclick: async () => {
    if (!album.value) return;
    try {
      await api(`/api/v1/albums/${album.value}/images`, { method: 'POST', body: { image_ids: [img.id] } });
      say(notice, `Added to ${album.selectedOptions[0].textContent}.`);
      drawMember();
    } catch (e) { msg.textContent = e.message; }
  } }, 'Add');
  box.replaceChildren(info, form, h('p', { class: 'check' }, priv, h('label', { for: 'panel-private' }, ' Private')),
    h('p', { class: 'inline' }, album, addAlbum), member, msg);
  drawMember();
}

const EXPIRIES = [['3600', '1 hour'], ['86400', '1 day'], ['604800', '1 week'], ['', 'no expiry']];

async function sharePanel(img) {
  const box = $('panel-share');
  box.replaceChildren();
  if (!canWrite) return;
  const list = h('ul', { class: 'shares', 'aria-label': 'Share links' });
  const out = h('div', { class: 'share-out' });
  const expiry = h('select', { id: 'share-expiry' }, EXPIRIES.map(([v, n]) => h('option', { value: v }, n)));
  expiry.value = '86400';
  const draw = async () => {
    let shares = [];
    try { shares = (await api(`/api/v1/images/${img.id}/shares`)).shares; } catch (_) { /* none shown */ }
    list.replaceChildren(...shares.map((s) => h('li', {},
      h('span', {}, `${s.prefix}… · ${s.views} view${s.views === 1 ? '' : 's'} · ${s.expires_at ? `until ${when(s.expires_at)}` : 'no expiry'}`),
      h('button', { type: 'button', class: 'revoke', 'aria-label': `Revoke share ${s.prefix}`, onclick: async () => {
        await api(`/api/v1/shares/${s.id}`, { method: 'DELETE' }).catch((e) => say(notice, e.message));
        out.replaceChildren();
        draw();
      } }, 'Revoke'))));
  };
  const create = h('button', { type: 'button', id: 'share-create', onclick: async () => {
    try {
      const body = expiry.value ? { expires_in: Number(expiry.value) } : {};
      const { share } = await api(`/api/v1/images/${img.id}/shares`, { method: 'POST', body });
      const link = h('input', { id: 'share-url', readonly: true, value: share.url, 'aria-label': 'Share link' });
      out.replaceChildren(link, copyButton('share link', share.url));
      draw();
    } catch (e) { out.replaceChildren(h('p', { class: 'error' }, e.message)); }
  } }, 'Create share link');
  box.append(h('h3', {}, 'Sharing'), h('p', { class: 'inline' }, h('label', { for: 'share-expiry' }, 'Expires'), expiry, create), out, list);
  draw();
}

const grid = createGrid({
  list: $('grid'), sentinel: $('more'), status: $('status'), count: $('count'), src, label, loadPrivate,
  selectable: canWrite,
  onselect: (ids) => {
    $('batch').hidden = ids.length === 0;
    $('batch-count').textContent = `${ids.length} selected`;
  },
  async next(cursor) {
    const q = new URLSearchParams(query);
    q.set('limit', '50');
    if (folder !== null) { q.set('folder', folder); q.set('recursive', 'true'); }
    if (cursor) q.set('cursor', cursor);
    const body = await api(`/api/v1/images?${q}`);
    return { items: body.images, cursor: body.next_cursor };
  },
  open: (i) => viewer.open(i),
});
const viewer = createViewer({
  dialog: $('viewer'), img: $('viewer-img'), caption: $('viewer-caption'), prev: $('prev'),
  next: $('next'), close: $('close'), grid, src, label, describe, loadPrivate,
});

$('filters').addEventListener('submit', (e) => {
  e.preventDefault();
  query = new URLSearchParams();
  const q = $('q').value.trim();
  if (q) query.set('q', q);
  for (const k of ['tag', 'any_tag', 'not_tag']) {
    const v = words($(k).value).join(',');
    if (v) query.set(k, v);
  }
  query.set('sort', $('sort').value);
  grid.reset();
});

// Batch actions on the selection: one request per image where the API takes one (each
// reports its own failure), one for the album and the ZIP.
const selection = () => grid.selection();
async function each(what, fn) {
  const items = selection();
  let failed = 0;
  for (const it of items) {
    try { await fn(it); } catch (_) { failed += 1; }
  }
  say(notice, `${what}: ${items.length - failed} of ${items.length}${failed ? `, ${failed} failed` : ''}.`);
  grid.reset();
}
$('batch-tag').addEventListener('click', () => {
  const add = words($('batch-tags').value);
  if (add.length) each('Tagged', (it) => api(`/api/v1/images/${it.id}`, { method: 'PATCH', body: { add_tags: add } })).then(loadTagNames);
});
$('batch-private').addEventListener('click', () => each('Made private', (it) => api(`/api/v1/images/${it.id}`, { method: 'PATCH', body: { is_private: true } })));
$('batch-public').addEventListener('click', () => each('Made public', (it) => api(`/api/v1/images/${it.id}`, { method: 'PATCH', body: { is_private: false } })));
$('batch-add-album').addEventListener('click', async () => {
  const id = $('batch-album').value;
  if (!id) { say(notice, 'Choose an album first.'); return; }
  const ids = selection().map((i) => i.id);
  try {
    await api(`/api/v1/albums/${id}/images`, { method: 'POST', body: { image_ids: ids } });
    say(notice, `Added ${ids.length} to ${$('batch-album').selectedOptions[0].textContent}.`);
    grid.clear();
  } catch (e) { say(notice, e.message); }
});
$('batch-zip').addEventListener('click', async () => {
  const ids = selection().map((i) => i.id);
  say(notice, 'Preparing the ZIP…');
  const r = await authFetch('/api/v1/downloads', { method: 'POST', body: { image_ids: ids } });
  if (!r.ok) { say(notice, (await failure(r)).message); return; }
  const url = URL.createObjectURL(await r.blob());
  const a = h('a', { href: url, download: 'images.zip' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  say(notice, `Downloaded ${ids.length} image${ids.length === 1 ? '' : 's'}.`);
});
$('batch-delete').addEventListener('click', () => {
  const n = selection().length;
  $('confirm-text').textContent = `Delete ${n} image${n === 1 ? '' : 's'}? This cannot be undone.`;
  $('confirm').returnValue = '';
  $('confirm').showModal();
  $('confirm-no').focus();
});
$('confirm').addEventListener('close', () => {
  if ($('confirm').returnValue === 'ok') each('Deleted', (it) => api(`/api/v1/images/${it.id}`, { method: 'DELETE' }));
});
$('batch-clear').addEventListener('click', () => grid.clear());

// The library's folder tree (shown when the tenant has folders): a folder narrows the grid to
// it and its subfolders; children load when a folder opens.
async function folderList(path) {
  const body = await api(`/api/v1/folders?path=${encodeURIComponent(path)}&per_page=1`);
  return body.folders;
}
function folderItem(f) {
  const li = h('li');
  const sub = h('ul', { hidden: true });
  const toggle = h('button', { type: 'button', class: 'twisty', 'aria-expanded': 'false', 'aria-label': `Subfolders of ${f.name}`,
    onclick: async () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      sub.hidden = !open;
      if (open && !sub.children.length) sub.append(...(await folderList(f.path)).map(folderItem));
    } }, '▸');
  const pick = h('button', { type: 'button', class: 'folder', 'data-path': f.path, onclick: () => chooseFolder(f.path, pick) },
    f.name, h('span', { class: 'muted small' }, ` ${f.image_count}`));
  li.append(toggle, pick, sub);
  return li;
}
function chooseFolder(path, button) {
  folder = path;
  for (const b of $('folders').querySelectorAll('[aria-current]')) b.removeAttribute('aria-current');
  if (button) button.setAttribute('aria-current', 'true');
  grid.reset();
}
async function loadFolders() {
  let top = [];
  try { top = await folderList(''); } catch (_) { return; }
  // Uploads alone sit in one folder (the tenant's): a tree only when there is more to it.
  if (!top.length) return;
  if (top.length === 1 && !(await folderList(top[0].path).catch(() => [])).length) return;
  const all = h('button', { type: 'button', class: 'folder', 'aria-current': 'true', onclick: () => chooseFolder(null, all) }, 'All images');
  $('folders').replaceChildren(h('h2', {}, 'Folders'), all, h('ul', { class: 'tree' }, top.map(folderItem)));
  $('folders').hidden = false;
}

// Uploads: one request per file (so one bad file fails alone), with a progress bar each and
// overall, the batch's tags, album, expiry and privacy, and the API's own message for a
// refused file.
const queue = $('queue');
const overall = $('overall');
$('upload-open').addEventListener('click', () => {
  $('upload').hidden = !$('upload').hidden;
  $('upload-open').setAttribute('aria-expanded', String(!$('upload').hidden));
  if (!$('upload').hidden) $('files').focus();
});
function uploadOne(file, progress) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append('file', file, file.name);
    const tags = words($('up-tags').value).join(',');
    if (tags) form.append('tags', tags);
    if ($('up-private').checked) form.append('is_private', 'true');
    if ($('up-album').value) form.append('album_id', $('up-album').value);
    if ($('up-expiry').value) form.append('expiry_minutes', $('up-expiry').value);
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
    const bar = h('progress', { max: 1, value: 0, 'aria-label': `Upload of ${file.name}` });
    const state = h('span', { class: 'state' }, 'waiting');
    const li = h('li', {}, h('span', { class: 'name' }, file.name), bar, state);
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
  loadTagNames();
}
$('files').addEventListener('change', (e) => { upload(e.target.files); e.target.value = ''; });
document.body.addEventListener('dragover', (e) => { e.preventDefault(); $('drop').classList.add('over'); });
document.body.addEventListener('dragleave', () => $('drop').classList.remove('over'));
document.body.addEventListener('drop', (e) => {
  e.preventDefault();
  $('drop').classList.remove('over');
  if (e.dataTransfer && e.dataTransfer.files.length) upload(e.dataTransfer.files);
});

$('signout').addEventListener('click', async () => {
  await signOut();
  window.location.replace('/ui/login');
});

if (user) {
  $('who').textContent = user.email;
  $('nav').replaceWith(nav('/ui/', user));
  if (!canWrite) $('upload-open').hidden = true;
  grid.more();
  loadAlbums();
  loadTagNames();
  loadFolders();
}
