// Opens Refract's /docs in headless Chromium (Debian's, driven by playwright-core) and prints a
// JSON report: the operations RapiDoc rendered from /openapi.json, every request the page made
// (so the test can assert none left the server), and console errors.
// Usage: node docs_page.mjs <base-url>   (NODE_PATH must hold playwright-core)
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const base = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.REFRACT_TEST_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { requests: [], console_errors: [], operations: [], title: '' };
try {
  const page = await browser.newPage();
  page.on('request', (r) => report.requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') report.console_errors.push(m.text()); });
  page.on('pageerror', (e) => report.console_errors.push(String(e)));
  await page.goto(`${base}/docs`, { waitUntil: 'load' });
  // RapiDoc renders into its shadow root once it has fetched and parsed the document.
  await page.waitForFunction(() => {
    const r = document.querySelector('rapi-doc');
    return r && r.shadowRoot && r.shadowRoot.querySelectorAll('[part~="section-operation-summary"], .endpoint-head, .m-endpoint').length > 20;
  }, null, { timeout: 30000 });
  report.title = await page.evaluate(() => document.querySelector('rapi-doc').shadowRoot.textContent.includes('Refract') ? 'Refract' : '');
  report.operations = await page.evaluate(() => {
    const root = document.querySelector('rapi-doc').shadowRoot;
    return [...root.querySelectorAll('[id]')].map((e) => e.id).filter((id) => /^(get|post|put|patch|delete)-/.test(id));
  });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
