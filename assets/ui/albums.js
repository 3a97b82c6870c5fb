// Albums (/ui/albums): list with covers, create, edit (name, description, public), delete; an
// album's images in order (move earlier or later, set as cover, remove) and its share tokens
// (create with an expiry, the link shown once with a copy button; revoke). Public API only.
import { api, authFetch, failure, refresh, signOut } from './session.js';
import { variant } from './grid.js';
import { $, copyButton, h, nav, say, when } from './dom.js';

const user = await refresh();
if (!user) window.location.replace('/ui/login');
const notice = $('notice');
let current = null;
let images = [];

/** A thumbnail of `img` (private ones fetched with the token). */
function thumb(img, w = 240) {
  const im = h('img', { alt: img.description || img.filename || '', width: img.width, height: img.height, loading: 'lazy' });
  const url = variant(img.url, w);
  if (img.is_private) {
    authFetch(url).then(async (r) => { if (r.ok) im.src = URL.createObjectURL(await r.blob()); });
  } else {
    im.src = url;
  }
  return im;
}

async function cover(a) {
  try {
    if (a.cover_image_id) return thumb(await api(`/api/v1/images/${a.cover_image_id}`));
    const first = (await api(`/api/v1/albums/${a.id}/images?per_page=1`)).images[0];
    if (first) return thumb(first);
  } catch (_) { /* no cover */ }
  return h('span', { class: 'empty-cover', 'aria-hidden': 'true' }, '∅');
}

async function list() {
  $('status').textContent = 'Loading…';
  try {
    const { albums } = await api('/api/v1/albums?per_page=100');
    $('albums').replaceChildren(...albums.map((a) => {
      const frame = h('span', { class: 'cover' });
      cover(a).then((c) => frame.append(c));
      return h('li', {}, h('button', { type: 'button', class: 'album-card', 'aria-current': current && current.id === a.id ? 'true' : false,
        onclick: () => open(a.id) }, frame, h('span', { class: 'name' }, a.name),
      h('span', { class: 'muted small' }, `${a.image_count} image${a.image_count === 1 ? '' : 's'}${a.is_public ? ' · public' : ''}`)));
    }));
    $('status').textContent = albums.length ? '' : 'No albums yet.';
  } catch (e) {
    $('status').textContent = `Could not load: ${e.message}`;
  }
}

async function open(id) {
  current = (await api(`/api/v1/albums/${id}`)).album;
  $('album').hidden = false;
  $('album-title').textContent = current.name;
  $('edit-name').value = current.name;
  $('edit-description').value = current.description || '';
  $('edit-public').checked = current.is_public;
  $('token-out').replaceChildren();
  await Promise.all([drawImages(), drawTokens()]);
  $('album').scrollIntoView({ block: 'start' });
}

async function drawImages() {
  images = (await api(`/api/v1/albums/${current.id}/images?per_page=100`)).images;
  const order = async (ids) => {
    try {
      await api(`/api/v1/albums/${current.id}/images`, { method: 'PUT', body: { image_ids: ids } });
      await drawImages();
    } catch (e) { say(notice, e.message); }
  };
  const move = (i, by) => {
    const ids = images.map((x) => x.id);
    const [it] = ids.splice(i, 1);
    ids.splice(Math.max(0, Math.min(ids.length, i + by)), 0, it);
    return order(ids);
  };
  const name = (img) => img.description || img.filename;
  $('album-images').replaceChildren(...images.map((img, i) => h('li', { 'data-id': img.id },
    thumb(img, 160),
    h('span', { class: 'name' }, name(img), current.cover_image_id === img.id ? h('span', { class: 'badge static' }, 'cover') : null),
    h('span', { class: 'actions' },
      h('button', { type: 'button', 'aria-label': `Move ${name(img)} earlier`, disabled: i === 0, onclick: () => move(i, -1) }, '↑'),
      h('button', { type: 'button', 'aria-label': `Move ${name(img)} later`, disabled: i === images.length - 1, onclick: () => move(i, 1) }, '↓'),
      h('button', { type: 'button', 'aria-label': `Use ${name(img)} as the cover`, onclick: async () => {
        current = (await api(`/api/v1/albums/${current.id}`, { method: 'PATCH', body: { cover_image_id: img.id } })).album;
        drawImages();
        list();
      } }, 'Cover'),
      h('button', { type: 'button', 'aria-label': `Remove ${name(img)} from the album`, onclick: async () => {
        await api(`/api/v1/albums/${current.id}/images`, { method: 'DELETE', body: { image_ids: [img.id] } });
        drawImages();
        list();
      } }, 'Remove')))));
  if (!images.length) $('album-images').append(h('li', { class: 'muted' }, 'No images yet: select some in Images and choose “Add to album”.'));
}

async function drawTokens() {
  const { tokens } = await api(`/api/v1/albums/${current.id}/tokens`);
  $('tokens').replaceChildren(...tokens.map((t) => h('li', {},
    h('span', {}, `${t.prefix}… · created ${when(t.created_at)} · ${t.expires_at ? `until ${when(t.expires_at)}` : 'no expiry'}`),
    h('button', { type: 'button', class: 'revoke', 'aria-label': `Revoke token ${t.prefix}`, onclick: async () => {
      await api(`/api/v1/albums/${current.id}/tokens/${t.id}`, { method: 'DELETE' });
      $('token-out').replaceChildren();
      drawTokens();
    } }, 'Revoke'))));
}

$('create').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const { album } = await api('/api/v1/albums', { method: 'POST', body: {
      name: $('new-name').value, description: $('new-description').value || undefined, is_public: $('new-public').checked } });
    $('create').reset();
    await list();
    await open(album.id);
    say(notice, `Created ${album.name}.`);
  } catch (err) { say(notice, err.message); }
});
$('edit').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    current = (await api(`/api/v1/albums/${current.id}`, { method: 'PATCH', body: {
      name: $('edit-name').value, description: $('edit-description').value, is_public: $('edit-public').checked } })).album;
    $('album-title').textContent = current.name;
    list();
    say(notice, 'Saved.');
  } catch (err) { say(notice, err.message); }
});
$('token-create').addEventListener('click', async () => {
  const v = $('token-expiry').value;
  try {
    const { token } = await api(`/api/v1/albums/${current.id}/tokens`, { method: 'POST', body: v ? { expires_in: Number(v) } : {} });
    const link = `${window.location.origin}/ui/shared#album=${encodeURIComponent(current.id)}&token=${encodeURIComponent(token.token)}`;
    $('token-out').replaceChildren(h('p', { class: 'small' }, 'The link, shown once:'),
      h('input', { id: 'token-url', readonly: true, value: link, 'aria-label': 'Album share link' }), copyButton('album link', link));
    drawTokens();
  } catch (err) { say(notice, err.message); }
});
$('delete').addEventListener('click', () => {
  $('confirm-text').textContent = `Delete the album “${current.name}”? Its images stay.`;
  $('confirm').returnValue = '';
  $('confirm').showModal();
  $('confirm-no').focus();
});
$('confirm').addEventListener('close', async () => {
  if ($('confirm').returnValue !== 'ok') return;
  const r = await authFetch(`/api/v1/albums/${current.id}`, { method: 'DELETE' });
  if (!r.ok) { say(notice, (await failure(r)).message); return; }
  say(notice, `Deleted ${current.name}.`);
  current = null;
  $('album').hidden = true;
  list();
});
$('signout').addEventListener('click', async () => {
  await signOut();
  window.location.replace('/ui/login');
});

if (user) {
  $('who').textContent = user.email;
  $('nav').replaceWith(nav('/ui/albums', user));
  await list();
  const want = new URLSearchParams(window.location.hash.slice(1)).get('album');
  if (want) open(want);
}
