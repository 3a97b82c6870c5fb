// Drives Refract's /gallery in headless Chromium (Debian's, through playwright-core): the grid,
// its thumbnails, the viewer by keyboard, screenshots at desktop and phone widths, and an
// axe-core scan. Prints a JSON report for tests/ui.rs.
// Usage: node gallery_page.mjs <base-url> <screenshot-dir>   (NODE_PATH: playwright-core, axe-core)
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const axePath = require.resolve('axe-core/axe.min.js');

const [base, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.REFRACT_TEST_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { requests: [], console_errors: [], items: 0, alts: [], loaded: 0, srcsets: 0,
  current_srcs: [], viewer: {}, axe: {} };
const gridReady = async (page, n) => {
  await page.waitForFunction((n) => document.querySelectorAll('#grid li').length >= n, n, { timeout: 20000 });
  await page.waitForFunction(() => [...document.querySelectorAll('#grid img')].every((i) => i.complete && i.naturalWidth > 0),
    null, { timeout: 20000 });
};
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.on('request', (r) => report.requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
  page.on('pageerror', (e) => report.console_errors.push(String(e)));
  await page.goto(`${base}/gallery`, { waitUntil: 'load' });
  await gridReady(page, Number(process.env.EXPECT_ITEMS || 1));
  Object.assign(report, await page.evaluate(() => {
    const imgs = [...document.querySelectorAll('#grid img')];
    return {
      items: document.querySelectorAll('#grid li').length,
      alts: imgs.map((i) => i.alt),
      loaded: imgs.filter((i) => i.naturalWidth > 0).length,
      srcsets: imgs.filter((i) => i.srcset.includes(' 960w')).length,
      current_srcs: imgs.map((i) => i.currentSrc),
      placeholders: [...document.querySelectorAll('#grid .frame')].filter((f) => f.style.backgroundImage.startsWith('url("data:image/png')).length,
    };
  }));
  await page.waitForTimeout(400);
  await page.screenshot({ path: `${shots}/gallery-desktop.png` });
  // The viewer, by keyboard only.
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#viewer[open]');
  const caption = () => page.$eval('#viewer-caption', (c) => c.textContent);
  report.viewer.first = await caption();
  await page.keyboard.press('ArrowRight');
  report.viewer.next = await caption();
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  report.viewer.wrapped = await caption();
  await page.waitForFunction(() => document.getElementById('viewer-img').complete
    && document.getElementById('viewer-img').naturalWidth > 0);
  report.viewer.src = await page.$eval('#viewer-img', (i) => i.currentSrc);
  await page.screenshot({ path: `${shots}/gallery-viewer-desktop.png` });
  await page.keyboard.press('Escape');
  report.viewer.closed = await page.$eval('#viewer', (d) => !d.open);
  report.viewer.focus_back = await page.evaluate(() => document.activeElement && document.activeElement.closest('#grid') !== null);

  // A phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, hasTouch: true, isMobile: true });
  const pp = await phone.newPage();
  await pp.goto(`${base}/gallery`, { waitUntil: 'load' });
  await gridReady(pp, Number(process.env.EXPECT_ITEMS || 1));
  report.phone_srcs = await pp.$$eval('#grid img', (imgs) => imgs.map((i) => i.currentSrc));
  await pp.screenshot({ path: `${shots}/gallery-phone.png`, fullPage: true });

  // axe-core (the page's CSP would refuse the injected script: this context bypasses it).
  const scan = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 800 } });
  const sp = await scan.newPage();
  await sp.goto(`${base}/gallery`, { waitUntil: 'load' });
  await gridReady(sp, Number(process.env.EXPECT_ITEMS || 1));
  await sp.addScriptTag({ path: axePath });
  const results = await sp.evaluate(async () => await window.axe.run(document));
  report.axe.grid = results.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  await sp.keyboard.press('Tab');
  await sp.keyboard.press('Enter');
  await sp.waitForSelector('#viewer[open]');
  const inViewer = await sp.evaluate(async () => await window.axe.run(document));
  report.axe.viewer = inViewer.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
