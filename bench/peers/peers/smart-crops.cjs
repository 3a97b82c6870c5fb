// The look of smart cropping, side by side: for each image, Refract's gravity=auto crop and
// sharp's position=attention crop (what ipx's pos_attention runs), 256x256 each, in one PNG.
//   node smart-crops.cjs CORPUS_DIR REFRACT_BASE OUT.png
// REFRACT_BASE serves CORPUS_DIR as its storage root (e.g. the release binary with
// --storage-root). Rows: one per image; columns: the centre crop, Refract auto, sharp attention.
"use strict";
const path = require("node:path");
const { createRequire } = require("node:module");
const nodeDir = process.env.PEERS_NODE_DIR || path.join(__dirname, "..", ".peers", "node");
const sharp = createRequire(path.join(nodeDir, "package.json"))("sharp");

const [corpus, base, out] = process.argv.slice(2);
const files = [
  "kleiber-6028x3391.jpg",
  "path-2560x1600-icc.jpg",
  "rocket-640x427-adobergb.jpg",
  "seeding-5312x2988-progressive.jpg",
  "altai-5120x2880.png",
  "coffee-600x400.png",
];
const S = 256;

async function refract(file, g) {
  const r = await fetch(`${base}/img/${file}?w=${S}&h=${S}&fit=cover&fm=png${g}`);
  if (!r.ok) throw new Error(`${file}: ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

(async () => {
  const tiles = [];
  for (const [row, file] of files.entries()) {
    const centre = await refract(file, "");
    const auto = await refract(file, "&g=auto");
    const attention = await sharp(path.join(corpus, file))
      .rotate()
      .resize(S, S, { fit: "cover", position: sharp.strategy.attention })
      .png()
      .toBuffer();
    for (const [col, input] of [centre, auto, attention].entries()) {
      tiles.push({ input, left: col * (S + 8), top: row * (S + 8) });
    }
  }
  await sharp({
    create: { width: 3 * S + 16, height: files.length * (S + 8) - 8, channels: 3, background: "#ffffff" },
  })
    .composite(tiles)
    .png({ compressionLevel: 9, palette: true })
    .toFile(out);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
