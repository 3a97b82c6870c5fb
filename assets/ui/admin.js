// Admin (/ui/admin): stats with small charts (uploads per day, bytes by format, cache hit
// ratio), API keys (create with the secret shown once and a copy button; revoke), tenants with
// quotas and usage, users (disable, enable), webhooks with their delivery log, the audit log and
// the effective configuration (the API removes secrets). Public API only.
import { api, refresh, signOut } from './session.js';
import { $, bytes, copyButton, h, isAdmin, nav, say, table, when, words } from './dom.js';

const user = await refresh();
if (!user) window.location.replace('/ui/login');
const notice = $('notice');
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  e.append(...children);
  return e;
}

/** A bar chart of `[label, value]` (a labelled image, with the figures in its description). */
function bars(title, data, fmt = String) {
  const w = 320;
  const hgt = 120;
  const max = Math.max(1, ...data.map(([, v]) => v));
  const bw = w / Math.max(1, data.length);
  const summary = data.map(([k, v]) => `${k}: ${fmt(v)}`).join(', ');
  const chart = svg('svg', { viewBox: `0 0 ${w} ${hgt + 16}`, role: 'img', 'aria-label': `${title}. ${summary || 'no data'}`, class: 'chart' },
    ...data.map(([k, v], i) => {
      const bh = Math.max(v ? 2 : 0, (v / max) * hgt);
      return svg('rect', { x: i * bw + 1, y: hgt - bh, width: Math.max(1, bw - 2), height: bh, class: 'bar' },
        svg('title', {}, `${k}: ${fmt(v)}`));
    }),
    svg('line', { x1: 0, y1: hgt + 0.5, x2: w, y2: hgt + 0.5, class: 'base' }),
    ...(data.length <= 8 ? data.map(([k], i) => {
      const t = svg('text', { x: i * bw + bw / 2, y: hgt + 13, 'text-anchor': 'middle', class: 'axis' });
      t.textContent = k;
      return t;
    }) : []));
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, title), chart);
}

async function stats() {
  const s = await api('/api/v1/stats?tenant=*').catch(() => api('/api/v1/stats'));
  const days = s.uploads_per_day.map((d) => [d.day.slice(5), d.count]);
  const formats = Object.entries(s.bytes_by_format || {});
  const srv = s.server || {};
  const ratio = srv.cache_hit_ratio ?? 0;
  $('stats-body').replaceChildren(
    h('dl', { class: 'figures' },
      h('dt', {}, 'Images'), h('dd', {}, String(s.images)),
      h('dt', {}, 'Stored'), h('dd', {}, bytes(s.bytes)),
      h('dt', {}, 'Tags'), h('dd', {}, String(s.tags)),
      h('dt', {}, 'Requests'), h('dd', {}, String(srv.requests ?? 0)),
      h('dt', {}, 'Cache hit ratio'), h('dd', {}, `${(ratio * 100).toFixed(1)} %`)),
    bars('Uploads per day (30 days)', days),
    bars('Bytes by format', formats, bytes),
    bars('Cache', [['hits', srv.cache_hits ?? 0], ['misses', srv.cache_misses ?? 0]]),
  );
}

async function keys() {
  const { keys: list } = await api('/api/v1/keys');
  $('keys-list').replaceChildren(table('API keys', [
    ['Name', (k) => k.name], ['Tenant', (k) => k.tenant], ['Scopes', (k) => k.scopes.join(', ')],
    ['Prefix', (k) => h('code', {}, `${k.prefix}…`)], ['Created', (k) => when(k.created_at)],
    ['Actions', (k) => h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke key ${k.name}`, onclick: async () => {
      try {
        await api(`/api/v1/keys/${k.id}`, { method: 'DELETE' });
        say(notice, `Revoked ${k.name}.`);
        $('key-secret').replaceChildren();
        keys();
      } catch (e) { say(notice, e.message); }
    } }, 'Revoke')],
  ], list));
}
$('key-create').addEventListener('submit', async (e) => {
  e.preventDefault();
  const scopes = [...document.querySelectorAll('input[name=scope]:checked')].map((c) => c.value);
  try {
    const body = { name: $('key-name').value, scopes };
    if ($('key-tenant').value) body.tenant = $('key-tenant').value;
    const { key } = await api('/api/v1/keys', { method: 'POST', body });
    $('key-secret').replaceChildren(h('p', {}, `The key “${key.name}”, shown this once: copy it now.`),
      h('input', { id: 'key-value', readonly: true, value: key.key, 'aria-label': 'The new key' }), copyButton('key', key.key));
    $('key-create').reset();
    keys();
  } catch (err) { say(notice, err.message); }
});

async function tenants() {
  const { tenants: list } = await api('/api/v1/tenants');
  const usage = (used, quota, fmt) => `${fmt(used)} of ${quota ? fmt(quota) : 'no limit'}`;
  $('tenants-list').replaceChildren(table('Tenants', [
    ['Tenant', (t) => t.id], ['Name', (t) => t.name], ['Active', (t) => (t.active ? 'yes' : 'no')],
    ['Images', (t) => usage(t.quota.used_images, t.quota.quota_images, String)],
    ['Storage', (t) => usage(t.quota.used_bytes, t.quota.quota_bytes, bytes)],
    ['Quota', (t) => {
      const mb = h('input', { type: 'number', min: 0, value: t.quota.quota_bytes ? Math.round(t.quota.quota_bytes / 1e6) : 0,
        'aria-label': `Storage quota of ${t.id} in MB (0: none)`, class: 'narrow' });
      const n = h('input', { type: 'number', min: 0, value: t.quota.quota_images || 0, 'aria-label': `Image quota of ${t.id} (0: none)`, class: 'narrow' });
      return h('form', { class: 'inline', onsubmit: async (e) => {
        e.preventDefault();
        try {
          await api(`/api/v1/tenants/${t.id}/quota`, { method: 'PUT', body: { quota_bytes: Number(mb.value) * 1e6, quota_images: Number(n.value) } });
          say(notice, `Quota of ${t.id} saved.`);
          tenants();
        } catch (err) { say(notice, err.message); }
      } }, mb, ' MB ', n, ' images ', h('button', { type: 'submit' }, 'Set'));
    }],
  ], list));
}

async function users() {
  const { users: list } = await api('/api/v1/users');
  $('users-list').replaceChildren(table('Users', [
    ['Email', (u) => u.email], ['Name', (u) => u.name], ['Role', (u) => u.role], ['Tenant', (u) => u.tenant],
    ['Status', (u) => (u.disabled ? 'disabled' : 'active')], ['Since', (u) => when(u.created_at)],
    ['Actions', (u) => h('button', { type: 'button', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}`, onclick: async () => {
      try {
        await api(`/api/v1/users/${u.id}`, { method: 'PATCH', body: { disabled: !u.disabled } });
        users();
      } catch (e) { say(notice, e.message); }
    } }, u.disabled ? 'Enable' : 'Disable')],
  ], list));
}

async function deliveries(w) {
  const { deliveries: list } = await api(`/api/v1/webhooks/${w.id}/deliveries?limit=50`);
  $('deliveries').replaceChildren(h('h3', {}, `Deliveries to ${w.url}`), table(`Deliveries to ${w.url}`, [
    ['Event', (d) => d.type], ['Status', (d) => d.status], ['Attempts', (d) => String(d.attempts)],
    ['HTTP', (d) => (d.last_status_code === null ? '—' : String(d.last_status_code))],
    ['Latency', (d) => (d.latency_ms === null ? '—' : `${d.latency_ms} ms`)], ['Error', (d) => d.error || ''],
    ['When', (d) => when(d.updated_at)],
    ['Actions', (d) => h('button', { type: 'button', 'aria-label': `Send ${d.type} again`, onclick: async () => {
      await api(`/api/v1/webhooks/${w.id}/deliveries/${d.id}/redeliver`, { method: 'POST' }).catch((e) => say(notice, e.message));
      deliveries(w);
    } }, 'Redeliver')],
  ], list));
}

async function webhooks() {
  const { webhooks: list } = await api('/api/v1/webhooks');
  $('hooks-list').replaceChildren(table('Webhooks', [
    ['URL', (w) => w.url], ['Events', (w) => w.events.join(', ')],
    ['State', (w) => (w.enabled ? (w.failing_since ? `failing since ${when(w.failing_since)}` : 'enabled') : `disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ''}`)],
    ['Actions', (w) => h('span', { class: 'actions' },
      h('button', { type: 'button', 'aria-label': `Deliveries to ${w.url}`, onclick: () => deliveries(w) }, 'Deliveries'),
      h('button', { type: 'button', 'aria-label': `Send a test to ${w.url}`, onclick: async () => {
        await api(`/api/v1/webhooks/${w.id}/test`, { method: 'POST' }).then(() => say(notice, 'Test event queued.')).catch((e) => say(notice, e.message));
        deliveries(w);
      } }, 'Test'),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Delete the webhook to ${w.url}`, onclick: async () => {
        await api(`/api/v1/webhooks/${w.id}`, { method: 'DELETE' }).catch((e) => say(notice, e.message));
        $('deliveries').replaceChildren();
        webhooks();
      } }, 'Delete'))],
  ], list));
}
$('hook-create').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const r = await api('/api/v1/webhooks', { method: 'POST', body: { url: $('hook-url').value, events: words($('hook-events').value) } });
    $('hook-secret').replaceChildren(h('p', {}, 'The signing secret, shown this once:'),
      h('input', { readonly: true, value: r.secret, 'aria-label': 'Signing secret' }), copyButton('signing secret', r.secret));
    $('hook-create').reset();
    webhooks();
  } catch (err) { say(notice, err.message); }
});

let before = null;
async function audit(more) {
  const q = new URLSearchParams({ limit: '50' });
  if (more && before) q.set('before', before);
  const { entries, next_before: nb } = await api(`/api/v1/audit?${q}`);
  before = nb;
  $('audit-more').hidden = !nb;
  const t = table('Audit log', [
    ['When', (a) => when(a.at)], ['Actor', (a) => a.actor], ['Tenant', (a) => a.tenant], ['Action', (a) => a.action],
    ['Target', (a) => a.target], ['Status', (a) => String(a.status)], ['Address', (a) => a.ip],
  ], entries);
  if (more) $('audit-list').querySelector('tbody').append(...t.querySelectorAll('tbody tr'));
  else $('audit-list').replaceChildren(t);
}
$('audit-more').addEventListener('click', () => audit(true));

async function config() {
  $('config-body').textContent = JSON.stringify(await api('/api/v1/config'), null, 2);
}

$('signout').addEventListener('click', async () => {
  await signOut();
  window.location.replace('/ui/login');
});

if (user) {
  $('who').textContent = user.email;
  $('nav').replaceWith(nav('/ui/admin', user));
  if (!isAdmin(user)) {
    document.querySelector('main').replaceChildren(h('p', { class: 'status' }, 'This page is for admins.'));
  } else {
    // Each section on its own: one that fails (a tenant admin may not list tenants) says so.
    for (const [id, load] of [['stats-body', stats], ['keys-list', keys], ['tenants-list', tenants], ['users-list', users],
      ['hooks-list', webhooks], ['audit-list', audit], ['config-body', config]]) {
      load().catch((e) => { $(id).replaceChildren(h('p', { class: 'muted' }, `Not available: ${e.message}`)); });
    }
  }
}
