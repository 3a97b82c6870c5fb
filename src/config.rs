//! Configuration: typed sections (each owned by its module), layered
//! defaults < `config/refract.toml` (or `--config`) < environment < command line.
//!
//! Environment: `REFRACT_LISTEN`, `REFRACT_DATA_DIR`, `REFRACT_STORAGE_ROOT`, `REFRACT_API_KEY`,
//! `REFRACT_ADMIN_EMAIL`, `REFRACT_ADMIN_PASSWORD`, and
//! `REFRACT__SECTION__KEY` for any key (lists comma-separated). Unknown keys fail at start with
//! the key's name. Invariant: the only module that reads the process environment; read once.

use crate::access::accounts::AccountsConfig;
use crate::access::auth::AuthConfig;
use crate::access::ratelimit::RateLimitConfig;
use crate::access::visibility::AccessConfig;
use crate::control::audit::AuditConfig;
use crate::control::webhooks::WebhooksConfig;
use crate::control::{AvatarsConfig, RandomConfig};
use crate::delivery::persist::CacheConfig;
use crate::delivery::policy::DeliveryConfig;
use crate::delivery::presets::Presets;
use crate::delivery::signing::SecurityConfig;
use crate::delivery::watermark::WatermarksConfig;
use crate::http::server::ServerConfig;
use crate::library::{ExpiryConfig, MetadataConfig, QuotaConfig};
use crate::pipeline::transform::{ParamConfig, ThumbConfig};
use crate::pipeline::EncodeConfig;
use crate::storage::origin::StorageConfig;
use crate::store::DatabaseConfig;
use crate::util::limits::LimitsConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub delivery: DeliveryConfig,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    pub cache: CacheConfig,
    pub formats: EncodeConfig,
    pub thumb: ThumbConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub ratelimit: RateLimitConfig,
    pub expiry: ExpiryConfig,
    pub metadata: MetadataConfig,
    pub random: RandomConfig,
    pub security: SecurityConfig,
    pub presets: Presets,
    pub watermarks: WatermarksConfig,
    pub quota: QuotaConfig,
    pub access: AccessConfig,
    pub avatars: AvatarsConfig,
    pub webhooks: WebhooksConfig,
    pub accounts: AccountsConfig,
    pub audit: AuditConfig,
    pub library: crate::library::index::LibraryConfig,
    pub ui: crate::control::UiConfig,
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub storage_root: Option<PathBuf>,
}

/// Where the default config file is looked for.
pub const DEFAULT_FILE: &str = "config/refract.toml";

impl Config {
    /// Load from the real environment and files.
    pub fn load(cli: &CliOverrides) -> Result<Self, String> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = match &cli.config {
            Some(p) => Some((p.clone(), read(p)?)),
            None if Path::new(DEFAULT_FILE).exists() => {
                Some((PathBuf::from(DEFAULT_FILE), read(Path::new(DEFAULT_FILE))?))
            }
            None => None,
        };
        Self::from_sources(
            file.as_ref().map(|(p, s)| (p.as_path(), s.as_str())),
            &env,
            cli,
        )
    }

    /// Layer the sources (pure: no IO), then validate.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: &[(String, String)],
        cli: &CliOverrides,
    ) -> Result<Self, String> {
        let mut value = toml::Value::try_from(Config::default()).map_err(|e| e.to_string())?;
        let defaults = value.clone();
        if let Some((path, text)) = file {
            let v: toml::Value =
                toml::from_str(text).map_err(|e| format!("config file {}: {e}", path.display()))?;
            merge(&mut value, v);
        }
        for (k, v) in env {
            let path: Option<Vec<String>> = match k.as_str() {
                "REFRACT_LISTEN" => Some(vec!["server".into(), "listen".into()]),
                "REFRACT_DATA_DIR" => Some(vec!["server".into(), "data_dir".into()]),
                "REFRACT_STORAGE_ROOT" => Some(vec!["storage".into(), "root".into()]),
                "REFRACT_API_KEY" => Some(vec!["auth".into(), "admin_key".into()]),
                "REFRACT_ADMIN_EMAIL" => Some(vec!["accounts".into(), "admin_email".into()]),
                "REFRACT_ADMIN_PASSWORD" => Some(vec!["accounts".into(), "admin_password".into()]),
                _ => k
                    .strip_prefix("REFRACT__")
                    .map(|rest| rest.split("__").map(str::to_ascii_lowercase).collect()),
            };
            if let Some(path) = path {
                set(&mut value, &path, typed(&defaults, &path, v), k)?;
            }
        }
        let s = |x: &str| toml::Value::String(x.to_string());
        if let Some(l) = &cli.listen {
            set(
                &mut value,
                &["server".into(), "listen".into()],
                s(l),
                "--listen",
            )?;
        }
        if let Some(d) = &cli.data_dir {
            set(
                &mut value,
                &["server".into(), "data_dir".into()],
                s(&d.to_string_lossy()),
                "--data-dir",
            )?;
        }
        if let Some(r) = &cli.storage_root {
            set(
                &mut value,
                &["storage".into(), "root".into()],
                s(&r.to_string_lossy()),
                "--storage-root",
            )?;
        }
        // Round-trip through text so that unknown keys are reported with their name and place.
        let text = toml::to_string(&value).map_err(|e| e.to_string())?;
        let cfg: Config =
            toml::from_str(&text).map_err(|e| format!("invalid configuration: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every section; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.server.listen.parse::<SocketAddr>().map_err(|_| {
            format!(
                "server.listen (REFRACT_LISTEN) is not an address:port: {}",
                self.server.listen
            )
        })?;
        let l = &self.limits;
        if !(1..=65_535).contains(&l.max_dimension) {
            return Err("limits.max_dimension must be 1..=65535".into());
        }
        if l.max_source_bytes == 0
            || l.max_source_pixels == 0
            || l.max_progressive_pixels == 0
            || l.queue_timeout_ms == 0
        {
            return Err(
                "limits.max_source_bytes, max_source_pixels, max_progressive_pixels and queue_timeout_ms must be > 0"
                    .into(),
            );
        }
        if self.thumb.width == 0 || self.thumb.height == 0 {
            return Err("thumb.width and thumb.height must be > 0".into());
        }
        if l.max_upload_bytes == 0 || l.max_upload_count == 0 {
            return Err("limits.max_upload_bytes and max_upload_count must be > 0".into());
        }
        if let Some(u) = &self.server.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://"))
                || u.contains(char::is_whitespace)
            {
                return Err(format!("server.public_url must be an http(s) URL: {u}"));
            }
        }
        self.trusted_proxies()?;
        self.delivery.validate()?;
        crate::delivery::watermark::validate(&self.watermarks)?;
        if !(16..=1024).contains(&self.avatars.size) {
            return Err("avatars.size (REFRACT__AVATARS__SIZE) must be 16..=1024".into());
        }
        if self.expiry.sweep_interval == 0 {
            return Err("expiry.sweep_interval must be > 0 seconds".into());
        }
        if !crate::access::auth::valid_tenant(&self.random.tenant) {
            return Err("random.tenant must be 1-64 of a-z, 0-9, '-', '_'".into());
        }
        if self.security.require_signature
            && !self.security.signing_keys.iter().any(|k| !k.0.is_empty())
        {
            return Err("security.require_signature needs security.signing_keys".into());
        }
        crate::delivery::presets::validate(&self.presets, &self.params())?;
        self.formats.validate()?;
        self.webhooks.validate()?;
        self.accounts.validate()?;
        self.audit.validate()?;
        self.library.validate()?;
        self.storage.validate()
    }

    /// `server.trusted_proxies` parsed (a bare IP is a /32 or /128).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, String> {
        crate::util::netguard::parse_networks(
            &self.server.trusted_proxies,
            "server.trusted_proxies",
        )
    }

    /// The slice of config the parameter parser needs.
    pub fn params(&self) -> ParamConfig {
        ParamConfig {
            max_dimension: self.limits.max_dimension,
            thumb_width: self.thumb.width,
            thumb_height: self.thumb.height,
            thumb_fit: self.thumb.fit,
        }
    }

    /// Worker count (0 = cores).
    pub fn workers(&self) -> usize {
        if self.limits.workers == 0 {
            num_cpus::get().max(1)
        } else {
            self.limits.workers
        }
    }
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("config file {}: {e}", p.display()))
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Give an env string the type the default has at that path (int, float, bool, list), else string.
fn typed(defaults: &toml::Value, path: &[String], raw: &str) -> toml::Value {
    let mut cur = Some(defaults);
    for p in path {
        cur = cur.and_then(|v| v.get(p));
    }
    match cur {
        Some(toml::Value::Integer(_)) => raw
            .parse()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(raw.into())),
        Some(toml::Value::Float(_)) => raw
            .parse()
            .map(toml::Value::Float)
            .unwrap_or_else(|_| toml::Value::String(raw.into())),
        Some(toml::Value::Boolean(_)) => raw
            .parse()
            .map(toml::Value::Boolean)
            .unwrap_or_else(|_| toml::Value::String(raw.into())),
        // A list: comma-separated, each item typed like the default's items (text when empty).
        Some(toml::Value::Array(items)) => {
            let numbers = matches!(items.first(), Some(toml::Value::Integer(_)));
            toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| match s.parse::<i64>() {
                        Ok(n) if numbers => toml::Value::Integer(n),
                        _ => toml::Value::String(s.into()),
                    })
                    .collect(),
            )
        }
        _ => toml::Value::String(raw.into()),
    }
}

fn set(
    root: &mut toml::Value,
    path: &[String],
    v: toml::Value,
    source: &str,
) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err(format!("{source}: empty key"));
    };
    let mut cur = root;
    for p in parents {
        let table = cur
            .as_table_mut()
            .ok_or_else(|| format!("{source}: {p} is not a section"))?;
        cur = table
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    let table = cur
        .as_table_mut()
        .ok_or_else(|| format!("{source}: not a section"))?;
    table.insert(last.clone(), v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn config_defaults_are_valid() {
        let c = Config::from_sources(None, &[], &CliOverrides::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.listen, "127.0.0.1:8080");
    }

    #[test]
    fn config_precedence_defaults_file_env_cli() {
        let file = "[server]\nlisten = \"127.0.0.1:1\"\n[limits]\nmax_dimension = 100\n";
        let p = Path::new("x.toml");
        let c = Config::from_sources(Some((p, file)), &[], &CliOverrides::default()).unwrap();
        assert_eq!(
            (c.server.listen.as_str(), c.limits.max_dimension),
            ("127.0.0.1:1", 100)
        );
        let e = env(&[
            ("REFRACT_LISTEN", "127.0.0.1:2"),
            ("REFRACT__LIMITS__MAX_DIMENSION", "200"),
            ("REFRACT__FORMATS__AVIF", "false"),
            ("REFRACT__CACHE__PERSISTENT__MAX_BYTES", "0"),
        ]);
        let c = Config::from_sources(Some((p, file)), &e, &CliOverrides::default()).unwrap();
        assert_eq!(
            (
                c.server.listen.as_str(),
                c.limits.max_dimension,
                c.formats.avif
            ),
            ("127.0.0.1:2", 200, false)
        );
        assert_eq!(
            c.cache.persistent.max_bytes, 0,
            "nested sections take env too"
        );
        let cli = CliOverrides {
            listen: Some("127.0.0.1:3".into()),
            ..Default::default()
        };
        let c = Config::from_sources(Some((p, file)), &e, &cli).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:3");
    }

    #[test]
    fn config_unknown_keys_fail_with_their_name() {
        let e = Config::from_sources(
            Some((Path::new("x.toml"), "[server]\nlisten_addr = \"x\"\n")),
            &[],
            &CliOverrides::default(),
        )
        .unwrap_err();
        assert!(e.contains("listen_addr"), "{e}");
        let e = Config::from_sources(
            None,
            &env(&[("REFRACT__CACHE__MEMORY_BYTEZ", "1")]),
            &CliOverrides::default(),
        )
        .unwrap_err();
        assert!(e.contains("memory_bytez"), "{e}");
        let e = Config::from_sources(
            None,
            &env(&[("REFRACT__NOPE__X", "1")]),
            &CliOverrides::default(),
        )
        .unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn config_bad_values_name_the_key() {
        let e = Config::from_sources(
            None,
            &env(&[("REFRACT__LIMITS__MAX_DIMENSION", "abc")]),
            &CliOverrides::default(),
        )
        .unwrap_err();
        assert!(e.contains("max_dimension"), "{e}");
        let e = Config::from_sources(
            None,
            &env(&[("REFRACT_LISTEN", "nowhere")]),
            &CliOverrides::default(),
        )
        .unwrap_err();
        assert!(e.contains("server.listen"), "{e}");
    }

    #[test]
    fn config_reference_file_parses_and_matches_defaults() {
        let text = include_str!("../config/refract.toml");
        let c = Config::from_sources(
            Some((Path::new("config/refract.toml"), text)),
            &[],
            &CliOverrides::default(),
        )
        .unwrap();
        assert_eq!(c, Config::default());
        // Every key is documented there (optional ones as a commented-out example).
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        // (section, key) for every leaf; a nested table is its own section (`[cache.persistent]`).
        fn leaves(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
            for (key, v) in table {
                match v.as_table() {
                    Some(t) if !prefix.is_empty() && t.values().any(|x| !x.is_table()) => {
                        leaves(&format!("{prefix}.{key}"), t, out)
                    }
                    Some(t) if prefix.is_empty() => leaves(key, t, out),
                    _ => out.push(format!("{prefix}.{key}")),
                }
            }
        }
        let mut keys: Vec<String> = Vec::new();
        leaves("", defaults.as_table().unwrap(), &mut keys);
        keys.extend(
            [
                "server.public_url",
                "storage.root",
                "storage.secret_access_key",
                "database.url",
                "auth.admin_key",
                "accounts.admin_email",
                "accounts.admin_password",
                "accounts.jwt_secret",
                "cache.persistent.path",
            ]
            .map(String::from),
        );
        for k in keys {
            let (section, key) = k.rsplit_once('.').unwrap();
            let body = text
                .split(&format!("[{section}]"))
                .nth(1)
                .unwrap_or_else(|| panic!("[{section}] not documented"));
            let body = body.split("\n[").next().unwrap();
            assert!(
                body.contains(&format!("\n{key} = ")) || body.contains(&format!("# {key} = ")),
                "{k} is not documented in config/refract.toml"
            );
        }
    }
}
