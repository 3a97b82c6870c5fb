// Cloudflare Worker for Refract: makes the output format explicit in the URL from the
// browser's Accept header, so that Cloudflare's cache, which keys by URL (and ignores
// Vary: Accept unless a Cache Rule says otherwise), holds one correct object per URL.
//
// Use with delivery.negotiate = "off" on Refract. Route: img.example.com/img/*
// (Workers Routes, any plan). Deploy: `npx wrangler deploy` with this file as main.
//
// /img/photos/cat.jpg?w=800 from a browser that accepts AVIF becomes
// /img/photos/cat.jpg?w=800&fm=avif (WebP for one that accepts WebP only; unchanged for the
// rest, which get the source's family). URLs without parameters (originals), with an explicit
// fm other than auto, or signed (s=) are passed through unchanged.

/** Whether an Accept header accepts `type` (named explicitly with q > 0). */
export function accepts(accept, type) {
  if (!accept) return false;
  for (const member of accept.toLowerCase().split(",")) {
    const [range, ...params] = member.split(";").map((s) => s.trim());
    if (range !== type) continue;
    const q = params.find((p) => p.replace(/\s/g, "").startsWith("q="));
    if (q === undefined) return true;
    const v = Number(q.split("=")[1]);
    if (Number.isFinite(v) && v > 0 && v <= 1) return true;
  }
  return false;
}

/** The URL to fetch for `url` (a string) and `accept`: `fm` added when it helps. */
export function rewrite(url, accept) {
  const u = new URL(url);
  if (!u.pathname.startsWith("/img/")) return u;
  const q = u.searchParams;
  if ([...q.keys()].length === 0 || q.has("s")) return u;
  const fm = q.get("fm") ?? q.get("format") ?? q.get("f");
  if (fm !== null && fm !== "auto") return u;
  const chosen = accepts(accept, "image/avif")
    ? "avif"
    : accepts(accept, "image/webp")
      ? "webp"
      : null;
  if (chosen === null) return u;
  for (const name of ["fm", "format", "f"]) q.delete(name);
  q.set("fm", chosen);
  return u;
}

export default {
  async fetch(request) {
    const url = rewrite(request.url, request.headers.get("Accept"));
    return fetch(new Request(url.toString(), request));
  },
};
