//! `xenledger call` (the jsonrpsee JSON-RPC client) against a real `xenledger serve` process:
//! a call's result is printed as JSON, a XenAPI failure exits non-zero naming the code and
//! parameters, and a self-signed certificate needs `--insecure`.

mod bin_support;

use std::process::Command;

use bin_support::{serve, Server, BIN};

fn start(dir: &std::path::Path) -> (Server, String) {
    let (server, port) = serve(dir, &[]);
    (server, format!("https://127.0.0.1:{port}"))
}

fn call(url: &str, extra: &[&str]) -> (bool, String, String) {
    let out =
        Command::new(BIN).args(["call", "--url", url]).args(extra).env("XENLEDGER_PASSWORD", "pw").output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn call_prints_results_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = start(dir.path());

    let (ok, out, _) = call(&url, &["-k", "pool.get_all"]);
    assert!(ok);
    let pools: Vec<String> = serde_json::from_str(&out).unwrap();
    assert_eq!(pools.len(), 1);

    let (ok, out, _) = call(&url, &["-k", "network.create", r#"{"name_label":"from-cli","other_config":{}}"#]);
    assert!(ok);
    let net: String = serde_json::from_str(&out).unwrap();
    let (ok, out, _) = call(&url, &["-k", "network.get_name_label", &net]);
    assert!(ok);
    assert_eq!(out.trim(), "\"from-cli\"");

    let (ok, _, err) = call(&url, &["-k", "VM.get_by_uuid", "nope"]);
    assert!(!ok);
    assert!(err.contains("UUID_INVALID [\"VM\", \"nope\"]"), "{err}");

    // The default certificate is self-signed: without -k the client refuses it, and says why.
    let (ok, _, err) = call(&url, &["pool.get_all"]);
    assert!(!ok);
    assert!(err.contains("--insecure"), "{err}");
}
