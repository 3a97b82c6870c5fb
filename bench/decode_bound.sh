#!/usr/bin/env bash
# The limit, measured: the JPEG decoder alone on jpeg400/webp400's source, at the DCT scale Refract
# decodes it at for a 400 px output (1/8: 6028 px / 400 = 15x, and Refract takes the largest scale
# that still covers the output, as sharp does), against Refract's CPU per request for those scenarios.
#
#   bench/decode_bound.sh [-n 30] [-s 1/8] [-f FILE] [REFRACT ...]
#
# REFRACT: a peers run's results.tsv (or its folder): the median cpu_ms_per_req of target
# $REFRACT_TARGET (refract) for jpeg400 and webp400; or a number (ms CPU per request).
# It runs `djpeg -scale S -outfile /dev/null FILE` once to warm the page cache, then N times, and
# reports the median CPU (user+sys of the child, from bash's `times`, 1 ms steps) per decode, less
# the mean of N `djpeg -version` runs (process start), and the ratio Refract / decoder.
# The decoder: Debian's djpeg, libjpeg-turbo 2.1.5 (apt libjpeg-turbo-progs); Refract links
# libjpeg-turbo 3.1 (turbojpeg crate) with the same defaults (integer IDCT, scaled at 1/8; fancy
# upsampling; RGB out): a like-for-like floor, but another version and build, so ratios near 1.0
# are within that difference.
# The machine's other load inflates wall time, hardly CPU time; run it when idle all the same.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N=30; SCALE=1/8; FILE=""
while getopts "n:s:f:h" o; do
  case "$o" in
    n) N="$OPTARG" ;; s) SCALE="$OPTARG" ;; f) FILE="$OPTARG" ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ "$N" =~ ^[0-9]+$ ]] && ((N >= 3)) || { echo "-n: at least 3 decodes" >&2; exit 2; }
[[ "$SCALE" =~ ^1/(1|2|4|8)$ ]] || { echo "-s: 1/1, 1/2, 1/4 or 1/8" >&2; exit 2; }
if [[ -z "$FILE" ]]; then
  for c in "${CORPUS:-}" "$HERE/../../shared/corpus" "$HERE/../shared/corpus" "$HERE/../corpus"; do
    [[ -n "$c" && -f "$c/kleiber-6028x3391.jpg" ]] && FILE="$c/kleiber-6028x3391.jpg" && break
  done
fi
[[ -f "$FILE" ]] || { echo "no kleiber-6028x3391.jpg found: set CORPUS or pass -f FILE" >&2; exit 1; }
for a in "$@"; do
  [[ "$a" =~ ^[0-9]+(\.[0-9]+)?$ || -f "$a" || -f "$a/results.tsv" ]] || { echo "not a number or a results.tsv: $a" >&2; exit 2; }
done
if ! command -v djpeg >/dev/null; then
  echo "installing libjpeg-turbo-progs (djpeg) ..." >&2
  apt-get install -y -q libjpeg-turbo-progs >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q libjpeg-turbo-progs >/dev/null; }
fi

median() { sort -g | awk '{a[NR] = $1} END{if (NR) printf "%.1f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
runs() { # cmd... -> N lines "cpu_ms wall_ms": the child's user+sys from bash's `times` (its second
  # line: children's user and sys), read without forking between the two snapshots
  local tf i b a t0 t1 _
  tf="$(mktemp)"
  for ((i = 0; i < N; i++)); do
    times >"$tf"; { read -r _; read -r b; } <"$tf"
    t0="$EPOCHREALTIME"; "$@" >/dev/null 2>&1; t1="$EPOCHREALTIME"
    times >"$tf"; { read -r _; read -r a; } <"$tf"
    awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" '
      function one(x, q) { split(x, q, "m"); sub("s", "", q[2]); return (q[1] * 60 + q[2]) * 1000 }
      function two(x, p) { split(x, p, " "); return one(p[1]) + one(p[2]) }
      BEGIN { printf "%.3f %.3f\n", two(a) - two(b), (t1 - t0) * 1000 }'
  done
  rm -f "$tf"
}

djpeg -scale "$SCALE" -outfile /dev/null "$FILE"   # warm the page cache (and fail early)
dec="$(runs djpeg -scale "$SCALE" -outfile /dev/null "$FILE")"
nop="$(runs djpeg -version)"
cpu="$(cut -d' ' -f1 <<<"$dec" | median)"; wall="$(cut -d' ' -f2 <<<"$dec" | median)"
start="$(awk '{s += $1} END{printf "%.1f", s / NR}' <<<"$nop")"   # a mean: 1 ms steps, ~0.6 ms
lo="$(cut -d' ' -f1 <<<"$dec" | sort -g | head -1 | xargs printf '%.1f')"; hi="$(cut -d' ' -f1 <<<"$dec" | sort -g | tail -1 | xargs printf '%.1f')"
net="$(awk -v a="$cpu" -v b="$start" 'BEGIN{printf "%.1f", a - b}')"
dims="$(rdjpgcom -verbose "$FILE" 2>/dev/null | sed -n 's/^JPEG image is \([0-9]*\)w \* \([0-9]*\)h.*/\1 \2/p')"
d="${SCALE#1/}"; out="?"
[[ -n "$dims" ]] && out="$(awk -v d="$d" '{printf "%dx%d", ($1 + d - 1) / d, ($2 + d - 1) / d}' <<<"$dims")"
ver="$(djpeg -version 2>&1 | head -1 | sed 's/ (build.*//')"

echo "decoder alone: djpeg ($ver) -scale $SCALE $(basename "$FILE") (${dims/ /x} -> $out), $N decodes on $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg):"
echo "  CPU per decode (user+sys): median $cpu ms (min $lo, max $hi); process start (djpeg -version, mean) $start ms"
echo "  => decoder alone: $net ms CPU per decode; wall median $wall ms"

# Refract's figures
ratio() { awk -v r="$2" -v d="$net" -v l="$1" 'BEGIN{ if (d > 0) printf "%s: %.2f ms CPU per request = %.2f x the decoder alone (%.1f ms)\n", l, r, r / d, d }'; }
for a in "$@"; do
  if [[ "$a" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    ratio "refract (given)" "$a"
    continue
  fi
  tsv="$a"; [[ -d "$tsv" ]] && tsv="$tsv/results.tsv"
  for s in jpeg400 webp400; do
    v="$(awk -F'\t' -v t="${REFRACT_TARGET:-refract}" -v s="$s" '
      NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
      $c["target"] == t && $c["scenario"] == s && $c["rps"] != "FAILED" && $c["cpu_ms_per_req"] != "" { print $c["cpu_ms_per_req"] }' "$tsv" | median)"
    n="$(awk -F'\t' -v t="${REFRACT_TARGET:-refract}" -v s="$s" '$2 == t && $3 == s && $4 != "FAILED"' "$tsv" | wc -l)"
    [[ -n "$v" ]] && ratio "${REFRACT_TARGET:-refract} $s (median of $n rounds, $(basename "$(dirname "$tsv")"))" "$v"
  done
done
exit 0
