//! Named presets (`[presets.card] w = 600, h = 400, fit = "cover"`), used as `?preset=card`.
//! Expansion rewrites the query before the transform parser sees it: the preset's parameters,
//! then the request's own (which win over the preset's). With `security.presets_only`, a request
//! may name a preset and cache busters, nothing else.
//!
//! Invariant: pure; every preset parses at start (config validation), so expansion cannot
//! produce a parameter error the preset's author did not see.

use crate::pipeline::transform::{self, ParamConfig, ParamError};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One preset value as written in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PresetValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl PresetValue {
    fn text(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Text(t) => t.clone(),
        }
    }
}

/// The `[presets]` config section: name → parameters.
pub type Presets = BTreeMap<String, BTreeMap<String, PresetValue>>;

fn bad(param: &str, message: impl Into<String>) -> ParamError {
    ParamError {
        param: param.to_string(),
        message: message.into(),
    }
}

/// Expand `preset=` in `query` (already stripped of `s`/`expires`).
pub fn expand(query: &str, presets: &Presets, only: bool) -> Result<String, ParamError> {
    let pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let named: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| *k == "preset")
        .map(|(_, v)| *v)
        .collect();
    if named.len() > 1 {
        return Err(bad("preset", "parameter 'preset' is given more than once"));
    }
    if only {
        if let Some((k, _)) = pairs
            .iter()
            .find(|(k, _)| *k != "preset" && !transform::is_ignored(k))
        {
            let shown: String = k.chars().take(64).collect();
            return Err(bad(
                &shown,
                "this server accepts only named presets (?preset=NAME)",
            ));
        }
    }
    let Some(name) = named.first() else {
        return Ok(query.to_string());
    };
    let preset = presets.get(*name).ok_or_else(|| {
        bad(
            "preset",
            format!(
                "no preset named '{}'",
                name.chars().take(64).collect::<String>()
            ),
        )
    })?;
    let own: Vec<&str> = pairs
        .iter()
        .filter_map(|(k, _)| transform::canonical_name(k))
        .collect();
    let mut out: Vec<String> = preset
        .iter()
        .filter(|(k, _)| !transform::canonical_name(k).is_some_and(|c| own.contains(&c)))
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(&v.text(), NON_ALPHANUMERIC)))
        .collect();
    out.extend(
        pairs
            .iter()
            .filter(|(k, _)| *k != "preset")
            .map(|(k, v)| format!("{k}={v}")),
    );
    Ok(out.join("&"))
}

/// Check every preset at start: each must parse on its own. The message names the preset.
pub fn validate(presets: &Presets, cfg: &ParamConfig) -> Result<(), String> {
    for name in presets.keys() {
        let q = expand(&format!("preset={name}"), presets, false)
            .map_err(|e| format!("presets.{name}: {e}"))?;
        transform::parse(&q, cfg).map_err(|e| format!("presets.{name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presets() -> Presets {
        let mut card = BTreeMap::new();
        card.insert("w".into(), PresetValue::Int(600));
        card.insert("h".into(), PresetValue::Int(400));
        card.insert("fit".into(), PresetValue::Text("cover".into()));
        let mut p = Presets::new();
        p.insert("card".into(), card);
        p
    }

    #[test]
    fn presets_expand_and_own_params_win() {
        let p = presets();
        assert_eq!(
            expand("preset=card", &p, false).unwrap(),
            "fit=cover&h=400&w=600"
        );
        assert_eq!(
            expand("preset=card&width=300&fm=webp", &p, false).unwrap(),
            "fit=cover&h=400&width=300&fm=webp"
        );
        assert_eq!(expand("w=5", &p, false).unwrap(), "w=5");
        assert_eq!(
            expand("preset=nope", &p, false).unwrap_err().param,
            "preset"
        );
        assert!(validate(&p, &ParamConfig::default()).is_ok());
    }

    #[test]
    fn presets_only_refuses_free_parameters() {
        let p = presets();
        assert!(expand("preset=card&t=123", &p, true).is_ok());
        assert_eq!(expand("preset=card&w=9", &p, true).unwrap_err().param, "w");
        assert_eq!(expand("w=9", &p, true).unwrap_err().param, "w");
        assert_eq!(expand("", &p, true).unwrap(), "");
    }

    #[test]
    fn a_bad_preset_is_named_at_start() {
        let mut p = presets();
        p.get_mut("card")
            .unwrap()
            .insert("w".into(), PresetValue::Int(0));
        let e = validate(&p, &ParamConfig::default()).unwrap_err();
        assert!(e.contains("presets.card"), "{e}");
    }
}
