#!/usr/bin/env bash
# Peer benchmark (copied from ../shared/bench, with Refract as a target in targets.sh): the same image transforms against Refract, ipx (sharp/libvips), thumbor (Pillow), a bare
# sharp server, optionally pyvips, side by side in one run, on 127.0.0.1 only.
#
#   bench/peers.sh                 # setup if needed, load test, quality check, print tables
#   bench/peers.sh --no-quality    # load test only
#   bench/peers.sh --quality-only  # output bytes + perceptual quality only
#
# Knobs (environment): TARGETS="ipx thumbor sharp" SCENARIOS="jpeg400 ..." DURATION=10 (s, measured)
# WARMUP=3 (s) CONC=4 THREADS=2 SPAN=128 (distinct widths per run) ROUNDS=1 (targets interleaved per
# round; medians reported) REF=ipx (ratio column) CORPUS=<dir> OUT=<dir> QUALITY_QS="30 40 50 60 70 80 90";
# for the srcset scenario SRCSET_SOURCES=50 SRCSET_WIDTHS="320 480 640 960 1280 1920".
# Scenarios and targets (URL templates) are defined in bench/targets.sh; a scenario may override
# SPAN, CONC, THREADS, the wrk script and the corpus dir there (S_SPAN, S_CONC, ...).
#
# Each (round, scenario, target) starts the server fresh in its own process group, waits until the
# scenario URL answers 200, warms up, measures with wrk at CONC connections for DURATION seconds,
# reads the peak RSS (VmHWM summed over the server's processes) and the server's CPU time, and
# stops it. Every step has a time limit; only 127.0.0.1 is ever contacted.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
ENV_SCENARIOS="${SCENARIOS:-}"; ENV_TARGETS="${TARGETS:-}"
# shellcheck source=targets.sh
source "$HERE/targets.sh"

MODE=all
for a in "$@"; do
  case "$a" in
    --no-quality) MODE=load ;;
    --quality-only) MODE=quality ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

DURATION="${DURATION:-10}"; WARMUP="${WARMUP:-3}"; CONC="${CONC:-4}"; THREADS="${THREADS:-2}"; GTHREADS="$THREADS"
SPAN="${SPAN:-128}"; GSPAN="$SPAN"; ROUNDS="${ROUNDS:-1}"; REF="${REF:-ipx}"
read -r -a TLIST <<<"${ENV_TARGETS:-${DEFAULT_TARGETS[*]}}"
read -r -a SLIST <<<"${ENV_SCENARIOS:-${ALL_SCENARIOS[*]}}"
QUALITY_QS="${QUALITY_QS:-30 40 50 60 70 80 90}"

if [[ -z "${CORPUS:-}" ]]; then
  for c in "$HERE/../../../shared/corpus" "$HERE/../shared/corpus" "$HERE/../corpus"; do [[ -d "$c" ]] && CORPUS="$c" && break; done
fi
CORPUS="$(cd "${CORPUS:?no corpus dir found: set CORPUS}" && pwd)"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="${OUT:-$HERE/out/peers-$STAMP}"
mkdir -p "$OUT/logs"

"$HERE/setup-peers.sh" >&2

# scenarios with their own corpus dir (S_CORPUS): made once from the main corpus, then reused
declare -A SCORPUS=()
for s in "${SLIST[@]}"; do
  d="${S_CORPUS[$s]:-}"; [[ -n "$d" ]] || continue
  [[ "$d" == /* ]] || d="$HERE/$d"
  if [[ -n "${S_CORPUS_MAKE[$s]:-}" ]]; then
    "$HERE/${S_CORPUS_MAKE[$s]}" "$CORPUS" "$d" >&2 || { echo "could not make the corpus of $s" >&2; exit 1; }
  fi
  SCORPUS[$s]="$(cd "$d" && pwd)"
done

for t in "${TLIST[@]}"; do
  [[ -n "${T_PORT[$t]:-}" ]] || { echo "unknown target: $t (see bench/targets.sh)" >&2; exit 2; }
done

# ---- process helpers (only processes this script started, by their group id) ----
SRV_PGID=""; SRV_OWNED=0
group_pids() { pgrep -g "$1" 2>/dev/null || true; }
start_target() { # target port log [corpus] -> sets SRV_PGID
  local t="$1" port="$2" log="$3" corpus="${4:-$CORPUS}"
  if ss -ltnH "sport = :$port" | grep -q .; then
    if [[ -n "${T_START[$t]}" ]]; then echo "port $port already in use; not starting $t" >&2; return 1; fi
  fi
  if [[ -n "${T_START[$t]}" ]]; then
    CORPUS="$corpus" PORT="$port" setsid bash -c "cd '$HERE' && exec ${T_START[$t]}" >"$log" 2>&1 &
    SRV_PGID=$!; SRV_OWNED=1
  else
    local pid; pid="$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
    [[ -n "$pid" ]] || { echo "$t: nothing listens on 127.0.0.1:$port and no start command" >&2; return 1; }
    SRV_PGID="$(ps -o pgid= -p "$pid" | tr -d ' ')"; SRV_OWNED=0
  fi
}
stop_target() {
  [[ -n "$SRV_PGID" && "$SRV_OWNED" == 1 ]] || { SRV_PGID=""; return 0; }
  kill -TERM -- "-$SRV_PGID" 2>/dev/null || true
  for _ in $(seq 1 50); do [[ -z "$(group_pids "$SRV_PGID")" ]] && break; sleep 0.1; done
  kill -KILL -- "-$SRV_PGID" 2>/dev/null || true
  SRV_PGID=""
}
trap 'stop_target' EXIT INT TERM
wait_ok() { # url -> 0 when it answers 200 within 60 s
  local deadline=$((SECONDS + 60)) code
  while ((SECONDS < deadline)); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$1" || true)"
    [[ "$code" == 200 ]] && return 0
    [[ -n "$SRV_PGID" && -z "$(group_pids "$SRV_PGID")" ]] && return 1
    sleep 0.3
  done
  return 1
}
rss_kib() { # sum of VmHWM (peak RSS) over the group's processes
  local sum=0 v
  for p in $(group_pids "$SRV_PGID"); do
    v="$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null || true)"; sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
cpu_ticks() { # user+system clock ticks of the group's live processes
  local sum=0 v
  for p in $(group_pids "$SRV_PGID"); do
    v="$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || true)"; sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
decoded_counts() { # base target -> "hits misses" of Refract's decoded-source cache (/metrics), else ""
  [[ "$2" == refract* ]] || return 0
  curl -s --max-time 5 "$1/metrics" 2>/dev/null \
    | awk '$1=="refract_decoded_hits_total"{h=$2} $1=="refract_decoded_misses_total"{m=$2} END{if (h != "" && m != "") print h, m}'
}
fill() { # template scenario [q] -> path with {file} {q} filled ({w} {h} left for the load script)
  local tp="$1" s="$2" q="${3:-${S_Q[$2]}}"
  tp="${tp//\{file\}/${S_FILE[$s]}}"; tp="${tp//\{q\}/$q}"; echo "$tp"
}
wh() { local tp="$1"; tp="${tp//\{w\}/$2}"; echo "${tp//\{h\}/$3}"; }

versions() { # one line per peer, read from what is installed
  local nm="$HERE/.peers/node/node_modules"
  echo "- refract: $(git -C "$HERE" describe --always --dirty 2>/dev/null || echo '?') ($(rustc -V 2>/dev/null))"
  [[ -d "$nm/ipx" ]] && echo "- ipx $(node -p "require('$nm/ipx/package.json').version"), sharp $(node -p "require('$nm/sharp/package.json').version"): $(node -e "const v=require('$nm/sharp').versions; console.log('libvips ' + v.vips + ', mozjpeg ' + v.mozjpeg + ', libwebp ' + v.webp + ', libaom ' + v.aom + ', libheif ' + v.heif)" 2>/dev/null); node $(node -v)"
  [[ -x "$HERE/.peers/thumbor/bin/pip" ]] && echo "- $("$HERE/.peers/thumbor/bin/pip" list 2>/dev/null | awk 'tolower($1)=="thumbor"||tolower($1)=="pillow"{printf "%s %s, ", $1, $2}')$("$HERE/.peers/thumbor/bin/python" -V 2>&1)"
  command -v nginx >/dev/null && echo "- $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "- $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
}
{
  echo "# peer run $STAMP"
  echo "host: $(lscpu | awk -F: '/Model name/{gsub(/^ +/, "", $2); print $2; exit}'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(uname -sr); $( . /etc/os-release && echo "$PRETTY_NAME")"
  versions
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "targets: ${TLIST[*]}; scenarios: ${SLIST[*]}"
  echo "wrk -t$THREADS -c$CONC -d${DURATION}s (+${WARMUP}s warm-up), width span $SPAN, rounds $ROUNDS, corpus $(basename "$CORPUS")"
  for s in "${SLIST[@]}"; do
    [[ -n "${S_CONC[$s]:-}${S_THREADS[$s]:-}${S_SCRIPT[$s]:-}${S_CORPUS[$s]:-}" ]] || continue
    echo "$s: wrk -t${S_THREADS[$s]:-$THREADS} -c${S_CONC[$s]:-$CONC} -s ${S_SCRIPT[$s]:-vary.lua}${SCORPUS[$s]:+, corpus ${SCORPUS[$s]#"$HERE/"}}"
  done
} | tee "$OUT/env.txt" >&2

TICK="$(getconf CLK_TCK)"
RES="$OUT/results.tsv"
if [[ "$MODE" != quality ]]; then
  printf 'round\ttarget\tscenario\trps\tp50_ms\tp90_ms\tp99_ms\tmax_ms\tok\tbad_status\tbad_ct\tsock_err\tmean_bytes\trequests\tuniq\trss_kib\tcpu_ms_per_req\tload1\tdecoded_hits\tdecoded_misses\n' >"$RES"
  for r in $(seq 1 "$ROUNDS"); do
    for s in "${SLIST[@]}"; do
      # alternate the order per round so that no target always runs first
      order=("${TLIST[@]}"); ((r % 2 == 0)) && order=($(printf '%s\n' "${TLIST[@]}" | tac))
      for t in "${order[@]}"; do
        tmpl="${URL[$t,$s]:-}"; [[ -n "$tmpl" ]] || continue
        port="${T_PORT[$t]}"; path="$(fill "$tmpl" "$s")"; base="http://127.0.0.1:$port"
        log="$OUT/logs/$t-$s-r$r.log"; probe="$(wh "$path" "${S_W[$s]}" "${S_H[$s]}")"
        echo "[round $r] $s / $t ..." >&2
        if ! start_target "$t" "$port" "$log" "${SCORPUS[$s]:-$CORPUS}" || ! wait_ok "$base${probe//\{src\}/probe}"; then
          echo "  $t failed to serve $s (see $log)" >&2
          printf '%s\t%s\t%s\tFAILED\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\n' "$r" "$t" "$s" >>"$RES"; stop_target; continue
        fi
        conc="${S_CONC[$s]:-$CONC}"; script="${S_SCRIPT[$s]:-vary.lua}"
        export URL_TEMPLATE="$path" BASE_W="${S_W[$s]}" BASE_H="${S_H[$s]}" SPAN="${S_SPAN[$s]:-$GSPAN}" \
               THREADS="${S_THREADS[$s]:-$GTHREADS}" ACCEPT="${S_ACCEPT[$s]}" EXPECT_CT="${S_CT[$s]}"
        PHASE=warm RESULT_FILE=/dev/null timeout $((WARMUP + 90)) \
          wrk -t"$THREADS" -c"$conc" -d"${WARMUP}s" --timeout 60s -s "$script" "$base" >>"$log" 2>&1 || true
        read -r dh0 dm0 <<<"$(decoded_counts "$base" "$t")" || true
        c0="$(cpu_ticks)"
        rf="$OUT/logs/$t-$s-r$r.result"
        PHASE=measure RESULT_FILE="$rf" timeout $((DURATION + 90)) \
          wrk -t"$THREADS" -c"$conc" -d"${DURATION}s" --timeout 60s -s "$script" "$base" >>"$log" 2>&1 || true
        c1="$(cpu_ticks)"; rss="$(rss_kib)"; load1="$(cut -d' ' -f1 /proc/loadavg)"
        read -r dh1 dm1 <<<"$(decoded_counts "$base" "$t")" || true
        dhits=""; dmiss=""   # decoded-source cache, measured phase only (Refract targets)
        [[ -n "${dh0:-}" && -n "${dh1:-}" ]] && dhits=$((dh1 - dh0)) && dmiss=$((dm1 - dm0))
        stop_target
        if [[ ! -s "$rf" ]]; then
          printf '%s\t%s\t%s\tFAILED\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\n' "$r" "$t" "$s" >>"$RES"; continue
        fi
        declare -A R=(); for kv in $(cat "$rf"); do R[${kv%%=*}]="${kv#*=}"; done
        cpu="$(awk -v d=$((c1 - c0)) -v n="${R[requests]}" -v tk="$TICK" 'BEGIN{printf "%.4f", (n > 0 ? d * 1000 / tk / n : 0)}')"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$s" \
          "${R[rps]}" "${R[p50_ms]}" "${R[p90_ms]}" "${R[p99_ms]}" "${R[max_ms]}" "${R[ok]}" "${R[bad_status]}" \
          "${R[bad_ct]}" "${R[sock_err]}" "${R[mean_bytes]}" "${R[requests]}" "${R[uniq]}" "$rss" "$cpu" "$load1" \
          "$dhits" "$dmiss" >>"$RES"
        echo "  $(cat "$rf")${dhits:+ decoded_hits=$dhits decoded_misses=$dmiss}" >&2
      done
    done
  done
  echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/env.txt" >&2
fi

# ---- quality: fetch outputs (servers started one at a time), then score offline ----
if [[ "$MODE" != load ]]; then
  QDIR="$OUT/quality"; mkdir -p "$QDIR"
  spec="$QDIR/spec.tsv"   # target scenario file q w h url-with-{q}-filled expected-ct
  : >"$spec"
  for t in "${TLIST[@]}"; do
    for s in jpeg400 webp400 avif400 alpha-webp300; do
      tmpl="${URL[$t,$s]:-}"; [[ -n "$tmpl" ]] || continue
      qs="${S_Q[$s]}"; [[ "$s" == alpha-webp300 ]] || qs="$QUALITY_QS"
      for q in $qs; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$s" "${S_FILE[$s]}" "$q" "$(wh "$(fill "$tmpl" "$s" "$q")" "${S_W[$s]}" "${S_H[$s]}")" "${S_CT[$s]}" "${S_ACCEPT[$s]}" >>"$spec"
      done
    done
    # EXIF orientation 1..8 and an Adobe RGB source, through the target's JPEG template at 300w
    tmpl="${URL[$t,jpeg400]:-}"
    if [[ -n "$tmpl" ]]; then
      for n in 1 2 3 4 5 6 7 8; do
        p="${tmpl//\{file\}/orientation/Landscape_$n.jpg}"; p="${p//\{q\}/90}"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "orient$n" "orientation/Landscape_$n.jpg" 90 "$(wh "$p" 300 0)" image/jpeg 'image/jpeg' >>"$spec"
      done
      p="${tmpl//\{file\}/rocket-640x427-adobergb.jpg}"; p="${p//\{q\}/90}"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "icc" "rocket-640x427-adobergb.jpg" 90 "$(wh "$p" 400 0)" image/jpeg 'image/jpeg' >>"$spec"
    fi
  done
  for t in "${TLIST[@]}"; do
    port="${T_PORT[$t]}"; log="$OUT/logs/$t-quality.log"
    first="$(awk -F'\t' -v t="$t" '$1==t{print $5; exit}' "$spec")"; [[ -n "$first" ]] || continue
    echo "[quality] fetching from $t ..." >&2
    if start_target "$t" "$port" "$log" && wait_ok "http://127.0.0.1:$port$first"; then
      awk -F'\t' -v t="$t" '$1==t' "$spec" | while IFS=$'\t' read -r _ s f q p ct acc; do
        curl -s --max-time 120 -H "Accept: $acc" -o "$QDIR/$t.$s.q$q.bin" -w '%{http_code} %{content_type}\n' \
          "http://127.0.0.1:$port$p" >"$QDIR/$t.$s.q$q.status" || echo "000" >"$QDIR/$t.$s.q$q.status"
      done
    else
      echo "  $t did not start for the quality step (see $log)" >&2
    fi
    stop_target
  done
  REF="$REF" timeout 1800 "$HERE/.peers/py/bin/python" "$HERE/quality.py" "$CORPUS" "$QDIR" >"$QDIR/quality.md"
fi

# ---- report ----
{
  cat "$OUT/env.txt"; echo
  refs="$(for s in "${SLIST[@]}"; do [[ -z "${S_REF[$s]:-}" ]] || printf '%s=%s,' "$s" "${S_REF[$s]}"; done)"
  [[ "$MODE" != quality ]] && python3 "$HERE/report.py" "$RES" "$REF" "$refs" \
    && python3 "$HERE/chart.py" "$RES" "$OUT/throughput.svg" "$REF" "$refs"
  [[ "$MODE" == load ]] || { echo; cat "$OUT/quality/quality.md"; }
} | tee "$OUT/report.md"
echo "(raw: $OUT)" >&2
