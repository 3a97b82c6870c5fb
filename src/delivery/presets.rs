//! Named presets (`[presets.card] w = 600, h = 400, fit = "cover"`), used as `?preset=card`.
//! Expansion rewrites the query before the transform parser sees it: the preset's parameters,
//! then the request's own (which win over the preset's). With `security.presets_only`, a request
//! may name a preset and cache busters, nothing else.
//!
//! Invariant: pure; every preset parses at start (config validation), so expansion cannot
//! produce a parameter error the preset's author did not see.

use crate::pipeline::transform::{self, ParamConfig};
use crate::util::query::{Pair, ParamError, Query};
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

/// Expand `preset=` in `query` (already stripped of `s`/`expires`): the preset's pairs first,
/// except those the query names itself, then the query's own pairs.
pub fn expand(query: Query, presets: &Presets, only: bool) -> Result<Query, ParamError> {
    let key = |p: &Pair| p.key.clone().unwrap_or_default();
    let named: Vec<&Pair> = query
        .pairs()
        .iter()
        .filter(|p| p.key.as_deref() == Some("preset"))
        .collect();
    if named.len() > 1 {
        return Err(ParamError::new(
            "preset",
            "parameter 'preset' is given more than once",
        ));
    }
    if only {
        if let Some(p) = query
            .pairs()
            .iter()
            .find(|p| p.key.as_deref() != Some("preset") && !transform::is_ignored(&key(p)))
        {
            let shown: String = p.raw_key().chars().take(64).collect();
            return Err(ParamError::new(
                &shown,
                "this server accepts only named presets (?preset=NAME)",
            ));
        }
    }
    let Some(name) = named.first().map(|p| p.value.clone().unwrap_or_default()) else {
        return Ok(query);
    };
    let preset = presets.get(&name).ok_or_else(|| {
        ParamError::new(
            "preset",
            format!(
                "no preset named '{}'",
                name.chars().take(64).collect::<String>()
            ),
        )
    })?;
    let own: Vec<&str> = query
        .pairs()
        .iter()
        .filter_map(|p| transform::canonical_name(p.key.as_deref()?))
        .collect();
    let mut out: Vec<Pair> = preset
        .iter()
        .filter(|(k, _)| !transform::canonical_name(k).is_some_and(|c| own.contains(&c)))
        .map(|(k, v)| Pair::new(k, &v.text()))
        .collect();
    out.extend(
        query
            .pairs()
            .iter()
            .filter(|p| p.key.as_deref() != Some("preset"))
            .cloned(),
    );
    Ok(Query::from_pairs(out))
}

/// Check every preset at start: each must parse on its own. The message names the preset.
pub fn validate(presets: &Presets, cfg: &ParamConfig) -> Result<(), String> {
    for name in presets.keys() {
        let q = expand(Query::parse(&format!("preset={name}")), presets, false)
            .map_err(|e| format!("presets.{name}: {e}"))?;
        transform::parse(&q, cfg).map_err(|e| format!("presets.{name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(q: &str, p: &Presets, only: bool) -> Result<String, ParamError> {
        expand(Query::parse(q), p, only).map(|q| q.raw())
    }

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
            x("preset=card", &p, false).unwrap(),
            "fit=cover&h=400&w=600"
        );
        assert_eq!(
            x("preset=card&width=300&fm=webp", &p, false).unwrap(),
            "fit=cover&h=400&width=300&fm=webp"
        );
        assert_eq!(x("w=5", &p, false).unwrap(), "w=5");
        assert_eq!(x("preset=nope", &p, false).unwrap_err().param, "preset");
        assert!(validate(&p, &ParamConfig::default()).is_ok());
    }

    #[test]
    fn presets_only_refuses_free_parameters() {
        let p = presets();
        assert!(x("preset=card&t=123", &p, true).is_ok());
        assert_eq!(x("preset=card&w=9", &p, true).unwrap_err().param, "w");
        assert_eq!(x("w=9", &p, true).unwrap_err().param, "w");
        assert_eq!(x("", &p, true).unwrap(), "");
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
