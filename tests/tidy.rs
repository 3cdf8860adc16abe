//! Architecture invariants checked on the source text (ARCHITECTURE.md): the engine does no I/O,
//! reads no clock and draws no randomness; only the store touches redb; adapters hold no
//! business logic (they never reach into the engine or the ledger directly).

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn offenders(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for path in files(Path::new(dir)) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for needle in needles {
                if code.contains(needle) {
                    out.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    out
}

#[test]
fn engine_is_pure() {
    let bad = offenders(
        "src/engine",
        &[
            "std::fs",
            "std::net",
            "tokio",
            "SystemTime",
            "Instant::now",
            "getrandom",
            "redb",
            "crate::store",
            "crate::ledger",
            "std::thread",
        ],
    );
    assert!(bad.is_empty(), "the engine must not do I/O, read clocks or draw randomness:\n{}", bad.join("\n"));
}

#[test]
fn only_the_store_touches_redb() {
    for dir in ["src/engine", "src/node", "src/wire", "src/server", "src/schema"] {
        let bad = offenders(dir, &["redb::"]);
        assert!(bad.is_empty(), "redb outside src/store:\n{}", bad.join("\n"));
    }
    for file in ["src/ledger.rs", "src/rpc.rs", "src/cli.rs"] {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(!text.contains("redb::"), "{file} uses redb directly");
    }
}

#[test]
fn adapters_only_translate() {
    let bad = offenders("src/wire", &["crate::engine", "crate::ledger", "crate::node", "crate::store"]);
    assert!(bad.is_empty(), "wire codecs reach into the core:\n{}", bad.join("\n"));
    let bad =
        offenders("src/server", &["crate::engine", "crate::ledger", "crate::node", "crate::store", "crate::schema"]);
    assert!(bad.is_empty(), "the HTTP layer reaches into the core:\n{}", bad.join("\n"));
}
