//! Session limits through the node's call path (XENAPI-SEMANTICS.md §c.3): at most 500 sessions
//! per originator with least-recently-used eviction, and a 24 h idle expiry; logins and logouts
//! are logged entries, while `last_active` stays in memory.

mod node_support;

use std::sync::Arc;

use xenledger::auth::session_key;
use xenledger::node::{collect_garbage, now_secs, Node, Reply, SESSIONS_PER_ORIGINATOR_MAX};
use xenledger::value::Value;

use node_support::{call, open_in, tcp};

fn open() -> (tempfile::TempDir, Arc<Node>) {
    let dir = tempfile::tempdir().unwrap();
    let (node, generated) = open_in(dir.path());
    assert!(generated.is_none());
    (dir, node)
}

async fn login(node: &Arc<Node>, originator: &str) -> String {
    let v = call(
        node,
        "session.login_with_password",
        vec![Value::str("root"), Value::str(""), Value::str("1.0"), Value::str(originator)],
    )
    .await
    .unwrap();
    v.as_str().unwrap().to_string()
}

async fn valid(node: &Arc<Node>, session: &str) -> bool {
    match call(node, "pool.get_all", vec![Value::str(session)]).await {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(e, vec!["SESSION_INVALID".to_string(), session.to_string()]);
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_least_recently_used_session_of_an_originator_is_evicted() {
    let (_dir, node) = open();
    let base = now_secs() - 10_000;
    let mut sessions = Vec::new();
    for i in 0..SESSIONS_PER_ORIGINATOR_MAX {
        let s = login(&node, "script").await;
        node.sessions.set_last_active(&session_key(&s), base + i as i64);
        sessions.push(s);
    }
    let other = login(&node, "another-tool").await;
    // Using the oldest session makes the second-oldest the least recently used.
    assert!(valid(&node, &sessions[0]).await);
    let newest = login(&node, "script").await;
    assert!(valid(&node, &newest).await);
    assert!(valid(&node, &sessions[0]).await);
    assert!(!valid(&node, &sessions[1]).await, "the LRU session must be evicted");
    assert!(valid(&node, &sessions[2]).await);
    // Other originators are counted apart.
    assert!(valid(&node, &other).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire_after_a_day() {
    let (_dir, node) = open();
    let idle = login(&node, "a").await;
    let busy = login(&node, "a").await;
    node.sessions.set_last_active(&session_key(&idle), now_secs() - 86_401);
    node.sessions.set_last_active(&session_key(&busy), now_secs() - 86_000);
    assert_eq!(collect_garbage(&node).await.unwrap(), 1);
    assert!(!valid(&node, &idle).await);
    assert!(valid(&node, &busy).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_logouts_are_logged_entries_with_redacted_passwords() {
    let (_dir, node) = open();
    let origin = tcp();
    let reply = node
        .call(
            "session.login_with_password",
            vec![Value::str("root"), Value::str("pw"), Value::str("1.0"), Value::str("audit")],
            &origin,
        )
        .await;
    let Reply::Rpc(Ok(Value::Ref(session))) = reply else { panic!("login failed: {reply:?}") };
    let store = node.ledger.store().clone();
    let (login_seq, _) = store.last().unwrap().unwrap();
    assert!(valid(&node, &session).await);
    call(&node, "session.logout", vec![Value::str(&session)]).await.unwrap();
    let mut entries = Vec::new();
    store.verify_chain(login_seq, store_prev(&store, login_seq), |e| entries.push(e)).unwrap();
    assert_eq!(entries[0].method, "session.login_with_password");
    assert_eq!(entries[0].actor.originator, "audit");
    assert!(!format!("{:?}", entries[0]).contains("\"pw\""), "the password reached the log");
    assert_eq!(entries.last().unwrap().method, "session.logout");
    assert!(!valid(&node, &session).await);
}

fn store_prev(store: &xenledger::store::Store, seq: u64) -> [u8; 32] {
    let bytes = store.record(seq - 1).unwrap().unwrap();
    xenledger::store::codec::decode_record(seq - 1, &bytes).unwrap().hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_without_blocking_other_callers() {
    let (_dir, node) = open();
    let session = login(&node, "x").await;
    let origin = tcp();
    let slow = {
        let node = node.clone();
        tokio::spawn(async move {
            node.call("session.login_with_password", vec![Value::str("root"), Value::str("bad")], &origin).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    assert!(valid(&node, &session).await);
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "a failed login must not block other calls");
    match slow.await.unwrap() {
        Reply::Rpc(Err(e)) => assert_eq!(e.code, "SESSION_AUTHENTICATION_FAILED"),
        other => panic!("{other:?}"),
    }
}
