//! Generation info of AI-generated images, read as Infinite Image Browsing reads it: the PNG text
//! chunks `parameters` (Stable Diffusion web UIs), `prompt` and `workflow` (ComfyUI), and for
//! JPEG/WebP/HEIC the EXIF `UserComment` (web UIs store `parameters` there).

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
        ImageFormat::Jpeg | ImageFormat::Webp | ImageFormat::Heic => {
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

/// Generation info parsed into fields (the documented subset; see `docs/library.md`):
/// Stable Diffusion web UI `parameters` text (AUTOMATIC1111, Forge, Fooocus in A1111 mode,
/// NovelAI exports through the web UI) and ComfyUI `prompt` graphs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Parsed {
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    pub steps: Option<u32>,
    pub sampler: Option<String>,
    pub cfg_scale: Option<f64>,
    pub seed: Option<String>,
    /// `WxH`.
    pub size: Option<String>,
    pub model: Option<String>,
    pub model_hash: Option<String>,
    /// LoRA names, lower-cased, each once.
    pub loras: Vec<String>,
}

impl Parsed {
    fn add_lora(&mut self, name: &str) {
        let n = name.trim().trim_matches('"').to_lowercase();
        let n = n
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&n)
            .trim_end_matches(".safetensors")
            .trim_end_matches(".pt")
            .to_string();
        if !n.is_empty() && !self.loras.contains(&n) {
            self.loras.push(n);
        }
    }
}

/// Parse what `read` found (`None` when nothing is recognised).
pub fn parse(info: &Map<String, Value>) -> Option<Parsed> {
    let p = if let Some(Value::String(t)) = info.get("parameters") {
        parse_a1111(t)
    } else if let Some(Value::String(g)) = info.get("prompt") {
        parse_comfy(&serde_json::from_str(g).ok()?)?
    } else {
        return None;
    };
    (p != Parsed::default()).then_some(p)
}

/// `prompt\nNegative prompt: …\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size:
/// 512x512, Model hash: …, Model: …, Lora hashes: "a: h, b: h", …`; `<lora:name:w>` in the
/// prompt.
fn parse_a1111(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let (head, settings) = match text.rfind("\nSteps: ") {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None if text.starts_with("Steps: ") => ("", Some(text)),
        None => (text, None),
    };
    let (prompt, negative) = match head.find("Negative prompt:") {
        Some(i) => (
            &head[..i],
            Some(head[i + "Negative prompt:".len()..].trim()),
        ),
        None => (head, None),
    };
    let prompt = prompt.trim();
    if !prompt.is_empty() {
        p.prompt = Some(prompt.to_string());
    }
    p.negative_prompt = negative.filter(|n| !n.is_empty()).map(str::to_string);
    for (i, _) in prompt.match_indices("<lora:") {
        let rest = &prompt[i + 6..];
        if let Some(end) = rest.find('>') {
            let name = rest[..end].split(':').next().unwrap_or("");
            p.add_lora(name);
        }
    }
    if let Some(s) = settings {
        for (k, v) in settings_pairs(s.lines().next().unwrap_or("")) {
            match k.as_str() {
                "Steps" => p.steps = v.parse().ok(),
                "Sampler" => p.sampler = Some(v),
                "CFG scale" => p.cfg_scale = v.parse().ok(),
                "Seed" => p.seed = Some(v),
                "Size" => p.size = Some(v),
                "Model hash" => p.model_hash = Some(v),
                "Model" => p.model = Some(v),
                "Lora hashes" => {
                    for part in v.split(',') {
                        p.add_lora(part.split(':').next().unwrap_or(""));
                    }
                }
                _ => {}
            }
        }
    }
    p
}

/// `Key: value, Key: "quoted, value", …` → pairs.
fn settings_pairs(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let Some(colon) = rest.find(": ") else { break };
        let key = rest[..colon].trim().to_string();
        rest = &rest[colon + 2..];
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            value = q[..end].to_string();
            rest = q.get(end + 1..).unwrap_or("");
            rest = rest.trim_start_matches(',').trim_start();
        } else {
            let end = rest.find(", ").unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = rest.get(end + 2..).unwrap_or("");
        }
        out.push((key, value));
    }
    out
}

/// A ComfyUI API graph (`{"id": {"class_type", "inputs"}}`): the first sampler's seed, steps,
/// CFG, sampler and its positive/negative text encoders; checkpoint and LoRA loaders; the empty
/// latent's size.
fn parse_comfy(graph: &Value) -> Option<Parsed> {
    let nodes = graph.as_object()?;
    let mut p = Parsed::default();
    let node = |id: &Value| -> Option<&Value> {
        let key = match id {
            Value::Array(a) => a.first()?.clone(),
            other => other.clone(),
        };
        nodes.get(
            key.as_str()
                .map_or_else(|| key.to_string(), str::to_string)
                .as_str(),
        )
    };
    // The text reachable from a sampler input (through reroutes and conditioning nodes).
    fn text_of<'a>(
        v: &'a Value,
        node: &dyn Fn(&Value) -> Option<&'a Value>,
        depth: u8,
    ) -> Option<String> {
        let n = node(v)?;
        let inputs = n.get("inputs")?;
        if let Some(Value::String(t)) = inputs.get("text").or_else(|| inputs.get("text_g")) {
            return Some(t.clone());
        }
        if depth == 0 {
            return None;
        }
        inputs
            .as_object()?
            .values()
            .filter(|x| x.is_array())
            .find_map(|x| text_of(x, node, depth - 1))
    }
    let mut ids: Vec<&String> = nodes.keys().collect();
    ids.sort_by_key(|k| k.parse::<u64>().unwrap_or(u64::MAX));
    for id in ids {
        let n = &nodes[id.as_str()];
        let class = n.get("class_type").and_then(Value::as_str).unwrap_or("");
        static NULL: Value = Value::Null;
        let inputs = n.get("inputs").unwrap_or(&NULL);
        let s = |k: &str| inputs.get(k).and_then(Value::as_str).map(str::to_string);
        match class {
            c if c.starts_with("KSampler") && p.sampler.is_none() => {
                p.seed = inputs
                    .get("seed")
                    .or_else(|| inputs.get("noise_seed"))
                    .filter(|v| v.is_number())
                    .map(Value::to_string);
                p.steps = inputs
                    .get("steps")
                    .and_then(Value::as_u64)
                    .map(|v| v as u32);
                p.cfg_scale = inputs.get("cfg").and_then(Value::as_f64);
                p.sampler = s("sampler_name");
                p.prompt = inputs.get("positive").and_then(|v| text_of(v, &node, 4));
                p.negative_prompt = inputs.get("negative").and_then(|v| text_of(v, &node, 4));
            }
            c if c.starts_with("CheckpointLoader") && p.model.is_none() => {
                p.model = s("ckpt_name").map(|m| {
                    let base = m.rsplit(['/', '\\']).next().unwrap_or(&m).to_string();
                    base.trim_end_matches(".safetensors")
                        .trim_end_matches(".ckpt")
                        .to_string()
                });
            }
            c if c.starts_with("LoraLoader") => {
                if let Some(l) = s("lora_name") {
                    p.add_lora(&l);
                }
            }
            "EmptyLatentImage" | "EmptySD3LatentImage" if p.size.is_none() => {
                if let (Some(w), Some(h)) = (
                    inputs.get("width").and_then(Value::as_u64),
                    inputs.get("height").and_then(Value::as_u64),
                ) {
                    p.size = Some(format!("{w}x{h}"));
                }
            }
            _ => {}
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a1111_parameters() {
        let text = "masterpiece, a cat <lora:catStyle_v2:0.8>, <lora:detail:1>\n\
            Negative prompt: blurry, lowres\n\
            Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 1234567890, Size: 512x768, \
            Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: \"catStyle_v2: abc, detail: def\", Version: v1.7.0";
        let mut m = Map::new();
        m.insert("parameters".into(), Value::String(text.into()));
        let p = parse(&m).unwrap();
        assert_eq!(
            p.prompt.as_deref(),
            Some("masterpiece, a cat <lora:catStyle_v2:0.8>, <lora:detail:1>")
        );
        assert_eq!(p.negative_prompt.as_deref(), Some("blurry, lowres"));
        assert_eq!(p.steps, Some(28));
        assert_eq!(p.sampler.as_deref(), Some("DPM++ 2M Karras"));
        assert_eq!(p.cfg_scale, Some(6.5));
        assert_eq!(p.seed.as_deref(), Some("1234567890"));
        assert_eq!(p.size.as_deref(), Some("512x768"));
        assert_eq!(p.model.as_deref(), Some("v1-5-pruned-emaonly"));
        assert_eq!(p.model_hash.as_deref(), Some("6ce0161689"));
        assert_eq!(p.loras, vec!["catstyle_v2", "detail"]);
    }

    #[test]
    fn comfy_graph() {
        let g = serde_json::json!({
            "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "cfg": 8.0,
                  "sampler_name": "euler", "positive": ["6", 0], "negative": ["7", 0],
                  "model": ["10", 0]}},
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl/juggernaut.safetensors"}},
            "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["10", 1]}},
            "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly", "clip": ["10", 1]}},
            "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "Fox-Style.safetensors", "model": ["4", 0]}}
        });
        let mut m = Map::new();
        m.insert("prompt".into(), Value::String(g.to_string()));
        let p = parse(&m).unwrap();
        assert_eq!(p.prompt.as_deref(), Some("a red fox"));
        assert_eq!(p.negative_prompt.as_deref(), Some("ugly"));
        assert_eq!((p.steps, p.cfg_scale), (Some(20), Some(8.0)));
        assert_eq!(p.seed.as_deref(), Some("42"));
        assert_eq!(p.sampler.as_deref(), Some("euler"));
        assert_eq!(p.model.as_deref(), Some("juggernaut"));
        assert_eq!(p.size.as_deref(), Some("1024x768"));
        assert_eq!(p.loras, vec!["fox-style"]);
    }

    #[test]
    fn nothing_recognised() {
        let mut m = Map::new();
        m.insert("prompt".into(), Value::String("not json".into()));
        assert_eq!(parse(&m), None);
        m.clear();
        m.insert("parameters".into(), Value::String("   ".into()));
        assert_eq!(parse(&m), None);
    }
}
