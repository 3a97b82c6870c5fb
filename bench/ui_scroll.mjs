// For bench/ui.sh: sign in to /ui/ in headless Chromium, then measure with the Performance API
// the first contentful paint, the first grid paint (the last thumbnail of the first screen
// loaded, from its resource timing), and the time to scroll through COUNT thumbnails one screen
// at a time, each screen's thumbnails loaded before the next scroll; and the bytes of the
// thumbnails against the originals they show (sizes from GET /api/v1/images). Prints JSON.
// Usage: node ui_scroll.mjs <base-url> <email> <password> [COUNT=1000]
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const [base, email, password, countArg] = process.argv.slice(2);
const COUNT = Number(countArg || 1000);
const browser = await chromium.launch({
  executablePath: process.env.REFRACT_TEST_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  await page.goto(`${base}/ui/login`, { waitUntil: 'load' });
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#submit');
  await page.waitForURL(/\/ui\/$/);
  // A clean navigation to measure from (the session cookie signs it in).
  await page.goto(`${base}/ui/`, { waitUntil: 'commit' });
  const visibleLoaded = () => {
    const imgs = [...document.querySelectorAll('#grid img')].filter((i) => {
      const r = i.getBoundingClientRect();
      return r.bottom > 0 && r.top < window.innerHeight;
    });
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  };
  await page.waitForFunction(visibleLoaded, null, { timeout: 120000, polling: 'raf' });
  const first = await page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const shown = [...document.querySelectorAll('#grid img')].filter((i) => {
      const r = i.getBoundingClientRect();
      return r.bottom > 0 && r.top < window.innerHeight;
    }).map((i) => i.currentSrc);
    const timing = new Map(performance.getEntriesByType('resource').map((e) => [e.name, e]));
    const ends = shown.map((u) => timing.get(u)).filter(Boolean);
    return {
      fcp: fcp ? fcp.startTime : null,
      first_screen: Math.max(...ends.map((e) => e.responseEnd)),
      screen: shown,
      screen_bytes: ends.reduce((s, e) => s + e.encodedBodySize, 0),
    };
  });
  // Scroll a screen at a time until COUNT thumbnails have been in view, each screen loaded.
  const t0 = await page.evaluate(() => performance.now());
  for (;;) {
    const seen = await page.evaluate(() => [...document.querySelectorAll('#grid li')]
      .filter((li) => li.getBoundingClientRect().top < window.innerHeight).length);
    if (seen >= COUNT) break;
    const moved = await page.evaluate(() => {
      const y = window.scrollY;
      window.scrollBy(0, window.innerHeight);
      return window.scrollY !== y;
    });
    if (!moved) await page.waitForFunction(() => document.getElementById('status').textContent === '', null, { timeout: 120000 });
    await page.waitForFunction(visibleLoaded, null, { timeout: 120000, polling: 'raf' });
  }
  const rest = await page.evaluate((t0) => {
    const imgs = [...document.querySelectorAll('#grid img')];
    const loaded = imgs.filter((i) => i.complete && i.naturalWidth > 0).map((i) => i.currentSrc);
    const timing = new Map(performance.getEntriesByType('resource').map((e) => [e.name, e]));
    return {
      scrolled: performance.now() - t0,
      loaded: loaded.length,
      urls: loaded,
      all_bytes: loaded.map((u) => timing.get(u)).filter(Boolean).reduce((s, e) => s + e.encodedBodySize, 0),
    };
  }, t0);
  // The originals' sizes, from the API (the session's token through the page).
  const sizes = await page.evaluate(async () => {
    const { currentToken } = await import('/ui/assets/session.js');
    const out = {};
    let cursor = '';
    for (let n = 0; n < 30; n += 1) {
      const r = await fetch(`/api/v1/images?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
        { headers: { Authorization: `Bearer ${currentToken()}` } });
      const body = await r.json();
      for (const i of body.images) out[new URL(i.url).pathname] = i.bytes;
      if (!body.next_cursor) break;
      cursor = encodeURIComponent(body.next_cursor);
    }
    return out;
  });
  const original = (u) => sizes[new URL(u).pathname] || 0;
  console.log(JSON.stringify({
    fcp: first.fcp,
    first_screen: first.first_screen,
    screen_count: first.screen.length,
    screen_bytes: first.screen_bytes,
    screen_originals: first.screen.reduce((s, u) => s + original(u), 0),
    scrolled: rest.scrolled,
    loaded: rest.loaded,
    all_bytes: rest.all_bytes,
    all_originals: rest.urls.reduce((s, u) => s + original(u), 0),
  }));
} finally {
  await browser.close();
}
