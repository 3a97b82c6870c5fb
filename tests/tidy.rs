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

#[test]
fn tidy_import_boundaries() {
    let rules: &[(&str, &[&str])] = &[
        ("opendal::", &["src/storage/origin.rs"]),
        ("moka::", &["src/util/cache.rs"]),
        ("std::env::var", &["src/config.rs"]),
        (
            "StatusCode::",
            &["src/error.rs", "src/http/", "src/control/"],
        ),
        ("sqlx::", &["src/store/"]),
        ("governor::", &["src/access/ratelimit.rs"]),
        ("multer::", &["src/library/upload.rs"]),
        ("Response::builder", &["src/http/"]),
    ];
    let leaves = [
        "src/delivery/negotiate.rs",
        "src/delivery/key.rs",
        "src/pipeline/",
        "src/library/meta/",
    ];
    // The store knows SQL only: no HTTP, no objects, no pixels.
    let store_forbids = [
        "hyper",
        "http::",
        "opendal",
        "crate::pipeline",
        "crate::storage::origin::Origin",
    ];
    let mut bad = Vec::new();
    for (file, text) in src() {
        let code = non_test(&text);
        if file.starts_with("src/store/") {
            for f in store_forbids {
                if code
                    .lines()
                    .any(|l| l.trim_start().starts_with("use ") && l.contains(f))
                {
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
                if code
                    .lines()
                    .any(|l| l.trim_start().starts_with("use ") && l.contains(forbidden))
                {
                    bad.push(format!("leaf {file} imports {forbidden}"));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "architecture rules broken:\n{}",
        bad.join("\n")
    );
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
