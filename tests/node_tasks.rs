//! Tasks and object operations through the node's call path (docs/xenapi-semantics.md §f): an `Async.`
//! operation on an object registers in its `current_operations`, waits (parked, cancellable) while
//! another operation runs there instead of failing at once, xapi's ownership rule for
//! `task.destroy`, and tasks left pending by a stopped server are failed on the next start.

mod node_support;

use std::sync::Arc;

use xenledger::engine::internal::InternalOp;
use xenledger::entry::{Actor, Change};
use xenledger::ledger::Job;
use xenledger::node::Node;
use xenledger::value::Value;

use node_support::{add_user, call, call_as, open_in, tcp};

fn open(dir: &std::path::Path) -> Arc<Node> {
    open_in(dir).0
}

async fn root(node: &Arc<Node>) -> Value {
    call(node, "session.login_with_password", vec![Value::str("root"), Value::str("")]).await.unwrap()
}

fn vm_record(label: &str) -> Value {
    let s = Value::str;
    let mut m: Vec<(String, Value)> = vec![("name_label".into(), s(label))];
    for (k, v) in [
        ("user_version", "1"),
        ("memory_static_max", "1073741824"),
        ("memory_dynamic_max", "1073741824"),
        ("memory_dynamic_min", "536870912"),
        ("memory_static_min", "536870912"),
        ("VCPUs_max", "1"),
        ("VCPUs_at_startup", "1"),
        ("actions_after_shutdown", "destroy"),
        ("actions_after_reboot", "restart"),
        ("actions_after_crash", "restart"),
        ("PV_bootloader", ""),
        ("PV_kernel", ""),
        ("PV_ramdisk", ""),
        ("PV_args", ""),
        ("PV_bootloader_args", ""),
        ("PV_legacy_args", ""),
        ("HVM_boot_policy", ""),
        ("PCI_bus", ""),
        ("recommendations", ""),
        ("affinity", "OpaqueRef:NULL"),
    ] {
        m.push((k.into(), s(v)));
    }
    m.push(("is_a_template".into(), Value::Bool(false)));
    for k in ["VCPUs_params", "HVM_boot_params", "platform", "other_config"] {
        m.push((k.into(), Value::Record(vec![])));
    }
    Value::Record(m)
}

/// Sets a VM's current_operations directly, as another running operation would hold it.
async fn hold(node: &Arc<Node>, vm: &Value, ops: Vec<(&str, &str)>) {
    let vm = vm.as_str().unwrap().to_string();
    let ops: Vec<(Value, Value)> = ops.into_iter().map(|(t, o)| (Value::str(t), Value::Enum(o.into()))).collect();
    let change =
        Change::Set { class: "VM".into(), reference: vm, field: "current_operations".into(), value: Value::Map(ops) };
    let job = Job::internal(Actor::default(), InternalOp::Changes(vec![change]));
    node.ledger.call(job).await.unwrap();
}

async fn status(node: &Arc<Node>, session: &Value, task: &Value) -> String {
    call(node, "task.get_status", vec![session.clone(), task.clone()]).await.unwrap().as_str().unwrap().to_string()
}

/// Waits for the task to leave `pending`: woken by each commit, never by the passing of time.
async fn wait_done(node: &Arc<Node>, session: &Value, task: &Value) -> String {
    let mut committed = node.ledger.committed();
    loop {
        committed.borrow_and_update();
        let st = status(node, session, task).await;
        if st != "pending" {
            return st;
        }
        committed.changed().await.expect("the writer runs");
    }
}

/// Yields until `holds(node)` is true: for the node's runtime tables, which no commit announces.
async fn until(node: &Arc<Node>, holds: impl Fn(&Node) -> bool) {
    for _ in 0..1_000_000 {
        if holds(node) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the condition never held");
}

/// Waits until the `Async.` call of `task` is parked, waiting for its turn on the object.
async fn parked(node: &Arc<Node>, task: &Value) {
    let task = task.as_str().unwrap().to_string();
    until(node, |n| n.waiting_tasks.lock().unwrap().contains(&task)).await;
}

/// Waits until the `Async.` call of `task` has finished running (its outcome recorded).
async fn ended(node: &Arc<Node>, task: &Value) {
    let task = task.as_str().unwrap().to_string();
    until(node, |n| !n.running_tasks.lock().unwrap().contains(&task)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_operation_waits_for_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path());
    let s = root(&node).await;
    let vm = call(&node, "VM.create", vec![s.clone(), vm_record("busy")]).await.unwrap();
    hold(&node, &vm, vec![("OpaqueRef:other-task", "clean_shutdown")]).await;
    let task = call(&node, "Async.VM.destroy", vec![s.clone(), vm.clone()]).await.unwrap();
    parked(&node, &task).await;
    assert_eq!(status(&node, &s, &task).await, "pending", "the destroy must wait, not fail at once");
    assert!(call(&node, "VM.get_record", vec![s.clone(), vm.clone()]).await.is_ok());
    hold(&node, &vm, vec![]).await;
    assert_eq!(wait_done(&node, &s, &task).await, "success");
    assert_eq!(
        call(&node, "VM.get_record", vec![s.clone(), vm.clone()]).await,
        Err(vec!["HANDLE_INVALID".into(), "VM".into(), vm.as_str().unwrap().into()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_operation_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path());
    let s = root(&node).await;
    let vm = call(&node, "VM.create", vec![s.clone(), vm_record("busy")]).await.unwrap();
    hold(&node, &vm, vec![("OpaqueRef:other-task", "clean_shutdown")]).await;
    let task = call(&node, "Async.VM.destroy", vec![s.clone(), vm.clone()]).await.unwrap();
    parked(&node, &task).await;
    call(&node, "task.cancel", vec![s.clone(), task.clone()]).await.unwrap();
    assert_eq!(wait_done(&node, &s, &task).await, "cancelled");
    let info = call(&node, "task.get_error_info", vec![s.clone(), task.clone()]).await.unwrap();
    assert_eq!(info, Value::Set(vec![Value::str("TASK_CANCELLED"), Value::str(task.as_str().unwrap())]));
    hold(&node, &vm, vec![]).await;
    ended(&node, &task).await;
    assert!(
        call(&node, "VM.get_record", vec![s.clone(), vm.clone()]).await.is_ok(),
        "a cancelled destroy must not run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_or_an_operator_may_destroy_a_task() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path());
    for name in ["alice", "bob"] {
        add_user(&node, name, "vm-operator", "secret").await;
    }
    let tcp = tcp();
    let alice = call_as(&node, &tcp, "session.login_with_password", vec![Value::str("alice"), Value::str("secret")])
        .await
        .unwrap();
    let bob = call_as(&node, &tcp, "session.login_with_password", vec![Value::str("bob"), Value::str("secret")])
        .await
        .unwrap();
    let task =
        call_as(&node, &tcp, "task.create", vec![alice.clone(), Value::str("mine"), Value::str("")]).await.unwrap();
    let denied = call_as(&node, &tcp, "task.destroy", vec![bob.clone(), task.clone()]).await.unwrap_err();
    assert_eq!(denied[0], "RBAC_PERMISSION_DENIED");
    assert_eq!(denied[1], "task.destroy/any");
    call_as(&node, &tcp, "task.cancel", vec![alice.clone(), task.clone()]).await.unwrap();
    assert_eq!(status(&node, &root(&node).await, &task).await, "cancelled");
    call_as(&node, &tcp, "task.destroy", vec![alice.clone(), task.clone()]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_pending_at_a_stop_are_failed_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let task = {
        let node = open(dir.path());
        let s = root(&node).await;
        let task =
            call(&node, "task.create", vec![s.clone(), Value::str("left behind"), Value::str("")]).await.unwrap();
        assert_eq!(status(&node, &s, &task).await, "pending");
        tokio::task::block_in_place(|| drop(Arc::try_unwrap(node).ok().expect("one owner")));
        task
    };
    let node = open(dir.path());
    let s = root(&node).await;
    assert_eq!(status(&node, &s, &task).await, "failure");
    let info = call(&node, "task.get_error_info", vec![s.clone(), task.clone()]).await.unwrap();
    assert_eq!(info.as_set().unwrap()[0], Value::str("INTERNAL_ERROR"));
}
