#!/usr/bin/env bash
# The srcset scenario's sources: N distinct copies of one large JPEG, made once.
#   peers/srcset-corpus.sh CORPUS_DIR OUT_DIR
# Writes OUT_DIR/srcset/s00.jpg .. s{N-1}.jpg and OUT_DIR/srcset/probe.jpg (the readiness probe and
# warm-up source, never requested in the measured phase). Each copy is the source with one COM
# segment inserted after SOI ("refract-bench srcset sNN"): the pixels are identical, the paths and
# the bytes (so any content hash or etag) differ, so neither Refract's caches (path + size +
# mtime/etag) nor anything keyed by URL or content can answer one source from another.
# Environment: SRCSET_SOURCE (file in CORPUS_DIR, default kleiber-6028x3391.jpg), SRCSET_SOURCES (N, 50).
# Idempotent: does nothing when OUT_DIR/srcset/.stamp matches the source and N.
set -euo pipefail
CORPUS_DIR="${1:?usage: srcset-corpus.sh CORPUS_DIR OUT_DIR}"; OUT_DIR="${2:?usage: srcset-corpus.sh CORPUS_DIR OUT_DIR}"
SRC="$CORPUS_DIR/${SRCSET_SOURCE:-kleiber-6028x3391.jpg}"; N="${SRCSET_SOURCES:-50}"
[[ -f "$SRC" ]] || { echo "srcset-corpus: no source $SRC" >&2; exit 1; }
[[ "$(head -c 2 "$SRC" | od -An -tx1 | tr -d ' \n')" == ffd8 ]] || { echo "srcset-corpus: $SRC is not a JPEG" >&2; exit 1; }
((N >= 1 && N <= 100)) || { echo "srcset-corpus: SRCSET_SOURCES must be 1..100" >&2; exit 1; }
D="$OUT_DIR/srcset"
stamp="$(basename "$SRC") $(stat -c %s "$SRC") $N"
if [[ -f "$D/.stamp" && "$(cat "$D/.stamp")" == "$stamp" ]]; then echo "$D"; exit 0; fi
mkdir -p "$D"
rm -f "$D"/s[0-9][0-9].jpg "$D/probe.jpg" "$D/.stamp"
one() { # name -> $D/name.jpg: SOI, COM "refract-bench srcset <name padded to 5>", the rest of the source
  local text; text="$(printf 'refract-bench srcset %-5s' "$1")"   # 26 bytes, + 2 length bytes = 0x001c
  { head -c 2 "$SRC"; printf '\xff\xfe\x00\x1c%s' "$text"; tail -c +3 "$SRC"; } >"$D/$1.jpg.tmp"
  mv "$D/$1.jpg.tmp" "$D/$1.jpg"
}
for ((i = 0; i < N; i++)); do one "$(printf 's%02d' "$i")"; done
one probe
# every file distinct, every file the same size (source + 30 bytes)
want=$((N + 1)); got="$(md5sum "$D"/*.jpg | cut -d' ' -f1 | sort -u | wc -l)"
((got == want)) || { echo "srcset-corpus: $got distinct files, expected $want" >&2; exit 1; }
echo "$stamp" >"$D/.stamp"
echo "$D"
