//! Shared helpers for the `node_*` integration tests: a node on a fresh data dir, calls through
//! the node's whole call path as the unix socket (trusted as root) or a TCP peer would make them,
//! and local users added directly to the log.
//!
//! Each test binary compiles this module on its own and uses a different subset of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use xenledger::auth;
use xenledger::clock::VirtualClock;
use xenledger::engine::internal::InternalOp;
use xenledger::entry::{Actor, Change};
use xenledger::ledger::{Job, Ledger};
use xenledger::node::{FirstStart, Node, Origin, Reply};
use xenledger::store::MemoryLog;
use xenledger::value::Value;
use xenledger::vault::Vault;

/// Root's password on the test nodes.
pub const ROOT_PASSWORD: &str = "pw";

/// Opens (or reopens) the node in `dir`; also what the first start generated, if anything.
/// Opening blocks on the first-start entry, so it runs off the async worker.
pub fn open_in(dir: &Path) -> (Arc<Node>, Option<String>) {
    let first = first_start();
    tokio::task::block_in_place(|| Node::open(dir, &first)).unwrap()
}

/// What the test nodes' first start is given.
pub fn first_start() -> FirstStart {
    FirstStart { root_password: Some(ROOT_PASSWORD.into()), hostname: "h".into(), address: "127.0.0.1".into() }
}

/// A node on a log in memory (no data dir) whose time is a [`VirtualClock`]: it moves only when
/// the test advances it.
pub fn open_virtual() -> (Arc<Node>, Arc<VirtualClock>) {
    let clock = Arc::new(VirtualClock::at_2026());
    let ledger = Ledger::open_on(Arc::new(MemoryLog::new()), Vault::generate(), clock.clone()).unwrap();
    let first = first_start();
    let (node, _) = tokio::task::block_in_place(|| Node::start(ledger, &first)).unwrap();
    (node, clock)
}

/// A node on a fresh temporary data dir.
pub fn open() -> (tempfile::TempDir, Arc<Node>) {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open_in(dir.path());
    (dir, node)
}

/// The unix socket origin: trusted as root, so logins need no password (no argon2), as xapi's
/// local socket.
pub fn unix() -> Origin {
    Origin { unix: true, peer: "test".into() }
}

/// A TCP peer: logins check the password.
pub fn tcp() -> Origin {
    Origin { unix: false, peer: "127.0.0.1:1".into() }
}

/// Makes a call from `origin`; a failure comes back as its wire form `[CODE, params…]`.
pub async fn call_as(
    node: &Arc<Node>,
    origin: &Origin,
    method: &str,
    params: Vec<Value>,
) -> Result<Value, Vec<String>> {
    match node.call(method, params, origin).await {
        Reply::Rpc(r) => r.map_err(|e| e.to_wire()),
        Reply::Bare(v) => Ok(v),
    }
}

/// [`call_as`] over the unix socket.
pub async fn call(node: &Arc<Node>, method: &str, params: Vec<Value>) -> Result<Value, Vec<String>> {
    call_as(node, &unix(), method, params).await
}

/// Adds a local user with `role` and `password`, as `xenledger user add` logs one.
pub async fn add_user(node: &Arc<Node>, name: &str, role: &str, password: &str) {
    let change = Change::UserPut { name: name.into(), role: role.into(), password_hash: auth::hash_password(password) };
    node.ledger.call(Job::internal(Actor::default(), InternalOp::Changes(vec![change]))).await.unwrap();
}
