#!/usr/bin/env python3
"""SVG chart of throughput per scenario from bench/peers.sh results.tsv (stdlib only).

    python3 bench/peers/chart.py results.tsv OUT.svg [REF_TARGET] [scenario=ref,...]

One group of bars per scenario: each target's median req/s divided by the reference target's
(ipx, or the per-scenario reference such as nginx for the hot URL), so scenarios whose req/s
differ by 1000x share one axis. The value printed at the end of each bar is the ratio; the
median req/s is in brackets.
"""
import csv
import statistics
import sys
from collections import defaultdict
from xml.sax.saxutils import escape

COLOURS = ["#d94801", "#2171b5", "#6a51a3", "#238b45", "#8c6d31", "#636363", "#e7298a"]


def main():
    path, out = sys.argv[1], sys.argv[2]
    default_ref = sys.argv[3] if len(sys.argv) > 3 else "ipx"
    refs = dict(kv.split("=", 1) for kv in (sys.argv[4] if len(sys.argv) > 4 else "").split(",") if "=" in kv)
    rps = defaultdict(list)
    scenarios, targets = [], []
    for r in csv.DictReader(open(path), delimiter="\t"):
        if r["rps"] in ("", "FAILED"):
            continue
        rps[(r["scenario"], r["target"])].append(float(r["rps"]))
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
        if r["target"] not in targets:
            targets.append(r["target"])
    colour = {t: COLOURS[i % len(COLOURS)] for i, t in enumerate(targets)}
    rows = []  # (scenario, target, ratio, median rps)
    for s in scenarios:
        ref = refs.get(s, default_ref)
        ref_rps = statistics.median(rps[(s, ref)]) if rps.get((s, ref)) else None
        for t in targets:
            if (s, t) in rps:
                m = statistics.median(rps[(s, t)])
                rows.append((s, t, m / ref_rps if ref_rps else None, m, ref))
    bar_h, gap, left, width = 16, 14, 150, 420
    top = 40
    max_ratio = max([r[2] for r in rows if r[2]] + [1.0]) * 1.15
    height = top + len(rows) * bar_h + len(scenarios) * gap + 40
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 170}" height="{height}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="10" y="18" font-size="14" font-weight="bold">Throughput per scenario, relative to the '
           f'reference (median req/s of {escape(path.split("/")[-2]) if "/" in path else "the run"})</text>']
    y = top
    x1 = left + width / max_ratio
    svg.append(f'<line x1="{x1:.1f}" y1="{top - 6}" x2="{x1:.1f}" y2="{height - 30}" stroke="#999" stroke-dasharray="4 3"/>')
    svg.append(f'<text x="{x1 + 3:.1f}" y="{top - 8}" fill="#666">1.0 = reference</text>')
    last = None
    for s, t, ratio, m, ref in rows:
        if s != last:
            if last is not None:
                y += gap
            svg.append(f'<text x="10" y="{y + 12}" font-weight="bold">{escape(s)}</text>'
                       f'<text x="10" y="{y + 25}" fill="#666">vs {escape(ref)}</text>')
            last = s
        w = width * (ratio or 0) / max_ratio
        svg.append(f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{bar_h - 4}" fill="{colour[t]}"/>')
        label = f'{escape(t)} {ratio:.2f} ({m:,.0f} req/s)' if ratio else f'{escape(t)} ({m:,.0f} req/s)'
        svg.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 4}">{label}</text>')
        y += bar_h
    svg.append("</svg>")
    open(out, "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
