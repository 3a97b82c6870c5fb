//! The delivery plane: `GET /img/{key}` and what it needs above the pixels: URL signing,
//! presets, format negotiation, the cache key and the variant tiers.

pub mod img;
pub mod key;
pub mod negotiate;
pub mod persist;
pub mod presets;
pub mod signing;
