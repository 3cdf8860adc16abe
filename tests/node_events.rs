//! `event.from` against the retained deletion history (docs/xenapi-semantics.md §e.1 and issue 4:
//! deletions are never silently missed). Once more deletions than the engine keeps have happened
//! after a token, that token answers `EVENTS_LOST` instead of quietly skipping `del` events; a fresh
//! token keeps working.

mod node_support;

use std::sync::Arc;

use xenledger::clock::Clock;

use xenledger::engine::implicit::new_object;
use xenledger::engine::internal::InternalOp;
use xenledger::engine::state::DELETIONS_RETAINED_MAX;
use xenledger::entry::{Actor, Change};
use xenledger::ledger::Job;
use xenledger::node::Node;
use xenledger::value::Value;

use node_support::{call, open, open_virtual};

fn token_of(batch: &Value) -> Value {
    batch.member("token").unwrap()
}

/// Creates and destroys `count` networks, several thousand per entry.
async fn churn(node: &Arc<Node>, count: usize) {
    let mut left = count;
    let serial = &mut 0u64;
    while left > 0 {
        let n = left.min(4000);
        left -= n;
        let mut changes = Vec::with_capacity(2 * n);
        for _ in 0..n {
            *serial += 1;
            let (r, uuid) = (format!("OpaqueRef:churn-{serial}"), format!("00000000-0000-4000-8000-{serial:012}"));
            changes.push(new_object("network", &r, &uuid, vec![("name_label", Value::str("churn"))]));
            changes.push(Change::Destroy { class: "network".into(), reference: r });
        }
        let job = Job::internal(Actor::default(), InternalOp::Changes(changes));
        node.ledger.call(job).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_older_than_the_deletion_history_gets_events_lost() {
    let (_dir, node) = open();
    let session = call(&node, "session.login_with_password", vec![Value::str("root"), Value::str("")]).await.unwrap();
    let old = token_of(
        &call(
            &node,
            "event.from",
            vec![session.clone(), Value::Set(vec![Value::str("*")]), Value::str(""), Value::Float(0.0)],
        )
        .await
        .unwrap(),
    );
    call(&node, "event.register", vec![session.clone(), Value::Set(vec![Value::str("network")])]).await.unwrap();

    // Objects made and deleted inside one window produce nothing, but their deletions still fill
    // the retained history.
    churn(&node, DELETIONS_RETAINED_MAX + 10).await;
    let lost = call(
        &node,
        "event.from",
        vec![session.clone(), Value::Set(vec![Value::str("network")]), old.clone(), Value::Float(0.0)],
    )
    .await;
    assert_eq!(lost, Err(vec!["EVENTS_LOST".to_string()]));
    let lost = call(&node, "event.next", vec![session.clone()]).await;
    assert_eq!(lost, Err(vec!["EVENTS_LOST".to_string()]));

    // A token taken now works, and sees the next deletion.
    let fresh = token_of(
        &call(
            &node,
            "event.from",
            vec![session.clone(), Value::Set(vec![Value::str("network")]), Value::str(""), Value::Float(0.0)],
        )
        .await
        .unwrap(),
    );
    let net = call(
        &node,
        "network.create",
        vec![session.clone(), Value::Record(vec![("other_config".into(), Value::Record(vec![]))])],
    )
    .await
    .unwrap();
    let batch = call(
        &node,
        "event.from",
        vec![session.clone(), Value::Set(vec![Value::str("network")]), fresh.clone(), Value::Float(5.0)],
    )
    .await
    .unwrap();
    let token = token_of(&batch);
    call(&node, "network.destroy", vec![session.clone(), net.clone()]).await.unwrap();
    let batch = call(
        &node,
        "event.from",
        vec![session.clone(), Value::Set(vec![Value::str("network")]), token, Value::Float(5.0)],
    )
    .await
    .unwrap();
    let events = batch.member("events").unwrap();
    let events = events.as_set().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].member("operation"), Some(Value::str("del")));
    assert_eq!(events[0].member("ref").and_then(|v| v.as_str().map(String::from)), net.as_str().map(String::from));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_wakes_on_commit_and_times_out_otherwise() {
    let (node, clock) = open_virtual();
    let session = call(&node, "session.login_with_password", vec![Value::str("root"), Value::str("")]).await.unwrap();
    let token = token_of(
        &call(
            &node,
            "event.from",
            vec![session.clone(), Value::Set(vec![Value::str("pool")]), Value::str(""), Value::Float(0.0)],
        )
        .await
        .unwrap(),
    );
    // Nothing changes: the call answers at its timeout (on the node's clock) with no events and
    // a reusable token.
    let mut waiting = {
        let (node, session, token) = (node.clone(), session.clone(), token.clone());
        tokio::spawn(async move {
            call(&node, "event.from", vec![session, Value::Set(vec![Value::str("pool")]), token, Value::Float(30.0)])
                .await
        })
    };
    // The clock moves a second at a time until the call answers: never before 30 s have passed
    // (counted from before the call, which may start a little later).
    let start = clock.now_secs();
    let batch = loop {
        clock.advance(std::time::Duration::from_secs(1));
        if let Ok(done) = tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting).await {
            break done.unwrap().unwrap();
        }
        assert!(clock.now_secs() - start < 120, "the timeout never fired");
    };
    assert!(clock.now_secs() - start >= 30, "answered after {} s of a 30 s timeout", clock.now_secs() - start);
    assert_eq!(batch.member("events"), Some(Value::Set(vec![])));
    // A change wakes a parked waiter long before its timeout.
    let waiter = {
        let (node, session, token) = (node.clone(), session.clone(), token.clone());
        tokio::spawn(async move {
            call(&node, "event.from", vec![session, Value::Set(vec![Value::str("pool")]), token, Value::Float(30.0)])
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let pool = call(&node, "pool.get_all", vec![session.clone()]).await.unwrap().as_set().unwrap()[0].clone();
    let started = std::time::Instant::now();
    call(&node, "event.inject", vec![session.clone(), Value::str("pool"), pool.clone()]).await.unwrap();
    let batch = waiter.await.unwrap().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let events = batch.member("events").unwrap();
    assert_eq!(
        events.as_set().unwrap()[0].member("ref"),
        Some(pool.clone()).map(|p| Value::String(p.as_str().unwrap().to_string()))
    );
    // A logout ends a parked waiter with SESSION_INVALID (xapi From.wait2).
    let waiter = {
        let (node, session, token) = (node.clone(), session.clone(), token_of(&batch));
        tokio::spawn(async move {
            call(&node, "event.from", vec![session, Value::Set(vec![Value::str("pool")]), token, Value::Float(30.0)])
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    call(&node, "session.logout", vec![session.clone()]).await.unwrap();
    assert_eq!(waiter.await.unwrap(), Err(vec!["SESSION_INVALID".to_string(), session.as_str().unwrap().to_string()]));
}
