#!/usr/bin/env bash
# The AVIF/HEIC-input scenarios' sources: a phone-sized (4032x2268, 9 MP) still of jpeg400's
# picture as an iPhone and an AVIF-exporting tool would store it, made once.
#   peers/codec-corpus.sh CORPUS_DIR OUT_DIR
# Writes OUT_DIR/codecs/kleiber-4032.heic (HEVC, libheif's heif-enc with x265, quality 60, 4:2:0)
# and OUT_DIR/codecs/kleiber-4032.avif (AV1, heif-enc with libaom, quality 80 (a size like the HEIC's), 4:2:0), both from
# one 4032 px PNG resized from kleiber-6028x3391.jpg with Pillow. Needs Debian's
# libheif-examples (installed here when missing) and bench/peers/.peers/py (setup-peers.sh).
# Idempotent: does nothing when OUT_DIR/codecs/.stamp matches.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CORPUS_DIR="${1:?usage: codec-corpus.sh CORPUS_DIR OUT_DIR}"; OUT_DIR="${2:?usage: codec-corpus.sh CORPUS_DIR OUT_DIR}"
SRC="$CORPUS_DIR/kleiber-6028x3391.jpg"
[[ -f "$SRC" ]] || { echo "codec-corpus: no source $SRC" >&2; exit 1; }
D="$OUT_DIR/codecs"
stamp="v2 $(stat -c %s "$SRC")"
if [[ -f "$D/.stamp" && "$(cat "$D/.stamp")" == "$stamp" ]]; then echo "$D"; exit 0; fi
command -v heif-enc >/dev/null || apt-get install -y -q --no-install-recommends libheif-examples >/dev/null
mkdir -p "$D"
PNG="$D/.kleiber-4032.png"
"$HERE/.peers/py/bin/python" - "$SRC" "$PNG" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
im.resize((4032, 2268), Image.LANCZOS).save(sys.argv[2])
PY
for f in heic avif; do
  enc=(); [[ $f == avif ]] && enc=(-A)
  q=60; [[ $f == avif ]] && q=80
  heif-enc "${enc[@]}" -q "$q" -o "$D/kleiber-4032.$f.tmp" "$PNG" >/dev/null
  mv "$D/kleiber-4032.$f.tmp" "$D/kleiber-4032.$f"
done
rm -f "$PNG"
echo "$stamp" >"$D/.stamp"
echo "$D"
