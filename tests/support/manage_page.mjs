// Drives Refract's signed-in pages in headless Chromium (playwright-core) for tests/ui.rs:
// multi-select and batch actions, the viewer's zoom and sharing (the link opened in a fresh
// context without a session, then revoked), albums (create, fill, reorder, cover, share by
// token, opened in a fresh context, revoked), admin (a key created, its secret shown once,
// revoked; users, tenants, charts, audit, config), a batch delete with confirmation, and
// signing in with an API key. axe-core on each page; screenshots at desktop and phone widths.
// Usage: node manage_page.mjs <base-url> <screenshot-dir> <email> <password> <read-key>
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const axePath = require.resolve('axe-core/axe.min.js');

const [base, shots, email, password, readKey] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.REFRACT_TEST_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { requests: [], console_errors: [], axe: {}, steps: [] };
const step = (s) => report.steps.push(s);
const N = Number(process.env.EXPECT_ITEMS);

function watch(page) {
  page.on('request', (r) => report.requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
  page.on('pageerror', (e) => report.console_errors.push(String(e)));
}
async function settled(page, n) {
  await page.waitForFunction((n) => document.querySelectorAll('#grid li').length === n
    && document.getElementById('status').textContent === '', n, { timeout: 20000 });
  await page.waitForFunction(() => [...document.querySelectorAll('#grid img')].every((i) => i.complete && i.naturalWidth > 0),
    null, { timeout: 20000 });
}
async function signIn(page) {
  await page.goto(`${base}/ui/login`, { waitUntil: 'load' });
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#submit');
  await page.waitForURL(/\/ui\/$/);
}
async function axe(page, name) {
  await page.addScriptTag({ path: axePath });
  const r = await page.evaluate(async () => await window.axe.run(document));
  report.axe[name] = r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length,
    targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
}
async function shots2(page, name) {
  await page.screenshot({ path: `${shots}/${name}-desktop.png`, fullPage: true });
  const vp = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${shots}/${name}-phone.png`, fullPage: true });
  await page.setViewportSize(vp);
}
/** What a fresh context (no cookie, no session) gets at `url`: status and, for an image, its width. */
async function fresh(url) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  watch(page);
  const r = await page.goto(url, { waitUntil: 'load' });
  const out = { status: r.status(), type: r.headers()['content-type'] || '' };
  if (out.type.startsWith('image/')) out.width = await page.$eval('img', (i) => i.naturalWidth).catch(() => 0);
  await ctx.close();
  return out;
}
const grid = (page) => page.$$eval('#grid li', (lis) => lis.map((li) => ({ alt: li.querySelector('img').alt,
  selected: li.classList.contains('selected'), private: Boolean(li.querySelector('.badge')) })));

try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await ctx.newPage();
  watch(page);
  await signIn(page);
  await settled(page, N);
  step('signed in');
  report.private_thumbs = await page.$$eval('#grid li', (lis) => lis.filter((li) => li.querySelector('.badge'))
    .map((li) => li.querySelector('img').src.slice(0, 5)));

  // The folder tree: open a folder, choose a subfolder (its images only), back to all.
  await page.waitForSelector('#folders:not([hidden]) .twisty');
  await page.click('#folders .twisty');
  await page.click('#folders button.folder[data-path$="trips/"]');
  await settled(page, 1);
  report.folder_items = (await grid(page)).map((g) => g.alt);
  await page.screenshot({ path: `${shots}/app-folders-desktop.png` });
  await page.click('#folders button.folder:not([data-path])');
  await settled(page, N);
  step('folders');

  // Multi-select: a checkbox, then shift-click a range; batch tags.
  const boxes = await page.$$('#grid input.pick');
  await boxes[0].check();
  await boxes[2].click({ modifiers: ['Shift'] });
  report.selected = (await grid(page)).filter((g) => g.selected).length;
  report.batch_count = await page.$eval('#batch-count', (e) => e.textContent);
  await page.fill('#batch-tags', 'batch');
  await page.click('#batch-tag');
  await page.waitForFunction(() => document.getElementById('notice').textContent.startsWith('Tagged'));
  report.batch_notice = await page.$eval('#notice', (e) => e.textContent);
  await settled(page, N);
  report.batch_hidden_after = await page.$eval('#batch', (e) => e.hidden);
  step('batch tagged');

  // The viewer: zoom to full resolution; share the image; open the link without a session.
  await page.click('#grid li:first-child button.open');
  await page.waitForSelector('#viewer[open]');
  await page.waitForFunction(() => document.getElementById('viewer-img').naturalWidth > 0);
  const before = await page.$eval('#viewer-img', (i) => i.src);
  await page.keyboard.press('+');
  await page.waitForFunction((b) => document.getElementById('viewer-img').src !== b, before);
  report.zoom = await page.$eval('#viewer-img', (i) => ({ zoomed: i.classList.contains('zoomed'), transform: i.style.transform, src: i.src }));
  report.zoom.before = before;
  await page.keyboard.press('0');
  report.zoom.reset = await page.$eval('#viewer-img', (i) => i.style.transform);
  await page.selectOption('#share-expiry', '3600');
  await page.click('#share-create');
  await page.waitForSelector('#share-url');
  const shareUrl = await page.$eval('#share-url', (i) => i.value);
  report.share_url = shareUrl;
  await page.waitForSelector('#panel-share .shares li');
  await page.click('#panel-share .share-out .copy');
  report.clipboard = await page.evaluate(() => navigator.clipboard.readText()).catch((e) => String(e));
  await page.screenshot({ path: `${shots}/viewer-share-desktop.png` });
  report.share_open = await fresh(shareUrl);
  await page.click('#panel-share button.revoke');
  await page.waitForFunction(() => document.querySelectorAll('#panel-share .shares li').length === 0);
  report.share_revoked = await fresh(shareUrl);
  // Tags edited inline.
  await page.fill('#panel-tags-input', 'edited, inline');
  await page.click('#panel-edit button[type=submit]');
  await page.waitForFunction(() => document.getElementById('notice').textContent === 'Saved.'
    || document.querySelector('#panel-edit [role=status]').textContent.length > 0);
  report.tags_saved = await page.$eval('#notice', (e) => e.textContent);
  await page.keyboard.press('Escape');
  step('shared and revoked');

  // Albums: create one, fill it from the grid, reorder, set a cover, share it by token.
  await page.goto(`${base}/ui/albums`, { waitUntil: 'load' });
  await page.fill('#new-name', 'Trip');
  await page.fill('#new-description', 'Summer');
  await page.click('#create button[type=submit]');
  await page.waitForFunction(() => document.getElementById('album-title').textContent === 'Trip');
  await page.goto(`${base}/ui/`, { waitUntil: 'load' });
  await settled(page, N);
  // The private image and another one.
  const items = await grid(page);
  const privIdx = items.findIndex((g) => g.private);
  const other = items.findIndex((g) => !g.private);
  await (await page.$$('#grid input.pick'))[other].check();
  await (await page.$$('#grid input.pick'))[privIdx].check();
  await page.waitForFunction(() => document.querySelectorAll('#batch-album option').length > 1);
  await page.selectOption('#batch-album', { label: 'Trip' });
  await page.click('#batch-add-album');
  await page.waitForFunction(() => document.getElementById('notice').textContent.startsWith('Added 2'));
  await page.goto(`${base}/ui/albums`, { waitUntil: 'load' });
  await page.click('.album-card');
  await page.waitForFunction(() => document.querySelectorAll('#album-images li[data-id]').length === 2);
  const order = () => page.$$eval('#album-images li[data-id]', (l) => l.map((li) => li.querySelector('.name').firstChild.textContent));
  report.album_order_before = await order();
  await page.click('#album-images li:nth-child(2) button[aria-label^="Move"][aria-label$="earlier"]');
  await page.waitForFunction((first) => document.querySelector('#album-images li[data-id] .name').firstChild.textContent !== first,
    report.album_order_before[0]);
  report.album_order_after = await order();
  await page.click('#album-images li:nth-child(1) button[aria-label$="cover"]');
  await page.waitForSelector('#album-images .badge');
  await page.waitForFunction(() => [...document.querySelectorAll('#album-images img')].every((i) => i.complete && i.naturalWidth > 0));
  await page.click('#token-create');
  await page.waitForSelector('#token-url');
  const albumUrl = await page.$eval('#token-url', (i) => i.value);
  report.album_url = albumUrl;
  await shots2(page, 'albums');
  {
    const c = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p = await c.newPage();
    watch(p);
    await p.goto(albumUrl, { waitUntil: 'load' });
    await p.waitForFunction(() => document.querySelectorAll('#grid li').length === 2, null, { timeout: 20000 });
    await p.waitForFunction(() => [...document.querySelectorAll('#grid img')].every((i) => i.complete && i.naturalWidth > 0),
      null, { timeout: 20000 });
    report.shared_album = { title: await p.$eval('#title', (e) => e.textContent),
      alts: await p.$$eval('#grid img', (l) => l.map((i) => i.alt)) };
    await shots2(p, 'shared-album');
    await c.close();
  }
  await page.click('#tokens button.revoke');
  await page.waitForFunction(() => document.querySelectorAll('#tokens li').length === 0);
  {
    const c = await browser.newContext();
    const p = await c.newPage();
    report.revoked_responses = [];
    p.on('response', (r) => report.revoked_responses.push(`${r.status()} ${r.url()}`));
    await p.goto(albumUrl, { waitUntil: 'load' });
    await p.waitForFunction(() => document.getElementById('status').textContent.length > 0);
    report.shared_album_revoked = await p.$eval('#status', (e) => e.textContent);
    await c.close();
  }
  step('album shared and revoked');

  // Admin: a key created (secret shown once), used, revoked; the other sections.
  await page.goto(`${base}/ui/admin`, { waitUntil: 'load' });
  await page.fill('#key-name', 'from the ui');
  await page.check('input[name=scope][value=write]');
  await page.click('#key-create button[type=submit]');
  await page.waitForSelector('#key-value');
  const key = await page.$eval('#key-value', (i) => i.value);
  const validate = async (k) => (await fetch(`${base}/api/v1/keys/validate`, { method: 'POST', headers: { Authorization: `Bearer ${k}` } })).status;
  report.key_valid = await validate(key);
  await page.waitForFunction(() => [...document.querySelectorAll('#keys-list td')].some((td) => td.textContent === 'from the ui'));
  await page.waitForFunction(() => document.querySelectorAll('#stats-body svg.chart').length === 3
    && document.querySelectorAll('#users-list tbody tr').length > 0 && document.querySelectorAll('#tenants-list tbody tr').length > 0
    && document.querySelectorAll('#audit-list tbody tr').length > 0 && document.getElementById('config-body').textContent.length > 0);
  report.admin = await page.evaluate(() => ({
    users: [...document.querySelectorAll('#users-list tbody tr')].map((tr) => tr.cells[0].textContent),
    tenants: [...document.querySelectorAll('#tenants-list tbody tr')].map((tr) => tr.cells[0].textContent),
    charts: document.querySelectorAll('#stats-body svg.chart').length,
    bars: document.querySelectorAll('#stats-body rect.bar').length,
    audit_rows: document.querySelectorAll('#audit-list tbody tr').length,
    config: document.getElementById('config-body').textContent,
  }));
  await shots2(page, 'admin');
  await page.click('button[aria-label="Revoke key from the ui"]');
  await page.waitForFunction(() => ![...document.querySelectorAll('#keys-list td')].some((td) => td.textContent === 'from the ui'));
  report.key_after_revoke = await validate(key);
  step('admin');

  // Delete one image through the batch bar, confirmed.
  await page.goto(`${base}/ui/`, { waitUntil: 'load' });
  await settled(page, N);
  await (await page.$$('#grid input.pick'))[N - 1].check();
  await page.click('#batch-delete');
  await page.waitForSelector('#confirm[open]');
  report.confirm_text = await page.$eval('#confirm-text', (e) => e.textContent);
  await page.click('#confirm-yes');
  await settled(page, N - 1);
  report.after_delete = (await grid(page)).length;
  step('deleted');

  // Signing in with an API key (read only: no upload, no selection).
  {
    const c = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p = await c.newPage();
    watch(p);
    await p.goto(`${base}/ui/login`, { waitUntil: 'load' });
    await p.click('.key-signin summary');
    await p.fill('#api-key', 'not a key');
    await p.click('#key-submit');
    await p.waitForFunction(() => document.getElementById('key-error').textContent.length > 0);
    report.bad_key = await p.$eval('#key-error', (e) => e.textContent);
    await p.fill('#api-key', readKey);
    await p.click('#key-submit');
    await p.waitForURL(/\/ui\/$/);
    await settled(p, N - 1);
    report.key_session = await p.evaluate(() => ({ who: document.getElementById('who').textContent,
      upload_hidden: document.getElementById('upload-open').hidden, boxes: document.querySelectorAll('#grid input.pick').length,
      admin_link: Boolean(document.querySelector('.nav a[href="/ui/admin"]')) }));
    await c.close();
  }
  step('api key');

  // axe-core on each page (a context that lets the injected script run).
  const scan = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 800 } });
  const sp = await scan.newPage();
  await signIn(sp);
  await settled(sp, N - 1);
  await (await sp.$$('#grid input.pick'))[0].check();
  await axe(sp, 'browser with selection');
  await (await sp.$$('#grid input.pick'))[0].uncheck();
  await sp.click('#grid li:first-child button.open');
  await sp.waitForSelector('#share-create');
  await sp.waitForFunction(() => document.getElementById('panel-albums').textContent.startsWith('In'));
  report.viewer_albums = await sp.$eval('#panel-albums', (e) => e.textContent);
  await axe(sp, 'viewer with panel');
  await sp.goto(`${base}/ui/albums`, { waitUntil: 'load' });
  await sp.click('.album-card');
  await sp.waitForSelector('#album-images li');
  await axe(sp, 'albums');
  await sp.goto(`${base}/ui/admin`, { waitUntil: 'load' });
  await sp.waitForFunction(() => document.getElementById('config-body').textContent.length > 0);
  await axe(sp, 'admin');
  await scan.close();
} catch (e) {
  report.error = `${e.stack || e} after ${JSON.stringify(report.steps)}`;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
