//! Generation info of AI-generated images, read as Infinite Image Browsing reads it: the PNG text
//! chunks `parameters` (Stable Diffusion web UIs), `prompt` and `workflow` (ComfyUI), and for
//! JPEG/WebP the EXIF `UserComment` (web UIs store `parameters` there).

use crate::pipeline::format::ImageFormat;
use serde_json::{Map, Value};

const KEYS: &[&str] = &["parameters", "prompt", "workflow"];
/// Text longer than this is cut (a ComfyUI workflow can be large; this bounds the row).
const MAX_TEXT: usize = 256 << 10;

/// `{"parameters": "...", "prompt": "...", "workflow": "..."}` with the keys found, or `None`.
pub fn read(bytes: &[u8], format: ImageFormat) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    match format {
        ImageFormat::Png => {
            for (k, v) in png_text(bytes) {
                if KEYS.contains(&k.as_str()) && !out.contains_key(&k) {
                    out.insert(k, Value::String(cut(v)));
                }
            }
        }
        ImageFormat::Jpeg | ImageFormat::Webp => {
            if let Some(c) = super::exif::user_comment(bytes) {
                out.insert("parameters".into(), Value::String(cut(c)));
            }
        }
        _ => {}
    }
    (!out.is_empty()).then_some(out)
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Every text chunk (tEXt, zTXt, iTXt) of a PNG as `(keyword, text)`.
fn png_text(bytes: &[u8]) -> Vec<(String, String)> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_ignore_text_chunk(false);
    let Ok(reader) = dec.read_info() else {
        return Vec::new();
    };
    let info = reader.info();
    let mut out: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect();
    for z in &info.compressed_latin1_text {
        if let Ok(t) = z.get_text() {
            out.push((z.keyword.clone(), t));
        }
    }
    for i in &info.utf8_text {
        if let Ok(t) = i.get_text() {
            out.push((i.keyword.clone(), t));
        }
    }
    out
}
