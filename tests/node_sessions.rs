//! Session limits through the node's call path (docs/xenapi-semantics.md §c.3): at most 500 sessions
//! per originator with least-recently-used eviction, and a 24 h idle expiry; logins and logouts
//! are logged entries, while `last_active` stays in memory.

mod node_support;

use std::sync::Arc;
use std::time::Duration;

use xenledger::node::{collect_garbage, Node, Reply, AUTH_FAILURE_DELAY, SESSIONS_PER_ORIGINATOR_MAX};
use xenledger::value::Value;

use node_support::{call, open_in, open_virtual, tcp};

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
    let (node, clock) = open_virtual();
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS_PER_ORIGINATOR_MAX {
        sessions.push(login(&node, "script").await);
        clock.advance(Duration::from_secs(1));
    }
    let other = login(&node, "another-tool").await;
    // Using the oldest session makes the second-oldest the least recently used.
    assert!(valid(&node, &sessions[0]).await);
    clock.advance(Duration::from_secs(1));
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
    let (node, clock) = open_virtual();
    let idle = login(&node, "a").await;
    clock.advance(Duration::from_secs(401));
    let busy = login(&node, "a").await;
    clock.advance(Duration::from_secs(86_000));
    // `idle` was last used 86,401 s ago, `busy` 86,000 s ago: only the first is past 24 h.
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
    store.verify_chain(login_seq, store_prev(&*store, login_seq), |e| entries.push(e)).unwrap();
    assert_eq!(entries[0].method, "session.login_with_password");
    assert_eq!(entries[0].actor.originator, "audit");
    assert!(!format!("{:?}", entries[0]).contains("\"pw\""), "the password reached the log");
    assert_eq!(entries.last().unwrap().method, "session.logout");
    assert!(!valid(&node, &session).await);
}

fn store_prev(store: &dyn xenledger::store::Log, seq: u64) -> [u8; 32] {
    let bytes = store.record(seq - 1).unwrap().unwrap();
    xenledger::store::codec::decode_record(seq - 1, &bytes).unwrap().hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_without_blocking_other_callers() {
    let (node, clock) = open_virtual();
    let session = login(&node, "x").await;
    let origin = tcp();
    let mut slow = {
        let node = node.clone();
        tokio::spawn(async move {
            node.call("session.login_with_password", vec![Value::str("root"), Value::str("bad")], &origin).await
        })
    };
    // The failed login waits 5 s of the node's time (xapi's pause) without holding anyone up:
    // other calls are served while the clock stands still.
    assert!(valid(&node, &session).await);
    assert!(!slow.is_finished(), "the failure is answered only after the pause");
    // Time passes (the login may not have reached its pause yet; each step moves past it).
    let mut reply = None;
    for _ in 0..600 {
        clock.advance(AUTH_FAILURE_DELAY);
        if let Ok(done) = tokio::time::timeout(Duration::from_millis(50), &mut slow).await {
            reply = Some(done.unwrap());
            break;
        }
    }
    match reply {
        Some(Reply::Rpc(Err(e))) => assert_eq!(e.code, "SESSION_AUTHENTICATION_FAILED"),
        other => panic!("{other:?}"),
    }
}
