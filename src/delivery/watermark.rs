//! The `[watermarks.NAME]` sections: images from storage that `wm=NAME` places on outputs.
//! Loaded and decoded once at start (a missing or undecodable watermark stops the server with
//! its name); a request can only name one, never give a URL.
//!
//! Invariant: the watermarks' bytes and settings are part of every cache key (through
//! `fingerprint`), so changing one (and restarting) never serves stale variants.

use crate::pipeline::transform::{parse_gravity_point, Gravity};
use crate::pipeline::watermark::Mark;
use crate::pipeline::{self, PixelLimits};
use crate::storage::origin::Origin;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One `[watermarks.NAME]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkConfig {
    /// Storage key of the image (PNG with alpha works best).
    pub key: String,
    /// A gravity: `southeast` (default), `north`, `center`, `0.9x0.1`, ...
    #[serde(default = "default_position")]
    pub position: String,
    /// Margin from the output's edges, pixels.
    #[serde(default = "default_margin")]
    pub margin: u32,
    /// 0..=1.
    #[serde(default = "default_opacity")]
    pub opacity: f32,
    /// Width as a share of the output's width, 0..=1.
    #[serde(default = "default_scale")]
    pub scale: f32,
}

fn default_position() -> String {
    "southeast".into()
}
fn default_margin() -> u32 {
    16
}
fn default_opacity() -> f32 {
    0.6
}
fn default_scale() -> f32 {
    0.25
}

/// The `[watermarks]` section.
pub type WatermarksConfig = BTreeMap<String, WatermarkConfig>;

/// Check the section at start (names, positions, ranges); the message names the key.
pub fn validate(cfg: &WatermarksConfig) -> Result<(), String> {
    for (name, w) in cfg {
        let ok_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok_name {
            return Err(format!(
                "watermarks.{name}: a name is 1-64 of a-z, 0-9, '-', '_'"
            ));
        }
        position(&w.position).map_err(|e| format!("watermarks.{name}.position: {e}"))?;
        let in_range = (0.0..=1.0).contains(&w.opacity) && w.scale > 0.0 && w.scale <= 1.0;
        if !in_range {
            return Err(format!(
                "watermarks.{name}: opacity must be in 0..=1 and scale in (0, 1]"
            ));
        }
    }
    Ok(())
}

fn position(p: &str) -> Result<(u16, u16), String> {
    match parse_gravity_point(p).map_err(|e| e.to_string())? {
        Gravity::Point { x, y } => Ok((x, y)),
        Gravity::Centre => Ok((5000, 5000)),
        Gravity::Auto => Err("auto is not a position".into()),
    }
}

/// The loaded watermarks.
#[derive(Debug, Clone, Default)]
pub struct Watermarks {
    marks: BTreeMap<String, Arc<Mark>>,
    fingerprint: String,
}

impl Watermarks {
    /// Read and decode every configured watermark from `origin`.
    pub async fn load(
        origin: &Origin,
        cfg: &WatermarksConfig,
        limits: PixelLimits,
    ) -> Result<Self, String> {
        let mut marks = BTreeMap::new();
        let mut h = blake3::Hasher::new();
        for (name, w) in cfg {
            let fail = |e: String| format!("watermarks.{name}: {} ({e})", w.key);
            let stat = origin.stat(&w.key).await.map_err(|e| fail(e.to_string()))?;
            let bytes = origin
                .read(&w.key, stat.version.len, 32 << 20)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let (_, px) =
                pipeline::preview(&bytes, limits, 4096).map_err(|e| fail(e.to_string()))?;
            let pixels = if px.channels == 4 {
                px
            } else {
                let data = px
                    .data
                    .chunks_exact(3)
                    .flat_map(|p| [p[0], p[1], p[2], 255])
                    .collect();
                pipeline::Pixels {
                    channels: 4,
                    data,
                    ..px
                }
            };
            let (x, y) = position(&w.position)?;
            h.update(name.as_bytes());
            h.update(blake3::hash(&bytes).as_bytes());
            h.update(format!("{x},{y},{},{},{}", w.margin, w.opacity, w.scale).as_bytes());
            marks.insert(
                name.clone(),
                Arc::new(Mark {
                    pixels,
                    x,
                    y,
                    margin: w.margin,
                    opacity: w.opacity,
                    scale: w.scale,
                }),
            );
        }
        let fingerprint = if marks.is_empty() {
            String::new()
        } else {
            format!(";wm={}", &h.finalize().to_hex()[..16])
        };
        Ok(Self { marks, fingerprint })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Mark>> {
        self.marks.get(name).cloned()
    }

    /// Appended to the encoder fingerprint of every cache key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}
