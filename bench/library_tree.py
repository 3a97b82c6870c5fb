#!/usr/bin/env python3
"""Generate a library tree for bench/library.sh: N images (default 10,000) made from the shared
corpus, 512-1024 px on the long side, half PNG with an A1111 `parameters` text chunk or a
ComfyUI `prompt` graph, half JPEG with the same text in EXIF UserComment (as the web UIs write
it), spread over nested folders (`<model>/<yyyy-mm-dd>/<batch>/00042-<seed>.png`).

    python3 bench/library_tree.py OUT_DIR [N]      (needs Pillow)
"""
import io, json, os, random, struct, sys, zlib
from PIL import Image

CORPUS = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'corpus')
SOURCES = ['kleiber-6028x3391.jpg', 'path-2560x1600-icc.jpg', 'seeding-5312x2988-progressive.jpg',
           'altai-5120x2880.png', 'coffee-600x400.png', 'dice-800x600-alpha.png',
           'rocket-640x427-adobergb.jpg', 'astronaut-512x512.png', 'spacefun-2048x1542-palette.png']
MODELS = ['dreamshaper_8', 'juggernautXL_v9', 'realisticVision_v51', 'animagine-xl-3.1']
SAMPLERS = ['Euler a', 'DPM++ 2M Karras', 'DPM++ SDE Karras', 'UniPC']
WORDS = ('castle fox mountain river neon city portrait forest dragon ship astronaut '
         'sunset cathedral robot garden snow desert ocean library market').split()

def a1111(rng, seed, model, w, h):
    words = ' '.join(rng.sample(WORDS, 6))
    lora = f' <lora:{rng.choice(WORDS)}Style:0.{rng.randint(3, 9)}>' if rng.random() < 0.4 else ''
    return (f'masterpiece, best quality, {words}{lora}\nNegative prompt: lowres, blurry, bad hands\n'
            f'Steps: {rng.randint(20, 40)}, Sampler: {rng.choice(SAMPLERS)}, CFG scale: {rng.choice([5, 6, 7, 7.5])}, '
            f'Seed: {seed}, Size: {w}x{h}, Model hash: {rng.getrandbits(40):010x}, Model: {model}, Version: v1.9.4')

def comfy(rng, seed, model, w, h):
    return json.dumps({
        '3': {'class_type': 'KSampler', 'inputs': {'seed': seed, 'steps': 25, 'cfg': 7.0,
              'sampler_name': 'euler', 'positive': ['6', 0], 'negative': ['7', 0], 'model': ['4', 0]}},
        '4': {'class_type': 'CheckpointLoaderSimple', 'inputs': {'ckpt_name': model + '.safetensors'}},
        '5': {'class_type': 'EmptyLatentImage', 'inputs': {'width': w, 'height': h, 'batch_size': 1}},
        '6': {'class_type': 'CLIPTextEncode', 'inputs': {'text': ' '.join(rng.sample(WORDS, 5))}},
        '7': {'class_type': 'CLIPTextEncode', 'inputs': {'text': 'lowres'}},
    })

def with_text(png, keyword, text):
    """The PNG with a tEXt chunk added after IHDR (pixels untouched)."""
    data = keyword.encode('latin-1') + b'\0' + text.encode('latin-1', 'replace')
    chunk = struct.pack('>I', len(data)) + b'tEXt' + data + struct.pack('>I', zlib.crc32(b'tEXt' + data))
    end = 8 + 8 + 13 + 4
    return png[:end] + chunk + png[end:]

def user_comment(text):
    # EXIF UserComment: an 8-byte character code, then the text (web UIs use UNICODE, UTF-16BE).
    return b'UNICODE\x00' + text.encode('utf-16-be')

def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rng = random.Random(1)
    # Base images: every source at a few sizes (512-1024 on the long side).
    bases = []
    for name in SOURCES:
        src = Image.open(os.path.join(CORPUS, name))
        src = src.convert('RGBA' if 'alpha' in name else 'RGB')
        for side in (512, 640, 768, 896, 1024):
            im = src.copy()
            im.thumbnail((side, side), Image.LANCZOS)
            bases.append(im)
    # Encoded once per (base, kind); each file differs by its metadata only (what the
    # indexer must read, and the bytes' hash).
    png_pixels, jpg_pixels = {}, {}
    for i in range(n):
        b = i % len(bases)
        im = bases[b]
        w, h = im.size
        seed = rng.getrandbits(32)
        model = MODELS[i % len(MODELS)]
        folder = os.path.join(out, model, f'2026-{1 + i % 12:02d}-{1 + i % 28:02d}', f'batch{i % 7}')
        os.makedirs(folder, exist_ok=True)
        if i % 2 == 0:
            if i % 4 == 0:
                key, text = 'parameters', a1111(rng, seed, model, w, h)
            else:
                key, text = 'prompt', comfy(rng, seed, model, w, h)
            path = os.path.join(folder, f'{i:05d}-{seed}.png')
            if b not in png_pixels:
                buf = io.BytesIO(); im.save(buf, 'PNG'); png_pixels[b] = buf.getvalue()
            with open(path, 'wb') as f:
                f.write(with_text(png_pixels[b], key, text))
        else:
            exif = Image.Exif()
            exif.get_ifd(0x8769)[0x9286] = user_comment(a1111(rng, seed, model, w, h))
            path = os.path.join(folder, f'{i:05d}-{seed}.jpg')
            im.convert('RGB').save(path, 'JPEG', quality=88, exif=exif.tobytes())
        if (i + 1) % 1000 == 0:
            print(f'{i + 1} files', file=sys.stderr)

if __name__ == '__main__':
    main()
