//! The VM's life past start and stop, through the node's whole call path on the simulated host:
//! snapshots, checkpoints and reverts, destroy, `power_state_reset`, a localhost `pool_migrate`,
//! the lifecycle messages, the host's own messages, and the rules for concurrent operations
//! (a second call waits its turn; a hard shutdown cancels a clean one). Expected codes and
//! parameters are xapi's (docs/xenapi-semantics.md §g, §i; xapi_vm_lifecycle.ml,
//! xapi_vm_snapshot.ml, xapi_vm.ml, xapi_host.ml, message_forwarding.ml).

mod node_support;

use std::sync::Arc;
use std::time::Duration;

use node_support::{call, first_start, open};
use xenledger::clock::VirtualClock;
use xenledger::host::SimHost;
use xenledger::ledger::Ledger;
use xenledger::node::operations::Backend;
use xenledger::node::Node;
use xenledger::store::MemoryLog;
use xenledger::value::Value;
use xenledger::vault::Vault;

const NULL: &str = "OpaqueRef:NULL";

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

async fn session(node: &Arc<Node>) -> String {
    text(&call(node, "session.login_with_password", vec![s("root"), s(""), s("1.0"), s("node_vm")]).await.unwrap())
}

async fn ok(node: &Arc<Node>, sess: &str, method: &str, mut args: Vec<Value>) -> Value {
    args.insert(0, s(sess));
    match call(node, method, args).await {
        Ok(v) => v,
        Err(e) => panic!("{method}: {e:?}"),
    }
}

async fn err(node: &Arc<Node>, sess: &str, method: &str, mut args: Vec<Value>) -> Vec<String> {
    args.insert(0, s(sess));
    call(node, method, args).await.expect_err(method)
}

async fn get(node: &Arc<Node>, sess: &str, class: &str, field: &str, r: &str) -> Value {
    ok(node, sess, &format!("{class}.get_{field}"), vec![s(r)]).await
}

fn refs(v: &Value) -> Vec<String> {
    v.as_set().unwrap_or(&[]).iter().map(text).collect()
}

/// A provisioned VM from the Debian template: one 10 GiB disk, halted.
async fn new_vm(node: &Arc<Node>, sess: &str, name: &str) -> String {
    let templates = ok(node, sess, "VM.get_by_name_label", vec![s("Debian Bookworm 12")]).await;
    let template = refs(&templates)[0].clone();
    let vm = text(&ok(node, sess, "VM.clone", vec![s(&template), s(name)]).await);
    ok(node, sess, "VM.provision", vec![s(&vm)]).await;
    vm
}

/// The disk VDIs of a VM.
async fn disks(node: &Arc<Node>, sess: &str, vm: &str) -> Vec<String> {
    let mut out = Vec::new();
    for vbd in refs(&get(node, sess, "VM", "VBDs", vm).await) {
        let vdi = text(&get(node, sess, "VBD", "VDI", &vbd).await);
        if vdi != NULL {
            out.push(vdi);
        }
    }
    out
}

/// The names of the messages about `vm`, sorted (their timestamps are seconds: several share one).
async fn messages(node: &Arc<Node>, sess: &str, vm: &str) -> Vec<String> {
    let uuid = text(&get(node, sess, "VM", "uuid", vm).await);
    let all = ok(node, sess, "message.get_all_records", vec![]).await;
    let mut out: Vec<String> = Vec::new();
    for (_, record) in all.as_map().unwrap_or(&[]) {
        let Value::Record(members) = record.materialized() else { panic!("a record") };
        let field = |n: &str| members.iter().find(|(k, _)| k == n).unwrap().1.clone();
        if text(&field("obj_uuid")) == uuid {
            assert!(matches!(field("timestamp"), Value::DateTime(_)));
            assert_eq!(field("priority"), Value::Int(5), "api_messages.ml");
            out.push(text(&field("name")));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_then_revert_puts_the_vm_back() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let [old_disk] = disks(&node, &sess, &vm).await.try_into().unwrap();
    ok(&node, &sess, "VM.set_name_description", vec![s(&vm), s("before")]).await;

    let snap = text(&ok(&node, &sess, "VM.snapshot", vec![s(&vm), s("snap"), Value::Set(vec![])]).await);
    // xapi_vm_clone.ml copy_vm_record: a snapshot is a template, points at its VM, and becomes
    // the VM's parent.
    assert_eq!(get(&node, &sess, "VM", "is_a_snapshot", &snap).await, Value::Bool(true));
    assert_eq!(get(&node, &sess, "VM", "is_a_template", &snap).await, Value::Bool(true));
    assert_eq!(text(&get(&node, &sess, "VM", "snapshot_of", &snap).await), vm);
    assert_eq!(refs(&get(&node, &sess, "VM", "snapshots", &vm).await), vec![snap.clone()]);
    assert_eq!(text(&get(&node, &sess, "VM", "parent", &vm).await), snap);
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &snap).await), "Halted");
    let info = get(&node, &sess, "VM", "snapshot_info", &snap).await;
    assert!(format!("{info:?}").contains("crash_consistent"), "{info:?}");
    let [snap_disk] = disks(&node, &sess, &snap).await.try_into().unwrap();
    assert_ne!(snap_disk, old_disk);
    assert_eq!(get(&node, &sess, "VDI", "is_a_snapshot", &snap_disk).await, Value::Bool(true));
    assert_eq!(text(&get(&node, &sess, "VDI", "snapshot_of", &snap_disk).await), old_disk);
    // A snapshot allows what xapi's check_snapshot allows: no start.
    let e = err(&node, &sess, "VM.start", vec![s(&snap), Value::Bool(false), Value::Bool(false)]).await;
    assert_eq!(e, ["VM_IS_SNAPSHOT", &snap, "start"]);
    // Reverting a VM that is no snapshot: REVERT_ONLY_ALLOWED_ON_SNAPSHOT with no parameters.
    assert_eq!(err(&node, &sess, "VM.revert", vec![s(&vm)]).await, ["REVERT_ONLY_ALLOWED_ON_SNAPSHOT"]);

    ok(&node, &sess, "VM.set_name_description", vec![s(&vm), s("after")]).await;
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    ok(&node, &sess, "VM.revert", vec![s(&snap)]).await;
    // Back as the snapshot had it: halted (the domain ended), its configuration, a fresh copy of
    // the snapshot's disk in place of the old one, which is gone.
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &vm).await), "Halted");
    assert_eq!(text(&get(&node, &sess, "VM", "name_description", &vm).await), "before");
    assert_eq!(text(&get(&node, &sess, "VM", "name_label", &vm).await), "vm");
    assert_eq!(get(&node, &sess, "VM", "is_a_snapshot", &vm).await, Value::Bool(false));
    let [new_disk] = disks(&node, &sess, &vm).await.try_into().unwrap();
    assert!(new_disk != old_disk && new_disk != snap_disk);
    let e = err(&node, &sess, "VDI.get_uuid", vec![s(&old_disk)]).await;
    assert_eq!(e, ["HANDLE_INVALID", "VDI", &old_disk]);
    assert_eq!(text(&get(&node, &sess, "VDI", "snapshot_of", &snap_disk).await), new_disk);
    assert_eq!(text(&get(&node, &sess, "VM", "parent", &vm).await), snap);
    assert!(get(&node, &sess, "VM", "allowed_operations", &vm)
        .await
        .as_set()
        .unwrap()
        .contains(&Value::Enum("start".into())));
    assert_eq!(
        messages(&node, &sess, &vm).await,
        ["VM_SNAPSHOTTED", "VM_SNAPSHOT_REVERTED", "VM_STARTED"],
        "message_forwarding.ml create_vm_message"
    );
    // The VM can run again from the reverted disk.
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    // A snapshot goes like any non-default template: with its devices, not its VM.
    ok(&node, &sess, "VM.destroy", vec![s(&snap)]).await;
    assert!(refs(&get(&node, &sess, "VM", "snapshots", &vm).await).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_keeps_the_memory_and_a_revert_to_it_leaves_the_vm_suspended() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    // A halted VM has no memory to keep: checkpoint needs paused, suspended or running.
    let e = err(&node, &sess, "VM.checkpoint", vec![s(&vm), s("c")]).await;
    assert_eq!(e, ["VM_BAD_POWER_STATE", &vm, "paused, suspended, running", "halted"]);
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    let domid = get(&node, &sess, "VM", "domid", &vm).await;
    let cp = text(&ok(&node, &sess, "VM.checkpoint", vec![s(&vm), s("cp")]).await);
    // The VM ran on; the checkpoint is suspended with its own image.
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &vm).await), "Running");
    assert_eq!(get(&node, &sess, "VM", "domid", &vm).await, domid);
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &cp).await), "Suspended");
    let image = text(&get(&node, &sess, "VM", "suspend_VDI", &cp).await);
    assert_eq!(text(&get(&node, &sess, "VDI", "type", &image).await), "suspend");

    ok(&node, &sess, "VM.hard_shutdown", vec![s(&vm)]).await;
    ok(&node, &sess, "VM.revert", vec![s(&cp)]).await;
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &vm).await), "Suspended");
    let own_image = text(&get(&node, &sess, "VM", "suspend_VDI", &vm).await);
    assert!(own_image != NULL && own_image != image);
    // The simulated host agrees: the VM resumes from the copied image.
    ok(&node, &sess, "VM.resume", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &vm).await), "Running");
    assert_eq!(text(&get(&node, &sess, "VM", "suspend_VDI", &vm).await), NULL);
    // VM.snapshot_with_quiesce was removed from the API: MESSAGE_REMOVED (gen_server.ml).
    assert_eq!(err(&node, &sess, "VM.snapshot_with_quiesce", vec![s(&vm), s("q")]).await, ["MESSAGE_REMOVED"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_follows_xapis_rules_and_takes_the_devices_with_it() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let templates = ok(&node, &sess, "VM.get_by_name_label", vec![s("Debian Bookworm 12")]).await;
    let template = refs(&templates)[0].clone();
    // A default template is refused by check_template (before VM_CANNOT_DELETE_DEFAULT_TEMPLATE).
    assert_eq!(err(&node, &sess, "VM.destroy", vec![s(&template)]).await, ["VM_IS_TEMPLATE", &template, "destroy"]);
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    let e = err(&node, &sess, "VM.destroy", vec![s(&vm)]).await;
    assert_eq!(e, ["VM_BAD_POWER_STATE", &vm, "halted, suspended", "running"]);
    let dom0 = text(&get(&node, &sess, "host", "control_domain", &node.host).await);
    assert_eq!(err(&node, &sess, "VM.destroy", vec![s(&dom0)]).await[0], "VM_BAD_POWER_STATE");
    ok(&node, &sess, "VM.shutdown", vec![s(&vm)]).await;

    let vbds = refs(&get(&node, &sess, "VM", "VBDs", &vm).await);
    let vdis = disks(&node, &sess, &vm).await;
    let metrics = text(&get(&node, &sess, "VM", "metrics", &vm).await);
    ok(&node, &sess, "VM.destroy", vec![s(&vm)]).await;
    assert_eq!(err(&node, &sess, "VM.get_uuid", vec![s(&vm)]).await, ["HANDLE_INVALID", "VM", &vm]);
    assert_eq!(err(&node, &sess, "VBD.get_uuid", vec![s(&vbds[0])]).await[0], "HANDLE_INVALID");
    assert_eq!(err(&node, &sess, "VM_metrics.get_uuid", vec![s(&metrics)]).await[0], "HANDLE_INVALID");
    // The disks stay (xapi_vm_helpers.ml destroy deletes VBDs, not VDIs).
    assert_eq!(refs(&get(&node, &sess, "VDI", "VBDs", &vdis[0]).await), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn power_state_reset_and_a_localhost_migration() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let dom0 = text(&get(&node, &sess, "host", "control_domain", &node.host).await);
    assert_eq!(err(&node, &sess, "VM.power_state_reset", vec![s(&dom0)]).await, ["CANNOT_RESET_CONTROL_DOMAIN", &dom0]);
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    // The host has its domain: xapi refuses (DOMAIN_EXISTS, the VM alone).
    assert_eq!(err(&node, &sess, "VM.power_state_reset", vec![s(&vm)]).await, ["DOMAIN_EXISTS", &vm]);
    assert!(get(&node, &sess, "VM", "current_operations", &vm).await.as_map().unwrap().is_empty());

    let domid = get(&node, &sess, "VM", "domid", &vm).await;
    ok(&node, &sess, "VM.pool_migrate", vec![s(&vm), s(&node.host), Value::Map(vec![])]).await;
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &vm).await), "Running");
    assert_eq!(text(&get(&node, &sess, "VM", "resident_on", &vm).await), node.host);
    assert_ne!(get(&node, &sess, "VM", "domid", &vm).await, domid, "a new domain");
    assert_eq!(messages(&node, &sess, &vm).await, ["VM_MIGRATED", "VM_STARTED"]);

    ok(&node, &sess, "VM.hard_shutdown", vec![s(&vm)]).await;
    ok(&node, &sess, "VM.power_state_reset", vec![s(&vm)]).await;
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &vm).await), "Halted");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_messages() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let host = node.host.clone();
    let vm = new_vm(&node, &sess, "vm").await;
    // CPUs and memory are the machine's (§i).
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(refs(&get(&node, &sess, "host", "host_CPUs", &host).await).len(), cpus);
    let Value::DateTime(t) = ok(&node, &sess, "host.get_servertime", vec![s(&host)]).await else {
        panic!("a datetime")
    };
    assert!(t > 1_700_000_000);
    let e = err(&node, &sess, "host.call_plugin", vec![s(&host), s("echo"), s("main"), Value::Map(vec![])]).await;
    assert_eq!(e, ["XENAPI_MISSING_PLUGIN", "echo"]);
    // Reboot and shutdown need a disabled host (HOST_NOT_DISABLED, no parameters).
    assert_eq!(err(&node, &sess, "host.reboot", vec![s(&host)]).await, ["HOST_NOT_DISABLED"]);

    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    assert_eq!(
        err(&node, &sess, "host.evacuate", vec![s(&host), s(NULL), Value::Int(0)]).await,
        ["NO_HOSTS_AVAILABLE"]
    );
    ok(&node, &sess, "host.disable", vec![s(&host)]).await;
    assert_eq!(get(&node, &sess, "host", "enabled", &host).await, Value::Bool(false));
    let vm2 = new_vm(&node, &sess, "vm2").await;
    // Placement finds no host; naming the host says why (xapi_vm_helpers.ml).
    let e = err(&node, &sess, "VM.start", vec![s(&vm2), Value::Bool(false), Value::Bool(false)]).await;
    assert_eq!(e, ["NO_HOSTS_AVAILABLE"]);
    let e = err(&node, &sess, "VM.start_on", vec![s(&vm2), s(&host), Value::Bool(false), Value::Bool(false)]).await;
    assert_eq!(e, ["HOST_DISABLED", &host]);
    let e = err(&node, &sess, "VM.assert_can_boot_here", vec![s(&vm2), s(&host)]).await;
    assert_eq!(e, ["HOST_DISABLED", &host]);
    // A reboot stops what runs and brings the host back enabled.
    ok(&node, &sess, "host.reboot", vec![s(&host)]).await;
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &vm).await), "Halted");
    assert_eq!(get(&node, &sess, "host", "enabled", &host).await, Value::Bool(true));
    ok(&node, &sess, "VM.assert_can_boot_here", vec![s(&vm2), s(&host)]).await;
    ok(&node, &sess, "host.evacuate", vec![s(&host), s(NULL), Value::Int(0)]).await;
}

/// A node whose simulated effects take their real time on a virtual clock the test moves.
fn slow_node() -> (Arc<Node>, Arc<VirtualClock>) {
    let clock = Arc::new(VirtualClock::at_2026());
    let ledger = Ledger::open_on(Arc::new(MemoryLog::new()), Vault::generate(), clock.clone()).unwrap();
    let backend = Backend { host: Arc::new(SimHost::new()), speed: 1.0 };
    let (node, _) = tokio::task::block_in_place(|| Node::start_with(ledger, &first_start(), backend)).unwrap();
    (node, clock)
}

/// Moves the virtual clock until `done` holds (each step lets the node's tasks run).
async fn run_clock_until(clock: &VirtualClock, mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        clock.advance(Duration::from_millis(100));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("never happened");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_start_waits_its_turn_and_a_hard_shutdown_cancels_a_clean_one() {
    let (node, clock) = slow_node();
    let sess = session(&node).await;
    let create = {
        let (node, sess) = (node.clone(), sess.clone());
        tokio::spawn(async move { new_vm(&node, &sess, "vm").await })
    };
    run_clock_until(&clock, || create.is_finished()).await;
    let vm = create.await.unwrap();

    // Two sync starts: the second waits for the first (xapi's retry policy), then finds the VM
    // running.
    let start = |node: Arc<Node>, sess: String, vm: String| {
        tokio::spawn(async move {
            let args = vec![s(&sess), s(&vm), Value::Bool(false), Value::Bool(false)];
            call(&node, "VM.start", args).await
        })
    };
    let first = start(node.clone(), sess.clone(), vm.clone());
    run_clock_until(&clock, || !node.long_running.lock().unwrap().is_empty()).await;
    let second = start(node.clone(), sess.clone(), vm.clone());
    run_clock_until(&clock, || first.is_finished() && second.is_finished()).await;
    let outcomes = [first.await.unwrap(), second.await.unwrap()];
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert_eq!(outcomes[1], Err(vec!["VM_BAD_POWER_STATE".to_string(), vm.clone(), "halted".into(), "running".into()]));

    // A clean shutdown under way is cancelled by a hard one (message_forwarding.ml hard_shutdown).
    let clean = text(&ok(&node, &sess, "Async.VM.clean_shutdown", vec![s(&vm)]).await);
    run_clock_until(&clock, || !node.long_running.lock().unwrap().is_empty()).await;
    let hard = {
        let (node, sess, vm) = (node.clone(), sess.clone(), vm.clone());
        tokio::spawn(async move { call(&node, "VM.hard_shutdown", vec![s(&sess), s(&vm)]).await })
    };
    run_clock_until(&clock, || hard.is_finished()).await;
    hard.await.unwrap().unwrap();
    assert_eq!(text(&get(&node, &sess, "task", "status", &clean).await), "cancelled");
    let info = get(&node, &sess, "task", "error_info", &clean).await;
    assert_eq!(refs(&info), ["TASK_CANCELLED", &clean]);
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &vm).await), "Halted");
    assert!(get(&node, &sess, "VM", "current_operations", &vm).await.as_map().unwrap().is_empty());
    let names = messages(&node, &sess, &vm).await;
    assert_eq!(names, ["VM_SHUTDOWN", "VM_STARTED"], "a cancelled operation leaves no message");

    // task.cancel stops a long operation before its effect.
    let starting =
        text(&ok(&node, &sess, "Async.VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await);
    run_clock_until(&clock, || !node.long_running.lock().unwrap().is_empty()).await;
    ok(&node, &sess, "task.cancel", vec![s(&starting)]).await;
    run_clock_until(&clock, || node.long_running.lock().unwrap().is_empty()).await;
    assert_eq!(text(&get(&node, &sess, "task", "status", &starting).await), "cancelled");
    assert_eq!(text(&get(&node, &sess, "VM", "power_state", &vm).await), "Halted");
}

#[tokio::test(flavor = "multi_thread")]
async fn setters_keep_xapis_constraints() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let gib = |n: i64| Value::Int(n << 30);
    // Memory: static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max (xapi_vm_memory_constraints.ml).
    let e = err(&node, &sess, "VM.set_memory_dynamic_range", vec![s(&vm), gib(2), gib(1)]).await;
    assert_eq!(e, ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]);
    ok(&node, &sess, "VM.set_memory_static_range", vec![s(&vm), Value::Int(512 << 20), gib(4)]).await;
    ok(&node, &sess, "VM.set_memory_dynamic_range", vec![s(&vm), gib(1), gib(3)]).await;
    assert_eq!(get(&node, &sess, "VM", "memory_target", &vm).await, gib(1));
    ok(&node, &sess, "VM.set_memory", vec![s(&vm), gib(2)]).await;
    for f in ["memory_static_max", "memory_dynamic_max", "memory_dynamic_min", "memory_target"] {
        assert_eq!(get(&node, &sess, "VM", f, &vm).await, gib(2), "{f}");
    }
    // VCPUs (xapi_vm.ml set_VCPUs_max / set_VCPUs_at_startup).
    let rule = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max";
    let e = err(&node, &sess, "VM.set_VCPUs_at_startup", vec![s(&vm), Value::Int(64)]).await;
    assert_eq!(e, ["INVALID_VALUE", rule, "64"]);
    // (No more VCPUs than the machine's CPUs, or the start below finds no host: CI has two.)
    ok(&node, &sess, "VM.set_VCPUs_max", vec![s(&vm), Value::Int(2)]).await;
    ok(&node, &sess, "VM.set_VCPUs_at_startup", vec![s(&vm), Value::Int(2)]).await;
    assert_eq!(err(&node, &sess, "VM.set_VCPUs_max", vec![s(&vm), Value::Int(1)]).await, ["INVALID_VALUE", rule, "1"]);
    // The boot policy decides the domain type.
    ok(&node, &sess, "VM.set_HVM_boot_policy", vec![s(&vm), s("")]).await;
    assert_eq!(text(&get(&node, &sess, "VM", "domain_type", &vm).await), "pv");
    ok(&node, &sess, "VM.set_domain_type", vec![s(&vm), s("hvm")]).await;
    assert_eq!(text(&get(&node, &sess, "VM", "HVM_boot_policy", &vm).await), "BIOS order");
    let e = err(&node, &sess, "VM.set_start_delay", vec![s(&vm), Value::Int(-1)]).await;
    assert_eq!(e, ["INVALID_VALUE", "start_delay must be non-negative", "-1"]);
    let e = err(&node, &sess, "VM.set_HVM_shadow_multiplier", vec![s(&vm), Value::Float(0.5)]).await;
    assert_eq!(e, ["INVALID_VALUE", "multiplier", "0.5"]);
    // Running: the static range is refused, the dynamic range is not.
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    let e = err(&node, &sess, "VM.set_memory_static_max", vec![s(&vm), gib(3)]).await;
    assert_eq!(e, ["VM_BAD_POWER_STATE", &vm, "halted", "running"]);
    ok(&node, &sess, "VM.set_memory_dynamic_min", vec![s(&vm), gib(1)]).await;
    let e = err(&node, &sess, "VM.set_has_vendor_device", vec![s(&vm), Value::Bool(true)]).await;
    assert_eq!(e, ["VM_BAD_POWER_STATE", &vm, "halted", "running"]);
    // Questions.
    let vbds = ok(&node, &sess, "VM.get_allowed_VBD_devices", vec![s(&vm)]).await;
    assert_eq!(refs(&vbds).len(), 254, "0-254 less the disk at 0");
    assert!(!refs(&vbds).contains(&"0".to_string()));
    assert_eq!(refs(&ok(&node, &sess, "VM.get_allowed_VIF_devices", vec![s(&vm)]).await).len(), 16);
    let e = err(&node, &sess, "VM.assert_operation_valid", vec![s(&vm), s("start")]).await;
    assert_eq!(e, ["VM_BAD_POWER_STATE", &vm, "halted", "running"]);
    let local_sr = text(&get(&node, &sess, "VDI", "SR", &disks(&node, &sess, &vm).await[0]).await);
    assert_eq!(
        err(&node, &sess, "VM.assert_agile", vec![s(&vm)]).await,
        ["HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", &local_sr]
    );
    assert_eq!(refs(&ok(&node, &sess, "VM.get_possible_hosts", vec![s(&vm)]).await), vec![node.host.clone()]);
    let Value::Int(overhead) = ok(&node, &sess, "VM.compute_memory_overhead", vec![s(&vm)]).await else { panic!() };
    assert!(overhead > 0 && overhead % (1 << 20) == 0);
    let e = err(&node, &sess, "VM.send_sysrq", vec![s(&vm), s("b")]).await;
    assert_eq!(e, ["NOT_IMPLEMENTED", "send_sysrq"], "xapi's backend refuses it too");
}

#[tokio::test(flavor = "multi_thread")]
async fn short_calls_take_the_idls_defaults() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    // Xen Orchestra calls VM.snapshot without ignore_vdis (datamodel_vm.ml param_default).
    let snap = text(&ok(&node, &sess, "VM.snapshot", vec![s(&vm), s("xo")]).await);
    assert_eq!(text(&get(&node, &sess, "VM", "snapshot_of", &snap).await), vm);
    ok(&node, &sess, "host.evacuate", vec![s(&node.host)]).await;
    // The count says the required parameters (gen_server.ml).
    let e = err(&node, &sess, "VM.snapshot", vec![s(&vm)]).await;
    assert_eq!(e, ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.snapshot", "2", "1"]);
}

/// A VBD record for `VBD.create` (every member the constructor takes).
fn vbd_record(vm: &str, vdi: &str, userdevice: &str, kind: &str, mode: &str, empty: bool) -> Value {
    let m = |k: &str, v: Value| (k.to_string(), v);
    Value::Record(vec![
        m("VM", Value::Ref(vm.into())),
        m("VDI", Value::Ref(vdi.into())),
        m("userdevice", s(userdevice)),
        m("bootable", Value::Bool(false)),
        m("mode", Value::Enum(mode.into())),
        m("type", Value::Enum(kind.into())),
        m("unpluggable", Value::Bool(true)),
        m("empty", Value::Bool(empty)),
        m("other_config", Value::Map(vec![])),
        m("qos_algorithm_type", s("")),
        m("qos_algorithm_params", Value::Map(vec![])),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn disks_are_files_and_devices_plug_into_a_running_vm() {
    let (dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let pool = refs(&ok(&node, &sess, "pool.get_all", vec![]).await)[0].clone();
    let sr = text(&get(&node, &sess, "pool", "default_SR", &pool).await);
    let m = |k: &str, v: Value| (k.to_string(), v);
    let record = Value::Record(vec![
        m("name_label", s("data")),
        m("name_description", s("")),
        m("SR", Value::Ref(sr.clone())),
        m("virtual_size", Value::Int(5_000_000)),
        m("type", Value::Enum("user".into())),
        m("sharable", Value::Bool(false)),
        m("read_only", Value::Bool(false)),
        m("other_config", Value::Map(vec![])),
    ]);
    let vdi = text(&ok(&node, &sess, "VDI.create", vec![record]).await);
    // Rounded up to the disk format's 2 MiB (docs §h.3), a real sparse file of that size.
    assert_eq!(get(&node, &sess, "VDI", "virtual_size", &vdi).await, Value::Int(6 << 20));
    let uuid = text(&get(&node, &sess, "VDI", "uuid", &vdi).await);
    let path = dir.path().join("sr-local").join(format!("{uuid}.img"));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 6 << 20);
    ok(&node, &sess, "VDI.resize", vec![s(&vdi), Value::Int(10 << 20)]).await;
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 10 << 20);

    // A VBD for it: detached until the VM runs and it is plugged.
    let vbd = text(&ok(&node, &sess, "VBD.create", vec![vbd_record(&vm, &vdi, "1", "Disk", "RW", false)]).await);
    assert_eq!(err(&node, &sess, "VBD.plug", vec![s(&vbd)]).await, ["VM_BAD_POWER_STATE", &vm, "running", "halted"]);
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    assert_eq!(get(&node, &sess, "VBD", "currently_attached", &vbd).await, Value::Bool(true), "a start attaches");
    assert_eq!(err(&node, &sess, "VBD.plug", vec![s(&vbd)]).await, ["DEVICE_ALREADY_ATTACHED", &vbd]);
    assert_eq!(err(&node, &sess, "VDI.destroy", vec![s(&vdi)]).await, ["VDI_IN_USE", &vdi, "destroy"]);
    ok(&node, &sess, "VBD.unplug", vec![s(&vbd)]).await;
    assert_eq!(get(&node, &sess, "VBD", "currently_attached", &vbd).await, Value::Bool(false));
    assert_eq!(err(&node, &sess, "VBD.unplug", vec![s(&vbd)]).await, ["DEVICE_ALREADY_DETACHED", &vbd]);
    ok(&node, &sess, "VBD.plug", vec![s(&vbd)]).await;
    ok(&node, &sess, "VBD.unplug_force", vec![s(&vbd)]).await;

    // A CD drive: empty, then a disc, then empty again.
    let cd = text(&ok(&node, &sess, "VBD.create", vec![vbd_record(&vm, NULL, "3", "CD", "RO", true)]).await);
    assert_eq!(err(&node, &sess, "VBD.eject", vec![s(&cd)]).await, ["VBD_IS_EMPTY", &cd]);
    ok(&node, &sess, "VBD.insert", vec![s(&cd), s(&vdi)]).await;
    assert_eq!(text(&get(&node, &sess, "VBD", "VDI", &cd).await), vdi);
    assert_eq!(err(&node, &sess, "VBD.insert", vec![s(&cd), s(&vdi)]).await, ["VBD_NOT_EMPTY", &cd]);
    ok(&node, &sess, "VBD.eject", vec![s(&cd)]).await;
    assert_eq!(get(&node, &sess, "VBD", "empty", &cd).await, Value::Bool(true));
    assert_eq!(err(&node, &sess, "VBD.insert", vec![s(&vbd), s(&vdi)]).await, ["VBD_NOT_REMOVABLE_MEDIA", &vbd]);

    // A VIF plugs and unplugs too.
    let network = refs(&ok(&node, &sess, "network.get_all", vec![]).await)[0].clone();
    let vif_record = Value::Record(vec![
        m("device", s("0")),
        m("network", Value::Ref(network)),
        m("VM", Value::Ref(vm.clone())),
        m("MAC", s("")),
        m("MTU", Value::Int(1500)),
        m("other_config", Value::Map(vec![])),
        m("qos_algorithm_type", s("")),
        m("qos_algorithm_params", Value::Map(vec![])),
    ]);
    let vif = text(&ok(&node, &sess, "VIF.create", vec![vif_record]).await);
    ok(&node, &sess, "VIF.plug", vec![s(&vif)]).await;
    assert_eq!(get(&node, &sess, "VIF", "currently_attached", &vif).await, Value::Bool(true));
    ok(&node, &sess, "VIF.unplug", vec![s(&vif)]).await;
    assert_eq!(err(&node, &sess, "VIF.unplug", vec![s(&vif)]).await, ["DEVICE_ALREADY_DETACHED", &vif]);

    // Destroying the disk takes its file and its VBDs.
    ok(&node, &sess, "VM.hard_shutdown", vec![s(&vm)]).await;
    ok(&node, &sess, "VDI.destroy", vec![s(&vdi)]).await;
    assert!(!path.exists());
    assert_eq!(err(&node, &sess, "VBD.get_uuid", vec![s(&vbd)]).await[0], "HANDLE_INVALID");
}

#[tokio::test(flavor = "multi_thread")]
async fn attached_devices_are_not_destroyed() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    let vbd = refs(&get(&node, &sess, "VM", "VBDs", &vm).await)[0].clone();
    let e = err(&node, &sess, "VBD.destroy", vec![s(&vbd)]).await;
    assert_eq!(e[0], "OPERATION_NOT_ALLOWED");
    assert!(e[1].starts_with("VBD '") && e[1].contains("still attached to"), "{e:?}");
    ok(&node, &sess, "VM.shutdown", vec![s(&vm)]).await;
    ok(&node, &sess, "VBD.destroy", vec![s(&vbd)]).await;
    assert!(refs(&get(&node, &sess, "VM", "VBDs", &vm).await).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_messages_answer_message_removed_after_the_session_check() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    // Removed in the datamodel's lifecycle (gen_server.ml): the whole VMPP class, an old getter.
    assert_eq!(err(&node, &sess, "VMPP.get_all", vec![]).await, ["MESSAGE_REMOVED"]);
    let vm = new_vm(&node, &sess, "vm").await;
    assert_eq!(err(&node, &sess, "VM.get_is_snapshot_from_vmpp", vec![s(&vm)]).await, ["MESSAGE_REMOVED"]);
    // A bad session is still SESSION_INVALID.
    let e = call(&node, "VMPP.get_all", vec![s("OpaqueRef:nope")]).await.unwrap_err();
    assert_eq!(e[0], "SESSION_INVALID");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disks_bytes_survive_its_copy_clone_and_snapshot() {
    let (dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let [vdi] = disks(&node, &sess, &vm).await.try_into().unwrap();
    let path = |vdi_uuid: &str| dir.path().join("sr-local").join(format!("{vdi_uuid}.img"));
    let uuid = text(&get(&node, &sess, "VDI", "uuid", &vdi).await);
    // A guest wrote a few bytes somewhere in the middle of the disk.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new().write(true).open(path(&uuid)).unwrap();
        file.seek(SeekFrom::Start(5 << 20)).unwrap();
        file.write_all(b"guest data").unwrap();
    }
    let read = |vdi_uuid: String| {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(path(&vdi_uuid)).unwrap();
        file.seek(SeekFrom::Start(5 << 20)).unwrap();
        let mut buf = [0u8; 10];
        file.read_exact(&mut buf).unwrap();
        (buf, file.metadata().unwrap().len())
    };
    for (method, args) in [
        ("VDI.copy", vec![s(&vdi)]),
        ("VDI.clone", vec![s(&vdi), Value::Map(vec![])]),
        ("VDI.snapshot", vec![s(&vdi), Value::Map(vec![])]),
    ] {
        let copy = text(&ok(&node, &sess, method, args).await);
        let copy_uuid = text(&get(&node, &sess, "VDI", "uuid", &copy).await);
        assert_eq!(read(copy_uuid), (*b"guest data", 10 << 30), "{method}");
        assert_eq!(get(&node, &sess, "VDI", "virtual_size", &copy).await, Value::Int(10 << 30));
        let snapshot = method == "VDI.snapshot";
        assert_eq!(get(&node, &sess, "VDI", "is_a_snapshot", &copy).await, Value::Bool(snapshot), "{method}");
        if snapshot {
            assert_eq!(text(&get(&node, &sess, "VDI", "snapshot_of", &copy).await), vdi);
        }
    }
    // A running VM's disk may be snapshotted but not copied (a writer is attached).
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    ok(&node, &sess, "VDI.snapshot", vec![s(&vdi), Value::Map(vec![])]).await;
    assert_eq!(err(&node, &sess, "VDI.copy", vec![s(&vdi)]).await, ["VDI_IN_USE", &vdi, "copy"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_vif_gets_xapis_mac_from_the_vms_seed() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let network = refs(&ok(&node, &sess, "network.get_all", vec![]).await)[0].clone();
    let m = |k: &str, v: Value| (k.to_string(), v);
    let record = |device: &str, mac: &str| {
        Value::Record(vec![
            m("device", s(device)),
            m("network", Value::Ref(network.clone())),
            m("VM", Value::Ref(vm.clone())),
            m("MAC", s(mac)),
            m("MTU", Value::Int(1500)),
            m("other_config", Value::Map(vec![])),
            m("qos_algorithm_type", s("")),
            m("qos_algorithm_params", Value::Map(vec![])),
        ])
    };
    let vif = text(&ok(&node, &sess, "VIF.create", vec![record("0", "")]).await);
    let mac = text(&get(&node, &sess, "VIF", "MAC", &vif).await);
    assert_eq!(mac.len(), 17, "{mac}");
    assert_eq!(get(&node, &sess, "VIF", "MAC_autogenerated", &vif).await, Value::Bool(true));
    // xapi_vif_helpers.ml create: device checks, MAC checks.
    assert_eq!(err(&node, &sess, "VIF.create", vec![record("0", "")]).await, ["DEVICE_ALREADY_EXISTS", "0"]);
    assert_eq!(err(&node, &sess, "VIF.create", vec![record("eth1", "")]).await, ["INVALID_DEVICE", "eth1"]);
    assert_eq!(err(&node, &sess, "VIF.create", vec![record("1", "00:11:22")]).await, ["MAC_INVALID", "00:11:22"]);
    let given = text(&ok(&node, &sess, "VIF.create", vec![record("1", "00:16:3e:00:00:01")]).await);
    assert_eq!(text(&get(&node, &sess, "VIF", "MAC", &given).await), "00:16:3e:00:00:01");
    assert_eq!(get(&node, &sess, "VIF", "MAC_autogenerated", &given).await, Value::Bool(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn vbd_create_checks_and_autodetects_like_xapi() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let [disk] = disks(&node, &sess, &vm).await.try_into().unwrap();
    let create = |record: Value| {
        let (node, sess) = (node.clone(), sess.clone());
        async move { call(&node, "VBD.create", vec![s(&sess), record]).await }
    };
    // xapi_vbd.ml create, in its order.
    let e = create(vbd_record(&vm, NULL, "3", "CD", "RW", true)).await.unwrap_err();
    assert_eq!(e, ["VBD_CDS_MUST_BE_READONLY"]);
    let e = create(vbd_record(&vm, NULL, "3", "Disk", "RW", true)).await.unwrap_err();
    assert_eq!(e, ["VBD_NOT_REMOVABLE_MEDIA", "in constructor"]);
    let e = create(vbd_record(&vm, &disk, "0", "Disk", "RO", false)).await.unwrap_err();
    assert_eq!(e, ["DEVICE_ALREADY_EXISTS", "0"]);
    let e = create(vbd_record(&vm, &disk, "xvda", "Disk", "RO", false)).await.unwrap_err();
    assert_eq!(e, ["DEVICE_ALREADY_EXISTS", "xvda"], "a name and a number are the same disk");
    let e = create(vbd_record(&vm, &disk, "nonsense", "Disk", "RO", false)).await.unwrap_err();
    assert_eq!(e, ["INVALID_DEVICE", "nonsense"]);
    let vbd = text(&create(vbd_record(&vm, NULL, "autodetect", "CD", "RO", true)).await.unwrap());
    assert_eq!(text(&get(&node, &sess, "VBD", "userdevice", &vbd).await), "1", "the first free slot");
    let sr = text(&get(&node, &sess, "VDI", "SR", &disk).await);
    let m = |k: &str, v: Value| (k.to_string(), v);
    let record = Value::Record(vec![
        m("name_label", s("ro")),
        m("name_description", s("")),
        m("SR", Value::Ref(sr)),
        m("virtual_size", Value::Int(1 << 20)),
        m("type", Value::Enum("user".into())),
        m("sharable", Value::Bool(false)),
        m("read_only", Value::Bool(true)),
        m("other_config", Value::Map(vec![])),
    ]);
    let ro = text(&ok(&node, &sess, "VDI.create", vec![record]).await);
    let e = create(vbd_record(&vm, &ro, "2", "Disk", "RW", false)).await.unwrap_err();
    assert_eq!(e, ["VDI_READONLY", &ro]);
    ok(&node, &sess, "VBD.create", vec![vbd_record(&vm, &ro, "2", "Disk", "RO", false)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sr_scan_finds_dropped_files_and_forgets_vanished_ones() {
    let (dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let [disk] = disks(&node, &sess, &vm).await.try_into().unwrap();
    let sr = text(&get(&node, &sess, "VDI", "SR", &disk).await);
    let sr_dir = dir.path().join("sr-local");
    // A disk image put into the directory by hand.
    let dropped = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    std::fs::write(sr_dir.join(format!("{dropped}.img")), vec![7u8; 4096]).unwrap();
    // And the VM's disk file gone (the VM is halted: nothing holds it).
    let disk_uuid = text(&get(&node, &sess, "VDI", "uuid", &disk).await);
    std::fs::remove_file(sr_dir.join(format!("{disk_uuid}.img"))).unwrap();
    std::fs::write(sr_dir.join("notes.txt"), b"not a disk").unwrap();

    ok(&node, &sess, "SR.scan", vec![s(&sr)]).await;
    let found = text(&ok(&node, &sess, "VDI.get_by_uuid", vec![s(dropped)]).await);
    assert_eq!(text(&get(&node, &sess, "VDI", "SR", &found).await), sr);
    assert_eq!(get(&node, &sess, "VDI", "virtual_size", &found).await, Value::Int(4096));
    assert_eq!(err(&node, &sess, "VDI.get_uuid", vec![s(&disk)]).await, ["HANDLE_INVALID", "VDI", &disk]);
    assert!(get(&node, &sess, "VM", "VBDs", &vm).await.as_set().unwrap().is_empty(), "its VBD went too");
    let Value::Int(used) = get(&node, &sess, "SR", "physical_utilisation", &sr).await else { panic!() };
    assert!(used >= 4096);
    // The found disk is an ordinary one: it can be copied.
    ok(&node, &sess, "VDI.copy", vec![s(&found)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unplugged_sr_takes_no_disks_and_boots_no_vm() {
    let (_dir, node) = open();
    let sess = session(&node).await;
    let vm = new_vm(&node, &sess, "vm").await;
    let [disk] = disks(&node, &sess, &vm).await.try_into().unwrap();
    let sr = text(&get(&node, &sess, "VDI", "SR", &disk).await);
    let pbd = refs(&get(&node, &sess, "SR", "PBDs", &sr).await)[0].clone();
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
    // xapi_pbd.ml: not while a running VM here uses a VDI of the SR (VDI_IN_USE naming each
    // such VDI, not the datamodel's [vdi, operation]); idempotent otherwise.
    assert_eq!(err(&node, &sess, "PBD.unplug", vec![s(&pbd)]).await, ["VDI_IN_USE", &disk]);
    assert_eq!(
        err(&node, &sess, "PBD.destroy", vec![s(&pbd)]).await,
        ["OPERATION_NOT_ALLOWED", "PBD is currently attached"]
    );
    ok(&node, &sess, "VM.shutdown", vec![s(&vm)]).await;
    ok(&node, &sess, "PBD.unplug", vec![s(&pbd)]).await;
    ok(&node, &sess, "PBD.unplug", vec![s(&pbd)]).await;
    assert_eq!(get(&node, &sess, "PBD", "currently_attached", &pbd).await, Value::Bool(false));
    let e = err(&node, &sess, "VM.start_on", vec![s(&vm), s(&node.host), Value::Bool(false), Value::Bool(false)]).await;
    assert_eq!(e, ["VM_REQUIRES_SR", &vm, &sr]);
    assert_eq!(err(&node, &sess, "SR.scan", vec![s(&sr)]).await, ["SR_HAS_NO_PBDS", &sr]);
    ok(&node, &sess, "PBD.plug", vec![s(&pbd)]).await;
    ok(&node, &sess, "PBD.plug", vec![s(&pbd)]).await;
    ok(&node, &sess, "VM.start", vec![s(&vm), Value::Bool(false), Value::Bool(false)]).await;
}
