// Drives Refract's /ui/ in headless Chromium (playwright-core): sign in, the grid, a NOT tag
// filter, the viewer by keyboard with the prompt of a PNG, sign out; axe-core on each page;
// screenshots at desktop and phone widths. Prints a JSON report for tests/ui.rs.
// Usage: node app_page.mjs <base-url> <screenshot-dir> <email> <password>
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const axePath = require.resolve('axe-core/axe.min.js');

const [base, shots, email, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.REFRACT_TEST_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { requests: [], console_errors: [], axe: {} };
const alts = (page) => page.$$eval('#grid img', (imgs) => imgs.map((i) => i.alt));
async function settled(page, n) {
  try {
    await page.waitForFunction((n) => document.querySelectorAll('#grid li').length === n
      && document.getElementById('status').textContent === '', n, { timeout: 20000 });
  } catch (e) {
    const seen = await page.evaluate(() => ({ q: document.getElementById('q').value, not: document.getElementById('not_tag').value,
      viewer: document.getElementById('viewer').open, alts: [...document.querySelectorAll('#grid img')].map((i) => i.alt),
      items: document.querySelectorAll('#grid li').length,
      status: document.getElementById('status').textContent, count: document.getElementById('count').textContent }));
    throw new Error(`waiting for ${n} items: ${JSON.stringify(seen)} (console: ${JSON.stringify(report.console_errors)})`);
  }
}
// Set a filter field and submit the form with Enter, checking the field took the value first
// (a fill racing the viewer's closing focus change was seen to be lost once).
async function filter(page, values) {
  for (const [id, value] of Object.entries(values)) {
    for (let i = 0; i < 5; i += 1) {
      await page.fill(id, value);
      if ((await page.$eval(id, (e) => e.value)) === value) break;
      await page.waitForTimeout(100);
    }
  }
  await page.press(Object.keys(values).pop(), 'Enter');
}
async function signIn(page) {
  await page.goto(`${base}/ui/`, { waitUntil: 'load' });
  await page.waitForURL(/\/ui\/login$/);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#submit');
  await page.waitForURL(/\/ui\/$/);
}
async function axe(page, name) {
  await page.addScriptTag({ path: axePath });
  const r = await page.evaluate(async () => await window.axe.run(document));
  report.axe[name] = r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
}
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.on('request', (r) => report.requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
  page.on('pageerror', (e) => report.console_errors.push(String(e)));

  // A wrong password shows the API's message and stays.
  await page.goto(`${base}/ui/login`, { waitUntil: 'load' });
  await page.screenshot({ path: `${shots}/login-desktop.png` });
  await page.fill('#email', email);
  await page.fill('#password', 'wrong password');
  await page.click('#submit');
  await page.waitForFunction(() => document.getElementById('error').textContent.length > 0);
  report.wrong_password = await page.$eval('#error', (e) => e.textContent);

  await signIn(page);
  await settled(page, Number(process.env.EXPECT_ITEMS));
  report.who = await page.$eval('#who', (e) => e.textContent);
  report.all = await alts(page);
  await page.waitForFunction(() => [...document.querySelectorAll('#grid img')].every((i) => i.complete && i.naturalWidth > 0));
  await page.waitForTimeout(400);
  await page.screenshot({ path: `${shots}/app-desktop.png` });
  report.cookie_visible_to_script = await page.evaluate(() => document.cookie);

  // Filters are submitted with Enter (a keyboard user's way, and immune to layout shifts).
  await filter(page, { '#not_tag': 'cat' });
  await settled(page, Number(process.env.EXPECT_WITHOUT_CAT));
  report.without_cat = await alts(page);

  // Clear the filter, open the PNG with generation info by keyboard.
  await filter(page, { '#not_tag': '', '#q': 'castle' });
  await settled(page, 1);
  await page.focus('#grid button');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#viewer[open]');
  report.prompt = await page.$eval('#panel-gen .prompt', (p) => p.textContent);
  report.negative = await page.$eval('#panel-gen .negative_prompt', (p) => p.textContent);
  report.params = await page.$eval('#panel-gen dl', (d) => d.textContent);
  await page.screenshot({ path: `${shots}/app-viewer-desktop.png` });
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('viewer').open);
  await filter(page, { '#q': '' });
  await settled(page, Number(process.env.EXPECT_ITEMS));
  await page.focus('#grid button');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#viewer[open]');
  report.first = await page.$eval('#viewer-caption', (c) => c.textContent);
  await page.keyboard.press('ArrowRight');
  report.second = await page.$eval('#viewer-caption', (c) => c.textContent);
  await page.keyboard.press('Escape');

  // Upload by drag and drop: two images and a corrupt one (its own error; the others succeed).
  const fs = await import('node:fs');
  const files = (process.env.UPLOAD_FILES || '').split(',').filter(Boolean).map((p) => ({
    name: p.split('/').pop(), b64: fs.readFileSync(p).toString('base64') }));
  files.push({ name: 'broken.png', b64: Buffer.from('\x89PNG\r\n\x1a\nthis is not a png').toString('base64') });
  await page.click('#upload-open');
  await page.fill('#up-tags', 'dropped');
  await page.evaluate((files) => {
    const dt = new DataTransfer();
    for (const f of files) {
      const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], f.name, { type: f.name.endsWith('.png') ? 'image/png' : 'image/jpeg' }));
    }
    const drop = document.getElementById('drop');
    drop.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true }));
    drop.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true }));
  }, files);
  await page.waitForFunction((n) => {
    const rows = [...document.querySelectorAll('#queue li')];
    return rows.length === n && rows.every((li) => li.className === 'ok' || li.className === 'failed');
  }, files.length);
  report.upload = await page.evaluate(() => ({
    overall: document.getElementById('overall').textContent,
    rows: [...document.querySelectorAll('#queue li')].map((li) => ({ name: li.querySelector('.name').textContent,
      state: li.querySelector('.state').textContent, cls: li.className })),
  }));
  report.items_after_upload = Number(process.env.EXPECT_ITEMS) + files.length - 1;
  await settled(page, report.items_after_upload);
  await page.screenshot({ path: `${shots}/app-upload-desktop.png` });

  // A phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/app-phone.png` });

  // Sign out: back to sign-in, and /ui/ asks again.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.click('#signout');
  await page.waitForURL(/\/ui\/login$/);
  await page.goto(`${base}/ui/`, { waitUntil: 'load' });
  await page.waitForURL(/\/ui\/login$/);
  report.signed_out = true;

  // axe-core in a context that lets the injected script run.
  const scan = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 800 } });
  const sp = await scan.newPage();
  await sp.goto(`${base}/ui/login`, { waitUntil: 'load' });
  await axe(sp, 'login');
  await signIn(sp);
  await settled(sp, report.items_after_upload);
  await sp.click('#upload-open');
  await axe(sp, 'browser');
  await sp.focus('#grid button');
  await sp.keyboard.press('Enter');
  await sp.waitForSelector('#viewer[open]');
  await axe(sp, 'viewer');
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
