//! Tidy: the architecture rules as a test (rust-analyzer style). Import boundaries, no
//! ignored or should-panic tests, no `unwrap`/`expect` outside tests, only `config` reads the environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Source text without its `#[cfg(test)] mod tests { ... }` tail.
fn non_test(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

fn src() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The module map (ARCHITECTURE.md draws it): each top-level module of `src/`, from the top
/// down, and the modules it may import. Nothing imports a module above it; a module's own
/// submodules are always allowed.
const MAP: &[(&str, &[&str])] = &[
    ("lib", &["config", "http", "wiring"]),
    (
        "wiring",
        &[
            "access", "config", "control", "delivery", "library", "pipeline", "routes", "storage",
            "store", "util",
        ],
    ),
    (
        "config",
        &[
            "access", "control", "delivery", "http", "library", "pipeline", "storage", "store",
            "util",
        ],
    ),
    (
        "routes",
        &["control", "delivery", "error", "http", "pipeline"],
    ),
    (
        "control",
        &[
            "access", "delivery", "error", "http", "library", "pipeline", "store", "util",
        ],
    ),
    (
        "delivery",
        &["access", "error", "http", "pipeline", "storage", "util"],
    ),
    (
        "library",
        &["access", "error", "pipeline", "storage", "store", "util"],
    ),
    ("access", &["store", "util"]),
    ("http", &["error", "util"]),
    ("error", &["pipeline", "storage", "store", "util"]),
    ("store", &["util"]),
    ("storage", &["util"]),
    ("pipeline", &["util"]),
    ("util", &[]),
];

/// The top-level module a `src/` file belongs to.
fn module_of(file: &str) -> &str {
    let rest = file.trim_start_matches("src/");
    let first = rest.split('/').next().unwrap_or(rest);
    first.trim_end_matches(".rs")
}

#[test]
fn tidy_imports_follow_the_module_map() {
    let names: Vec<&str> = MAP.iter().map(|(m, _)| *m).collect();
    let mut bad = Vec::new();
    for (file, text) in src() {
        if file == "src/main.rs" {
            continue;
        }
        let own = module_of(&file);
        let Some((_, allowed)) = MAP.iter().find(|(m, _)| *m == own) else {
            bad.push(format!("{file}: module `{own}` is not in the map"));
            continue;
        };
        for (i, line) in non_test(&text).lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                let after = &rest[at + "crate::".len()..];
                let used: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if used != own
                    && names.contains(&used.as_str())
                    && !allowed.contains(&used.as_str())
                {
                    bad.push(format!("{file}:{}: `{own}` may not import `{used}`", i + 1));
                }
                rest = after;
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports against the map:\n{}",
        bad.join("\n")
    );
}

/// ARCHITECTURE.md shows the same table.
#[test]
fn tidy_architecture_md_shows_the_map() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
    for (m, allowed) in MAP {
        let want = if allowed.is_empty() {
            format!("| `{m}` | (nothing) |")
        } else {
            format!("| `{m}` | {} |", allowed.join(", "))
        };
        assert!(
            rows.contains(&want.as_str()),
            "ARCHITECTURE.md's module map lacks: {want}"
        );
    }
    assert_eq!(
        rows.len(),
        MAP.len(),
        "ARCHITECTURE.md's map has other rows"
    );
}

/// The map has no cycle: every module's allowed imports are below it.
#[test]
fn tidy_module_map_points_one_way() {
    for (i, (m, allowed)) in MAP.iter().enumerate() {
        for a in *allowed {
            let j = MAP.iter().position(|(n, _)| n == a);
            assert!(
                j.is_some_and(|j| j > i),
                "`{m}` may import `{a}`, which is not below it"
            );
        }
    }
}

#[test]
fn tidy_import_boundaries() {
    let rules: &[(&str, &[&str])] = &[
        ("opendal::", &["src/storage/origin.rs"]),
        ("moka::", &["src/util/cache.rs"]),
        ("std::env::var", &["src/config.rs"]),
        ("StatusCode", &["src/error.rs", "src/http/"]),
        ("sqlx::", &["src/store/"]),
        ("governor::", &["src/access/ratelimit.rs"]),
        ("multer::", &["src/library/upload.rs"]),
        ("Response::builder", &["src/http/"]),
        ("include_bytes!(\"../../tests", &[]),
        ("tests/fixtures", &[]),
    ];
    // Pure leaves: no async runtime, no HTTP, no storage, no cache.
    let leaves = [
        "src/delivery/negotiate.rs",
        "src/delivery/key.rs",
        "src/pipeline/",
        "src/library/meta/",
        "src/util/clock.rs",
        "src/util/secret.rs",
        "src/util/limits.rs",
    ];
    // Nothing below the planes knows HTTP.
    let no_http = [
        "src/access/",
        "src/library/",
        "src/store/",
        "src/storage/",
        "src/pipeline/",
        "src/util/",
    ];
    // The store knows SQL only: no HTTP, no objects, no pixels.
    let store_forbids = [
        "hyper",
        "http::",
        "opendal",
        "crate::pipeline",
        "crate::storage",
    ];
    let uses = |code: &str, f: &str| {
        code.lines()
            .any(|l| l.trim_start().starts_with("use ") && l.contains(f))
    };
    let mut bad = Vec::new();
    for (file, text) in src() {
        let code = non_test(&text);
        if file.starts_with("src/store/") {
            for f in store_forbids {
                if uses(code, f) {
                    bad.push(format!("store {file} imports {f}"));
                }
            }
        }
        for (needle, allowed) in rules {
            if code.contains(needle) && !allowed.iter().any(|a| file.starts_with(a)) {
                bad.push(format!("{file} uses `{needle}`"));
            }
        }
        if leaves.iter().any(|l| file.starts_with(l)) {
            for forbidden in ["hyper", "tokio", "opendal", "moka", "http::"] {
                if uses(code, forbidden) {
                    bad.push(format!("leaf {file} imports {forbidden}"));
                }
            }
        }
        if no_http.iter().any(|l| file.starts_with(l))
            && (uses(code, "http::") || uses(code, "hyper") || code.contains("HeaderMap"))
        {
            bad.push(format!("{file} is below the planes and knows HTTP"));
        }
    }
    assert!(
        bad.is_empty(),
        "architecture rules broken:\n{}",
        bad.join("\n")
    );
}

/// Every dependency in `[dependencies]` is used by the code (as `cargo machete` would check).
#[test]
fn tidy_no_unused_dependencies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let code: String = src().into_iter().map(|(_, t)| t).collect();
    let mut unused = Vec::new();
    for line in deps.lines() {
        let Some(name) = line
            .split('=')
            .next()
            .map(str::trim)
            .filter(|n| !n.is_empty() && !n.starts_with('#'))
        else {
            continue;
        };
        // The name the code uses (a few crates are imported under another name).
        let used_as = match name {
            "kamadak-exif" => "exif".to_string(),
            // Installed as OpenDAL's HTTP transport (`opendal::install_default` needs it linked).
            "opendal-http-transport-reqwest" => "opendal_http_transport_reqwest".to_string(),
            n => n.replace('-', "_"),
        };
        // `name::` not inside another path (`crate::http::` is not the `http` crate).
        let found = [format!("{used_as}::"), format!("{used_as}!")]
            .iter()
            .any(|p| {
                code.match_indices(p.as_str()).any(|(i, _)| {
                    !code[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c == ':' || c == '_' || c.is_ascii_alphanumeric())
                })
            });
        if !found {
            unused.push(name.to_string());
        }
    }
    assert!(unused.is_empty(), "dependencies no code uses: {unused:?}");
}

#[test]
fn tidy_no_unwrap_outside_tests_and_main() {
    let mut bad = Vec::new();
    for (file, text) in src() {
        if file == "src/main.rs" {
            continue;
        }
        for (i, line) in non_test(&text).lines().enumerate() {
            if line.contains(".unwrap()") || line.contains(".expect(") {
                bad.push(format!("{file}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "unwrap/expect on request paths:\n{}",
        bad.join("\n")
    );
}

#[test]
fn tidy_no_ignored_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let pattern = ["#[", "ignore"].concat();
    let should_panic = ["#[", "should_panic"].concat();
    let bad: Vec<_> = files
        .iter()
        .filter(|p| {
            let t = std::fs::read_to_string(p).unwrap();
            t.contains(&pattern) || t.contains(&should_panic)
        })
        .collect();
    assert!(bad.is_empty(), "ignored or should_panic tests in {bad:?}");
}
