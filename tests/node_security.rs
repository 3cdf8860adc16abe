//! Credentials and the data dir, through the node: the upgrade of a data dir written before
//! sessions were keyed by digest and secret values sealed (a real one, in
//! `tests/fixtures/pre-security-datadir/`), the key file's life (first start, a missing file, the
//! rotation that makes destroyed values unrecoverable), and the per-originator session limit
//! under a burst of concurrent logins.

mod node_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use xenledger::entry::{Change, Entry};
use xenledger::ledger::{rekey, Ledger};
use xenledger::node::{Node, SESSIONS_PER_ORIGINATOR_MAX};
use xenledger::schema::schema;
use xenledger::value::Value;
use xenledger::vault::{self, Vault, VaultError};

use node_support::{call, open_in};

/// What the fixture's README says it holds.
const LEGACY_ROOT_SESSION: &str = "OpaqueRef:43d43f8f-75ca-4af4-b3c5-8a7e93a64618";
const LEGACY_AUDITOR_SESSION: &str = "OpaqueRef:6d459bda-979b-49f7-8af3-01019219d6f8";
const LEGACY_SECRET_VALUE: &str = "legacy-secret-value-7f3a";

fn legacy_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pre-security-datadir/xenledger.redb");
    std::fs::copy(fixture, dir.path().join("xenledger.redb")).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn entries(node: &Node) -> Vec<Entry> {
    node.ledger.store().entries(1).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn login(node: &Arc<Node>, originator: &str) -> Value {
    call(
        node,
        "session.login_with_password",
        vec![Value::str("root"), Value::str(""), Value::str("1.0"), Value::str(originator)],
    )
    .await
    .unwrap()
}

fn stored_secret_values(node: &Node) -> Vec<String> {
    let class = schema().class("secret").unwrap();
    let field = class.field("value").unwrap();
    let state = node.ledger.snapshot();
    state.table(class.id).objects.values().map(|o| o.fields[field].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_data_dir_ends_its_sessions_and_seals_its_secrets_on_the_first_start() {
    let dir = legacy_copy();
    let (node, generated) = open_in(dir.path());
    assert_eq!(generated, None, "the fixture already has root");
    // The refs its log holds in the clear no longer authenticate anyone.
    for legacy in [LEGACY_ROOT_SESSION, LEGACY_AUDITOR_SESSION] {
        assert_eq!(
            call(&node, "pool.get_all", vec![Value::str(legacy)]).await,
            Err(vec!["SESSION_INVALID".to_string(), legacy.to_string()])
        );
    }
    // One logged entry did it: fixture entries 1..=7, then the upgrade, then the host's inventory
    // (SRs, networks, templates), which a data dir from before it gains on its next start.
    let log = entries(&node);
    assert_eq!(log.len(), 9);
    assert_eq!(log[8].method, "xenledger.inventory");
    let upgrade = &log[7];
    assert_eq!(
        (upgrade.method.as_str(), upgrade.actor.originator.as_str()),
        ("xenledger.upgrade_credentials", "upgrade")
    );
    let destroyed: Vec<&str> = upgrade
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Destroy { class, reference } if class == "session" => Some(reference.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(destroyed.len(), 2);
    // The live secret is stored sealed and still reads as its value.
    let stored = stored_secret_values(&node);
    assert_eq!(stored.len(), 1);
    assert!(vault::is_sealed(&stored[0]) && !stored[0].contains(LEGACY_SECRET_VALUE));
    let session = login(&node, "after-upgrade").await;
    let secret = call(&node, "secret.get_all", vec![session.clone()]).await.unwrap().as_set().unwrap()[0].clone();
    assert_eq!(call(&node, "secret.get_value", vec![session, secret]).await, Ok(Value::str(LEGACY_SECRET_VALUE)));
    // The key is in force, and the dir and its files are private.
    assert!(vault::key_path(dir.path()).is_file() && !vault::staged_key_path(dir.path()).exists());
    assert_eq!(mode(dir.path()), 0o700);
    for file in ["xenledger.redb", "secret.key"] {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
    }
    // A second start has nothing to upgrade.
    drop(node);
    let (node, _) = open_in(dir.path());
    assert!(entries(&node).iter().filter(|e| e.method == "xenledger.upgrade_credentials").count() == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_staged_by_an_interrupted_upgrade_is_the_one_put_in_force() {
    let dir = legacy_copy();
    // A start that wrote the staged key and died before logging the upgrade.
    let staged = Vault::generate();
    staged.save(&vault::staged_key_path(dir.path())).unwrap();
    let sealed = staged.seal("probe");
    let (node, _) = open_in(dir.path());
    let in_force = Vault::load(&vault::key_path(dir.path())).unwrap();
    assert_eq!(in_force.open(&sealed).unwrap(), "probe");
    let stored = stored_secret_values(&node);
    assert_eq!(in_force.open(&stored[0]).unwrap(), LEGACY_SECRET_VALUE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_values_without_their_key_file_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open_in(dir.path());
    let session = login(&node, "t").await;
    let args = Value::Record(vec![("value".into(), Value::str("v")), ("other_config".into(), Value::Map(vec![]))]);
    call(&node, "secret.create", vec![session, args]).await.unwrap();
    drop(node);
    std::fs::remove_file(vault::key_path(dir.path())).unwrap();
    let first = node_support::first_start();
    let error = tokio::task::block_in_place(|| Node::open(dir.path(), &first)).err().expect("the start must fail");
    // The message and its causes, as the CLI prints them.
    let text = format!("{:#}", anyhow::Error::from(error));
    assert!(text.contains("secret.key") && text.contains("key file is missing"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekey_leaves_destroyed_values_unrecoverable_and_live_ones_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open_in(dir.path());
    let session = login(&node, "t").await;
    let record =
        |v: &str| Value::Record(vec![("value".into(), Value::str(v)), ("other_config".into(), Value::Map(vec![]))]);
    let kept = call(&node, "secret.create", vec![session.clone(), record("kept")]).await.unwrap();
    let gone = call(&node, "secret.create", vec![session.clone(), record("gone")]).await.unwrap();
    call(&node, "secret.destroy", vec![session.clone(), gone]).await.unwrap();
    // Every sealed value the log holds, as a thief with a copy of the log (and, before the
    // rotation, of the key file) would collect them.
    let sealed_in_log: Vec<String> = entries(&node)
        .iter()
        .flat_map(|e| e.changes.clone())
        .filter_map(|c| match c {
            Change::Create { class, fields, .. } if class == "secret" => {
                fields.into_iter().find(|(f, _)| f == "value").and_then(|(_, v)| v.as_str().map(String::from))
            }
            _ => None,
        })
        .collect();
    assert_eq!(sealed_in_log.len(), 2);
    let old_key = Vault::load(&vault::key_path(dir.path())).unwrap();
    let opened: Vec<String> = sealed_in_log.iter().map(|s| old_key.open(s).unwrap()).collect();
    assert_eq!(opened, ["kept", "gone"]);
    drop(node);

    let done = tokio::task::block_in_place(|| {
        let ledger = Ledger::open(dir.path()).unwrap();
        let done = rekey(&ledger).unwrap();
        ledger.close();
        done
    });
    assert_eq!((done.key_id, done.secrets), (2, 1));

    let new_key = Vault::load(&vault::key_path(dir.path())).unwrap();
    for sealed in &sealed_in_log {
        assert!(matches!(new_key.open(sealed), Err(VaultError::UnknownKey { id: 1 })));
    }
    let (node, _) = open_in(dir.path());
    let session = login(&node, "t").await;
    assert_eq!(call(&node, "secret.get_value", vec![session, kept]).await, Ok(Value::str("kept")));
    assert_eq!(mode(&vault::key_path(dir.path())), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_burst_of_logins_leaves_more_sessions_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open_in(dir.path());
    let logins = SESSIONS_PER_ORIGINATOR_MAX + 100;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let node = node.clone();
        tasks.spawn(async move {
            let mut refs = Vec::new();
            for _ in 0..logins.div_ceil(64) {
                refs.push(login(&node, "burst").await);
            }
            refs
        });
    }
    let mut refs = Vec::new();
    while let Some(batch) = tasks.join_next().await {
        refs.extend(batch.unwrap());
    }
    assert!(refs.len() >= logins);
    let class = schema().class("session").unwrap();
    let originator = class.field("originator").unwrap();
    let state = node.ledger.snapshot();
    let live =
        state.table(class.id).objects.values().filter(|o| o.fields[originator].as_str() == Some("burst")).count();
    assert_eq!(live, SESSIONS_PER_ORIGINATOR_MAX);
    let mut valid = 0;
    for r in &refs {
        if call(&node, "pool.get_all", vec![r.clone()]).await.is_ok() {
            valid += 1;
        }
    }
    assert_eq!(valid, SESSIONS_PER_ORIGINATOR_MAX);
}
