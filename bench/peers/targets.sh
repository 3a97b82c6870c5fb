# shellcheck shell=bash
# The one place where scenarios and targets are defined. Sourced by peers.sh and quality.py reads it too.
#
# Scenario: the source file (relative to the corpus dir), the base width/height the load varies around,
# the Accept header sent, the content type a correct answer has, and what it measures.
# Target: the port it listens on (127.0.0.1 only), the command that starts it (exec'd from bench/, with
# $CORPUS and $PORT set; empty = a server you started yourself), and one URL template per scenario.
# Templates: {file} is the scenario's file, {q} its quality (the quality sweep changes it); {w} and {h} are replaced per request by the load script
# (base ± SPAN/2, so that no result cache can answer). A scenario's file may itself hold {src}, which
# its load script fills per request (srcset.lua); the readiness probe fills it with `probe`.
# A target without a template for a scenario is skipped for it.

ALL_SCENARIOS=(jpeg400 webp400 avif400 alpha-webp300 cover150 fit512 prog400 hot smart300 anim200 srcset avifin400 heicin400)

declare -A S_FILE S_W S_H S_Q S_ACCEPT S_CT S_DESC
# Optional per-scenario overrides of the global knobs: width span (1 = one URL), connections, wrk
# threads, wrk script, and the target the ratio column divides by; and a scenario's own corpus dir
# (relative to bench/peers/ unless absolute; every target is started with it as $CORPUS) with the
# script that makes it from the main corpus (run as `SCRIPT CORPUS DIR`, idempotent).
declare -A S_SPAN S_CONC S_THREADS S_SCRIPT S_REF S_CORPUS S_CORPUS_MAKE
S_FILE[jpeg400]=kleiber-6028x3391.jpg;  S_W[jpeg400]=400; S_Q[jpeg400]=80; S_H[jpeg400]=0
S_ACCEPT[jpeg400]='image/jpeg,*/*;q=0.8'; S_CT[jpeg400]=image/jpeg
S_DESC[jpeg400]='6028x3391 JPEG (20 MP) -> 400w JPEG q80'

S_FILE[webp400]=kleiber-6028x3391.jpg;  S_W[webp400]=400; S_Q[webp400]=80; S_H[webp400]=0
S_ACCEPT[webp400]='image/webp,*/*;q=0.8'; S_CT[webp400]=image/webp
S_DESC[webp400]='same -> 400w WebP q80'

S_FILE[avif400]=kleiber-6028x3391.jpg;  S_W[avif400]=400; S_Q[avif400]=60; S_H[avif400]=0
S_ACCEPT[avif400]='image/avif,image/webp,*/*;q=0.8'; S_CT[avif400]=image/avif
S_DESC[avif400]='same -> 400w AVIF q60 (each encoder at its default speed)'

S_FILE[alpha-webp300]=dice-800x600-alpha.png; S_W[alpha-webp300]=300; S_Q[alpha-webp300]=80; S_H[alpha-webp300]=0
S_ACCEPT[alpha-webp300]='image/webp,*/*;q=0.8'; S_CT[alpha-webp300]=image/webp
S_DESC[alpha-webp300]='800x600 RGBA PNG -> 300w WebP q80 (alpha kept)'

S_FILE[cover150]=rocket-640x427-adobergb.jpg; S_W[cover150]=150; S_Q[cover150]=80; S_H[cover150]=150
S_ACCEPT[cover150]='image/jpeg,*/*;q=0.8'; S_CT[cover150]=image/jpeg
S_DESC[cover150]='640x427 JPEG (Adobe RGB ICC) -> 150x150 cover crop JPEG q80'

S_FILE[fit512]=path-2560x1600-icc.jpg; S_W[fit512]=512; S_Q[fit512]=80; S_H[fit512]=512
S_ACCEPT[fit512]='image/jpeg,*/*;q=0.8'; S_CT[fit512]=image/jpeg
S_DESC[fit512]='2560x1600 JPEG (sRGB ICC) -> fit inside 512x512, JPEG q80 (imgproxy benchmark task)'

# A progressive JPEG: shrink-on-load saves little (every scan is entropy-decoded into a
# full-size coefficient buffer), so this is the honest worst case of a large JPEG source.
S_FILE[prog400]=seeding-5312x2988-progressive.jpg; S_W[prog400]=400; S_Q[prog400]=80; S_H[prog400]=0
S_ACCEPT[prog400]='image/jpeg,*/*;q=0.8'; S_CT[prog400]=image/jpeg
S_DESC[prog400]='5312x2988 progressive JPEG (16 MP) -> 400w JPEG q80'

# One URL over and over at 64 connections: Refract answers from its variant cache; nginx serves
# the same bytes as a static file (its start script asks Refract for them first).
S_FILE[hot]=rocket-640x427-adobergb.jpg; S_W[hot]=400; S_Q[hot]=80; S_H[hot]=0
S_ACCEPT[hot]='image/jpeg'; S_CT[hot]=image/jpeg
S_SPAN[hot]=1; S_CONC[hot]=64; S_SCRIPT[hot]=hot.lua; S_REF[hot]=nginx
S_DESC[hot]='one hot URL (400w JPEG variant, cache hits) at 64 connections vs nginx static'

# The transforms issue: a content-aware cover crop (Refract's gravity=auto vs sharp's
# position=attention through ipx), and an animated GIF kept animated as WebP.
S_FILE[smart300]=path-2560x1600-icc.jpg; S_W[smart300]=300; S_Q[smart300]=80; S_H[smart300]=300
S_ACCEPT[smart300]='image/jpeg,*/*;q=0.8'; S_CT[smart300]=image/jpeg
S_DESC[smart300]='2560x1600 JPEG -> 300x300 smart cover crop (gravity=auto / position=attention) JPEG q80'

S_FILE[anim200]=horses-402x280-anim.gif; S_W[anim200]=200; S_Q[anim200]=80; S_H[anim200]=0
S_ACCEPT[anim200]='image/webp,*/*;q=0.8'; S_CT[anim200]=image/webp
S_DESC[anim200]='402x280 animated GIF -> 200w animated WebP q80 (every frame)'

# The srcset case: SRCSET_SOURCES (50) distinct 20 MP JPEGs (the same pixels as jpeg400's source, each
# file made distinct by a COM segment: peers/srcset-corpus.sh, kept in .peers/corpus-srcset/, since
# the shared corpus is read-only), each asked at the SRCSET_WIDTHS (6) widths in a burst: one wrk
# thread, 6 connections, one shared sequence (srcset.lua), cycling through the sources. No result
# cache can answer (every (source, width) is new within a cycle of 300 requests; the `refract`
# target has its variant tiers off anyway). What it measures is a source decoded once for its
# widths: Refract's decoded-source cache, `[cache.decoded]`, must be ON, and the `refract` target
# leaves it at its defaults (max_bytes 128 MiB, ttl_ms 10000, share_width 1920). With share_width
# 1920 every width shares one 1/2 decode (3014x1696, 15 MB of RGB): 1 decode per source instead of 6,
# so 128 MiB holds several bursts and a later cycle (300 requests on) cannot find an earlier one's
# decode. peers.sh reads Refract's decoded-cache hits/misses of the measured phase from /metrics and
# the report prints decodes per source (1 = every burst shared its decode). `refract` is the same
# with the cache off: 6 decodes per source, each at its own scale (1/8 for 320..640, 1/4 for 960
# and 1280, 1/2 for 1920: the largest scale that covers the output, as sharp's); `refract-decoded`
# has it on. With SRCSET_WIDTHS=400 every request is a lone output of a new source: what sharing
# the 1/2 scale costs when no other width follows.
SRCSET_SOURCES="${SRCSET_SOURCES:-50}"; SRCSET_WIDTHS="${SRCSET_WIDTHS:-320 480 640 960 1280 1920}"
export SRCSET_SOURCES SRCSET_WIDTHS
S_FILE[srcset]='srcset/{src}.jpg'; S_W[srcset]=640; S_Q[srcset]=80; S_H[srcset]=0
S_ACCEPT[srcset]='image/jpeg,*/*;q=0.8'; S_CT[srcset]=image/jpeg
S_SCRIPT[srcset]=srcset.lua; S_CONC[srcset]=6; S_THREADS[srcset]=1
S_CORPUS[srcset]=.peers/corpus-srcset; S_CORPUS_MAKE[srcset]=peers/srcset-corpus.sh
S_DESC[srcset]="$SRCSET_SOURCES distinct 6028x3391 JPEGs, each at widths ${SRCSET_WIDTHS// /,} in a burst (c=6), JPEG q80"

# Inputs people have: a phone-sized (4032x2268) still as AVIF and as HEIC (made once from jpeg400's
# picture by peers/codec-corpus.sh with libheif's heif-enc: libaom and x265), to a 400 px JPEG. Neither
# format has a shrink-on-load: every request decodes all 9 MP. sharp's prebuilt libvips reads AVIF
# but not HEIC (no HEVC decoder in it), so ipx answers heicin400 with an error: the report shows it.
for s in avifin400 heicin400; do
  S_W[$s]=400; S_Q[$s]=80; S_H[$s]=0; S_ACCEPT[$s]='image/jpeg,*/*;q=0.8'; S_CT[$s]=image/jpeg
  S_CORPUS[$s]=.peers/corpus-codecs; S_CORPUS_MAKE[$s]=peers/codec-corpus.sh
done
S_FILE[avifin400]=codecs/kleiber-4032.avif; S_DESC[avifin400]='4032x2268 AVIF (9 MP, 8-bit 4:2:0) -> 400w JPEG q80'
S_FILE[heicin400]=codecs/kleiber-4032.heic; S_DESC[heicin400]='4032x2268 HEIC (9 MP, HEVC 4:2:0) -> 400w JPEG q80'

declare -A T_PORT T_START URL

# (a) ipx 3 (unjs; sharp/libvips), its defaults: progressive JPEG, no EXIF auto-orient.
T_PORT[ipx]=8801
T_START[ipx]='node peers/ipx-server.cjs "$CORPUS" "$PORT"'
URL[ipx,jpeg400]='/w_{w},f_jpeg,q_{q}/{file}'
URL[ipx,webp400]='/w_{w},f_webp,q_{q}/{file}'
URL[ipx,avif400]='/w_{w},f_avif,q_{q}/{file}'
URL[ipx,alpha-webp300]='/w_{w},f_webp,q_{q}/{file}'
URL[ipx,cover150]='/s_{w}x{h},fit_cover,f_jpeg,q_{q}/{file}'
URL[ipx,fit512]='/s_{w}x{h},fit_inside,f_jpeg,q_{q}/{file}'
URL[ipx,prog400]='/w_{w},f_jpeg,q_{q}/{file}'
URL[ipx,smart300]='/s_{w}x{h},fit_cover,pos_attention,f_jpeg,q_{q}/{file}'
URL[ipx,anim200]='/w_{w},f_webp,animated_true,q_{q}/{file}'
URL[ipx,srcset]='/w_{w},f_jpeg,q_{q}/{file}'
URL[ipx,avifin400]='/w_{w},f_jpeg,q_{q}/{file}'
URL[ipx,heicin400]='/w_{w},f_jpeg,q_{q}/{file}'

# (b) thumbor 7 (Pillow), file loader, no storage, no result storage, 2 processes (one per core).
T_PORT[thumbor]=8802
T_START[thumbor]='env THUMBOR_CORPUS="$CORPUS" .peers/thumbor/bin/thumbor --ip 127.0.0.1 --port "$PORT" --conf peers/thumbor.conf --processes 2 -l warning'
URL[thumbor,jpeg400]='/unsafe/{w}x0/filters:format(jpeg):quality({q})/{file}'
URL[thumbor,webp400]='/unsafe/{w}x0/filters:format(webp):quality({q})/{file}'
URL[thumbor,avif400]='/unsafe/{w}x0/filters:format(avif):quality({q})/{file}'
URL[thumbor,alpha-webp300]='/unsafe/{w}x0/filters:format(webp):quality({q})/{file}'
URL[thumbor,cover150]='/unsafe/{w}x{h}/filters:format(jpeg):quality({q})/{file}'
URL[thumbor,fit512]='/unsafe/fit-in/{w}x{h}/filters:format(jpeg):quality({q})/{file}'
URL[thumbor,prog400]='/unsafe/{w}x0/filters:format(jpeg):quality({q})/{file}'
URL[thumbor,srcset]='/unsafe/{w}x0/filters:format(jpeg):quality({q})/{file}'

# (c) sharp called directly: the libvips fast path with no framework and no cache (Refract's URL form).
T_PORT[sharp]=8803
T_START[sharp]='node peers/sharp-server.cjs "$CORPUS" "$PORT"'
URL[sharp,jpeg400]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[sharp,webp400]='/img/{file}?w={w}&q={q}&fm=webp'
URL[sharp,avif400]='/img/{file}?w={w}&q={q}&fm=avif'
URL[sharp,alpha-webp300]='/img/{file}?w={w}&q={q}&fm=webp'
URL[sharp,cover150]='/img/{file}?w={w}&h={h}&fit=cover&q={q}&fm=jpeg'
URL[sharp,fit512]='/img/{file}?w={w}&h={h}&fit=inside&q={q}&fm=jpeg'
URL[sharp,prog400]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[sharp,srcset]='/img/{file}?w={w}&q={q}&fm=jpeg'

# (d) pyvips with Debian's libvips 8.14 (optional: TARGETS="... pyvips").
T_PORT[pyvips]=8804
T_START[pyvips]='.peers/py/bin/python peers/pyvips-server.py "$CORPUS" "$PORT"'
URL[pyvips,jpeg400]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[pyvips,webp400]='/img/{file}?w={w}&q={q}&fm=webp'
URL[pyvips,avif400]='/img/{file}?w={w}&q={q}&fm=avif'
URL[pyvips,alpha-webp300]='/img/{file}?w={w}&q={q}&fm=webp'
URL[pyvips,cover150]='/img/{file}?w={w}&h={h}&fit=cover&q={q}&fm=jpeg'

# (e) Refract: the release build of this repository, both variant cache tiers off (every request is a
# transform) and the decoded-source cache off too (every request decodes its source: the scenarios
# vary the width of one source, which that cache would otherwise answer), data in a throwaway
# folder, the corpus as its storage root. No config file (none is found from bench/peers/), so
# everything else is at its default.
T_PORT[refract]=8805
T_START[refract]='env REFRACT__CACHE__DECODED__MAX_BYTES=0 REFRACT__CACHE__MEMORY_BYTES=0 REFRACT__CACHE__PERSISTENT__MAX_BYTES=0 REFRACT__SERVER__LOG=warn ../../target/release/refract --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract,jpeg400]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[refract,webp400]='/img/{file}?w={w}&q={q}&fm=webp'
URL[refract,avif400]='/img/{file}?w={w}&q={q}&fm=avif'
URL[refract,alpha-webp300]='/img/{file}?w={w}&q={q}&fm=webp'
URL[refract,cover150]='/img/{file}?w={w}&h={h}&fit=cover&q={q}&fm=jpeg'
URL[refract,fit512]='/img/{file}?w={w}&h={h}&fit=inside&q={q}&fm=jpeg'
URL[refract,prog400]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[refract,smart300]='/img/{file}?w={w}&h={h}&fit=cover&g=auto&q={q}&fm=jpeg'
URL[refract,anim200]='/img/{file}?w={w}&q={q}&fm=webp'
URL[refract,srcset]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[refract,avifin400]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[refract,heicin400]='/img/{file}?w={w}&q={q}&fm=jpeg'

# (e1) The same with the decoded-source cache at its default (on: 128 MiB, 10 s, share_width 1920):
# Refract as deployed for new images, in the srcset scenario (and jpeg400, where every request
# is a new width of one source: an upper bound of what the cache gives).
T_PORT[refract-decoded]=8810
T_START[refract-decoded]='env REFRACT__CACHE__MEMORY_BYTES=0 REFRACT__CACHE__PERSISTENT__MAX_BYTES=0 REFRACT__SERVER__LOG=warn ../../target/release/refract --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract-decoded,srcset]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[refract-decoded,jpeg400]='/img/{file}?w={w}&q={q}&fm=jpeg'

# (e2) Refract with AVIF at speed 6 (libaom cpu-used 6 since issue 20, the request path's
# default; rav1e speed 6 before). For the quality step: TARGETS="refract refract-avif6 ipx" SCENARIOS=avif400 --quality-only
T_PORT[refract-avif6]=8808
T_START[refract-avif6]='env REFRACT__FORMATS__AVIF_SPEED=6 REFRACT__LIMITS__AVIF_BUDGET_MS=0 REFRACT__CACHE__MEMORY_BYTES=0 REFRACT__CACHE__PERSISTENT__MAX_BYTES=0 REFRACT__SERVER__LOG=warn ../../target/release/refract --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract-avif6,avif400]='/img/{file}?w={w}&q={q}&fm=avif'

# (e3) Refract with AVIF by libaom at cpu-used 7: the bytes the background encode stores by default
# (formats.avif_background_encoder = "aom", avif_background_speed = 7), made on the request path
# here so the quality sweep can ask for them directly.
T_PORT[refract-aom]=8811
T_START[refract-aom]='env REFRACT__FORMATS__AVIF_ENCODER=aom REFRACT__FORMATS__AVIF_SPEED=${AOM_SPEED:-7} REFRACT__LIMITS__AVIF_BUDGET_MS=0 REFRACT__CACHE__MEMORY_BYTES=0 REFRACT__CACHE__PERSISTENT__MAX_BYTES=0 REFRACT__SERVER__LOG=warn ../../target/release/refract --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract-aom,avif400]='/img/{file}?w={w}&q={q}&fm=avif'

# (e4) Refract with the in-request AVIF encoder of before issue 20 (rav1e at speed 10), for the
# p99 A/B of the request path: TARGETS="refract refract-rav1e ipx" SCENARIOS=avif400.
T_PORT[refract-rav1e]=8815
T_START[refract-rav1e]='env REFRACT__FORMATS__AVIF_ENCODER=rav1e REFRACT__FORMATS__AVIF_SPEED=10 REFRACT__CACHE__DECODED__MAX_BYTES=0 REFRACT__CACHE__MEMORY_BYTES=0 REFRACT__CACHE__PERSISTENT__MAX_BYTES=0 REFRACT__SERVER__LOG=warn ../../target/release/refract --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract-rav1e,avif400]='/img/{file}?w={w}&q={q}&fm=avif'

# (f) Refract as deployed: variant cache on (the default 256 MiB). Only the hot scenario uses it.
T_PORT[refract-cached]=8806
T_START[refract-cached]='env REFRACT__SERVER__LOG=warn ../../target/release/refract --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract-cached,hot]='/img/{file}?w={w}&q={q}&fm=jpeg'

# (f2) The same at the default log level (`info`: one line per request).
T_PORT[refract-cached-info]=8809
T_START[refract-cached-info]='../../target/release/refract --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract-cached-info,hot]='/img/{file}?w={w}&q={q}&fm=jpeg'

# (g) nginx (Debian's nginx-light) serving Refract's answer for the hot URL as a static file.
T_PORT[nginx]=8807
T_START[nginx]='peers/nginx-static.sh "$CORPUS" "$PORT" "/img/rocket-640x427-adobergb.jpg?w=400&q=80&fm=jpeg"'
URL[nginx,hot]='/hot.jpg'

DEFAULT_TARGETS=(refract ipx thumbor sharp refract-cached nginx)

# (e4) For A/B runs of this issue (not in the default list): the build before issue 20's codecs
# (REFRACT_BEFORE, a binary you keep), trellis off, and the decoded-source cache sharing one
# decode scale only up to 640 px (the default before it was 1920).
T_PORT[refract-before]=8812
T_START[refract-before]='env REFRACT__CACHE__MEMORY_BYTES=0 REFRACT__CACHE__PERSISTENT__MAX_BYTES=0 REFRACT__SERVER__LOG=warn "${REFRACT_BEFORE:?set REFRACT_BEFORE to a binary}" --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract-before,jpeg400]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[refract-before,webp400]='/img/{file}?w={w}&q={q}&fm=webp'
T_PORT[refract-notrellis]=8813
T_START[refract-notrellis]='env REFRACT__FORMATS__JPEG_TRELLIS_MAX_PIXELS=0 REFRACT__CACHE__DECODED__MAX_BYTES=0 REFRACT__CACHE__MEMORY_BYTES=0 REFRACT__CACHE__PERSISTENT__MAX_BYTES=0 REFRACT__SERVER__LOG=warn ../../target/release/refract --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract-notrellis,jpeg400]='/img/{file}?w={w}&q={q}&fm=jpeg'
URL[refract-notrellis,srcset]='/img/{file}?w={w}&q={q}&fm=jpeg'
T_PORT[refract-share640]=8814
T_START[refract-share640]='env REFRACT__CACHE__DECODED__SHARE_WIDTH=640 REFRACT__CACHE__MEMORY_BYTES=0 REFRACT__CACHE__PERSISTENT__MAX_BYTES=0 REFRACT__SERVER__LOG=warn ../../target/release/refract --storage-root "$CORPUS" --data-dir "$(mktemp -d)" --listen "127.0.0.1:$PORT"'
URL[refract-share640,srcset]='/img/{file}?w={w}&q={q}&fm=jpeg'
