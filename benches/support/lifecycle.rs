//! The `vm-lifecycle` scenario: N clients, each running a VM's whole life over and over through
//! the node's call path (the path every adapter shares) on the simulated host with instant
//! effects: `VM.clone` of the Debian template → `VM.set_memory_limits` (256 MiB, so that every
//! client's VM fits in the host's memory at once) → `VM.provision` (a sparse disk file) →
//! `VM.start` → `VM.shutdown` → `VM.destroy`. All but the memory setter are long operations: an
//! entry that marks it, the host effect, an entry with the outcome. One op is one whole cycle; `calls_per_s` counts the
//! six calls.

use std::sync::Arc;

use serde_json::json;
use tokio::runtime::Runtime;
use xenledger::node::{FirstStart, Node, Origin, Reply};
use xenledger::value::Value;

use super::{run_clients, temp_dir, Options};

const PASSWORD: &str = "bench";

fn call(rt: &Runtime, node: &Arc<Node>, method: &str, params: Vec<Value>) -> Value {
    let origin = Origin { unix: true, peer: "bench".into() };
    match rt.block_on(node.call(method, params, &origin)) {
        Reply::Rpc(Ok(v)) | Reply::Bare(v) => v,
        Reply::Rpc(Err(e)) => panic!("{method}: {e}"),
    }
}

pub fn vm_lifecycle(options: &Options) {
    let clients = options.clients.unwrap_or(16);
    let dir = temp_dir("lifecycle");
    let first =
        FirstStart { root_password: Some(PASSWORD.into()), hostname: "bench".into(), address: "127.0.0.1".into() };
    let (node, _) = Node::open(&dir.path().join("data"), &first).expect("Node::open");
    let rt = Arc::new(tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime"));
    let login = vec![Value::str("root"), Value::str(PASSWORD), Value::str("1.0"), Value::str("bench")];
    let session = call(&rt, &node, "session.login_with_password", login);
    let s = move || session.clone();
    let found = call(&rt, &node, "VM.get_by_name_label", vec![s(), Value::str("Debian Bookworm 12")]);
    let template = found.as_set().and_then(|t| t.first().cloned()).expect("the Debian template");
    let before = node.ledger.snapshot().seq;
    let (node2, rt2) = (node.clone(), rt.clone());
    let run = run_clients(clients, options.seconds, 1, move |client, n| {
        let (node, rt) = (&node2, &rt2);
        let name = Value::str(format!("vm-{client}-{n}"));
        let vm = call(rt, node, "VM.clone", vec![s(), template.clone(), name]);
        let mib256 = Value::Int(256 << 20);
        let limits = vec![s(), vm.clone(), mib256.clone(), mib256.clone(), mib256.clone(), mib256];
        call(rt, node, "VM.set_memory_limits", limits);
        call(rt, node, "VM.provision", vec![s(), vm.clone()]);
        call(rt, node, "VM.start", vec![s(), vm.clone(), Value::Bool(false), Value::Bool(false)]);
        call(rt, node, "VM.shutdown", vec![s(), vm.clone()]);
        call(rt, node, "VM.destroy", vec![s(), vm]);
    });
    let entries = node.ledger.snapshot().seq - before;
    let calls_per_s = (run.ops * 6) as f64 / run.seconds;
    let extra = vec![("calls_per_s", json!(calls_per_s.round())), ("entries", json!(entries))];
    run.report("vm-lifecycle", clients, extra);
    drop(node);
}
