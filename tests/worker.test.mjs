// Runs deploy/cloudflare/worker.js under Node (its fetch handler, Node's own Request/fetch) in
// front of a real cache and Refract: `node tests/worker.test.mjs <proxy base> <path>`.
// Prints one line per request: the content type and the proxy's cache status.
import assert from "node:assert/strict";

const mod = await import(new URL("../deploy/cloudflare/worker.js", import.meta.url));
const [base, path] = process.argv.slice(2);

// The rewrite rules.
const q = (url, accept) => mod.rewrite(url, accept).search;
assert.equal(q("http://x/img/a.jpg?w=1", "image/avif,image/webp"), "?w=1&fm=avif");
assert.equal(q("http://x/img/a.jpg?w=1", "image/webp,*/*"), "?w=1&fm=webp");
assert.equal(q("http://x/img/a.jpg?w=1", "*/*"), "?w=1");
assert.equal(q("http://x/img/a.jpg?w=1&fm=auto", "image/avif;q=0,image/webp"), "?w=1&fm=webp");
assert.equal(q("http://x/img/a.jpg?w=1&format=auto", "image/avif"), "?w=1&fm=avif");
assert.equal(q("http://x/img/a.jpg", "image/avif"), "", "originals are left alone");
assert.equal(q("http://x/img/a.jpg?w=1&fm=png", "image/avif"), "?w=1&fm=png", "explicit fm wins");
assert.equal(q("http://x/img/a.jpg?w=1&s=sig", "image/avif"), "?w=1&s=sig", "signed URLs untouched");
assert.equal(q("http://x/api/v1/images?w=1", "image/avif"), "?w=1", "only /img/");
assert.equal(mod.accepts(null, "image/avif"), false);
assert.equal(mod.accepts("IMAGE/AVIF;q=0.5", "image/avif"), true);
assert.equal(mod.accepts("image/avif;q=0.0", "image/avif"), false);

const clients = [
  ["image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "image/avif", [0x00, 0x00, 0x00]],
  ["image/webp,*/*", "image/webp", [0x52, 0x49, 0x46, 0x46]],
  ["*/*", "image/jpeg", [0xff, 0xd8, 0xff]],
];
for (let pass = 0; pass < 2; pass++) {
  for (const [accept, type, magic] of clients) {
    const res = await mod.default.fetch(new Request(base + path, { headers: { accept } }));
    assert.equal(res.status, 200, accept);
    assert.equal(res.headers.get("content-type"), type, accept);
    const body = new Uint8Array(await res.arrayBuffer());
    if (type === "image/avif") {
      assert.equal(new TextDecoder().decode(body.slice(4, 8)), "ftyp");
    } else {
      assert.deepEqual([...body.slice(0, magic.length)], magic, accept);
    }
    console.log(`${type} ${res.headers.get("x-proxy-cache")}`);
  }
}
