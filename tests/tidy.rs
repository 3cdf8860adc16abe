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
            "crate::host",
            "std::thread",
        ],
    );
    assert!(bad.is_empty(), "the engine must not do I/O, read clocks or draw randomness:\n{}", bad.join("\n"));
}

#[test]
fn only_the_store_touches_redb() {
    for dir in ["src/engine", "src/node", "src/wire", "src/server", "src/schema", "src/ledger", "src/vault"] {
        let bad = offenders(dir, &["redb::"]);
        assert!(bad.is_empty(), "redb outside src/store:\n{}", bad.join("\n"));
    }
    for file in ["src/rpc.rs", "src/cli.rs"] {
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

/// The code's text without comments: what `//`, `//!` and `///` say does not count as a use.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|line| line.split("//").next().unwrap_or(""))
}

/// The `src/` modules of ARCHITECTURE.md's code map, in row order (a row may name several).
fn code_map_modules() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string("ARCHITECTURE.md").unwrap();
    let map = text.split("## Code map").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut rows = Vec::new();
    for line in map.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = line.split('|').nth(1).unwrap();
        let modules: Vec<String> = first_cell
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|path| path.strip_prefix("src/"))
            .map(|path| path.trim_end_matches('/').trim_end_matches(".rs").to_string())
            .filter(|m| !m.contains('/'))
            .collect();
        if !modules.is_empty() {
            rows.push(modules);
        }
    }
    rows
}

#[test]
fn the_code_map_lists_every_module_and_no_module_imports_a_higher_row() {
    let rows = code_map_modules();
    let row_of = |module: &str| rows.iter().position(|r| r.iter().any(|m| m == module));
    let lib = std::fs::read_to_string("src/lib.rs").unwrap();
    for declared in code_lines(&lib).filter_map(|l| l.trim().strip_prefix("pub mod ")) {
        let module = declared.trim_end_matches(';');
        assert!(row_of(module).is_some(), "src/{module} is not in ARCHITECTURE.md's code map");
    }
    let mut bad = Vec::new();
    for (at, row) in rows.iter().enumerate() {
        for module in row.iter().filter(|m| *m != "main") {
            let dir = Path::new("src").join(module);
            let paths = if dir.is_dir() { files(&dir) } else { vec![Path::new("src").join(format!("{module}.rs"))] };
            for path in paths {
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, code) in code_lines(&text).enumerate() {
                    for used in code.split("crate::").skip(1) {
                        let name: String =
                            used.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                        if let Some(used_at) = row_of(&name) {
                            if used_at > at {
                                bad.push(format!("{}:{}: {module} uses {name}, a higher row", path.display(), n + 1));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "lower rows of the code map must not import higher ones:\n{}", bad.join("\n"));
}

#[test]
fn clocks_and_randomness_only_through_their_seams() {
    // The transport's timeouts (server) and the CLI's periodic garbage collection are real time
    // by nature; everything else reads time from a `Clock` and draws bytes from `entropy`.
    let allowed = ["src/clock.rs", "src/entropy.rs", "src/server/", "src/cli.rs", "src/remote.rs", "src/xe/"];
    let needles = ["SystemTime", "Instant::now", "tokio::time::sleep", "tokio::time::timeout", "getrandom"];
    let bad: Vec<String> =
        offenders("src", &needles).into_iter().filter(|line| !allowed.iter().any(|a| line.starts_with(a))).collect();
    assert!(bad.is_empty(), "time or randomness outside src/clock.rs and src/entropy.rs:\n{}", bad.join("\n"));
}
