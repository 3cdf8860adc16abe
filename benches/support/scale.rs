//! `scale`: a host with 10,000 VMs (issue "Performance", P6).
//!
//! The server runs in a child process of the bench (the same binary, started with [`CHILD_ENV`]),
//! so that its RSS is its own and the client's copies of the replies do not count. The child:
//!
//! 1. opens a node on a fresh data dir and times durable `VM.set_name_label`s from
//!    [`WRITERS`] threads through `Ledger::invoke` for `--seconds` (the empty-database rate);
//! 2. fills it through the engine: `--vms` VMs (default [`VMS`]) with realistic field values, each
//!    with an empty CD VBD, a VIF on the management network and its `VM_metrics`, then
//!    [`OTHERS`] blobs; the peak RSS of the fill is recorded;
//! 3. times the same writes again on the full state, sampling every 5 ms whether a checkpoint was
//!    being encoded or stored, so each 250 ms window is "with" or "without" a checkpoint;
//! 4. serves the state over HTTPS and says so on stdout.
//!
//! The bench (the client) then logs in and times [`GETS`] `VM.get_all_records` over XML-RPC and
//! over JSON-RPC (after one warm-up call each), and asks the child for its RSS: now, and the peak
//! (`VmHWM`) through the fill and the replies.

use std::io::{BufRead, Write as _};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use xenledger::node::{FirstStart, Node};
use xenledger::rpc::NodeHandler;
use xenledger::schema::schema;
use xenledger::value::{Value, NULL_REF};

use super::https::{self, rss_kb, Conn, Running};
use super::net::{Wire, PASSWORD};
use super::{bench_actor, class_record, load_avg, round2, run_clients, temp_dir, Latencies, Options};

/// Set in the server's child process.
pub const CHILD_ENV: &str = "XENLEDGER_BENCH_SCALE_CHILD";
pub const VMS: usize = 10_000;
/// Objects besides the VMs and their devices.
const OTHERS: usize = 100_000;
const WRITERS: usize = 64;
const GETS: usize = 5;
const WINDOW: Duration = Duration::from_millis(250);

fn map(pairs: &[(&str, &str)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| (Value::str(*k), Value::str(*v))).collect())
}

fn new_ref(node: &Node, method: &str, args: Vec<Value>) -> String {
    let (r, _) = node.ledger.invoke(bench_actor(), method, args).unwrap_or_else(|e| panic!("{method}: {e}"));
    r.as_str().expect("a ref").to_string()
}

/// A VM as a user leaves it after an install: memory, vCPUs, a description, other_config keys,
/// tags; an empty CD drive and a VIF.
fn make_vm(node: &Node, network: &str, i: usize) -> String {
    let gib = Value::Int(1 << 30);
    let vm = new_ref(
        node,
        "VM.create",
        vec![class_record(
            "VM",
            &[
                ("name_label", Value::str(format!("scale-vm-{i:05}"))),
                ("name_description", Value::str(format!("VM {i} of the scale bench, installed from Debian 12"))),
                ("memory_static_max", gib.clone()),
                ("memory_dynamic_max", gib.clone()),
                ("memory_dynamic_min", gib.clone()),
                ("memory_static_min", Value::Int(1 << 28)),
                ("VCPUs_max", Value::Int(2)),
                ("VCPUs_at_startup", Value::Int(2)),
                ("HVM_boot_policy", Value::str("BIOS order")),
                ("HVM_boot_params", map(&[("order", "cdn")])),
                ("platform", map(&[("acpi", "1"), ("apic", "true"), ("pae", "true"), ("viridian", "false")])),
                (
                    "other_config",
                    map(&[
                        ("base_template_name", "Debian Bookworm 12"),
                        ("install-methods", "cdrom,nfs,http,ftp"),
                        ("linux_template", "true"),
                        ("owner", "team-a"),
                    ]),
                ),
                ("tags", Value::Set(vec![Value::str("scale"), Value::str(format!("rack-{}", i % 40))])),
            ],
        )],
    );
    new_ref(
        node,
        "VBD.create",
        vec![class_record(
            "VBD",
            &[
                ("VM", Value::Ref(vm.clone())),
                ("VDI", Value::Ref(NULL_REF.into())),
                ("userdevice", Value::str("3")),
                ("mode", Value::str("RO")),
                ("type", Value::str("CD")),
                ("empty", Value::Bool(true)),
                ("unpluggable", Value::Bool(true)),
            ],
        )],
    );
    new_ref(
        node,
        "VIF.create",
        vec![class_record(
            "VIF",
            &[
                ("VM", Value::Ref(vm.clone())),
                ("network", Value::Ref(network.into())),
                ("device", Value::str("0")),
                ("MTU", Value::Int(1500)),
            ],
        )],
    );
    vm
}

/// Runs `op(thread, i)` for every `i` below `count`, spread over [`WRITERS`] threads.
fn spread(node: &Arc<Node>, count: usize, op: fn(&Node, usize, usize) -> String) -> Vec<String> {
    let handles: Vec<_> = (0..WRITERS)
        .map(|t| {
            let node = node.clone();
            thread::spawn(move || (t..count).step_by(WRITERS).map(|i| op(&node, t, i)).collect::<Vec<_>>())
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().expect("fill thread")).collect()
}

/// Durable renames from [`WRITERS`] threads, each on its own VM, every one timed; latencies split
/// by whether their window saw a checkpoint encoded or stored.
fn timed_writes(node: &Arc<Node>, vms: &Arc<Vec<String>>, seconds: f64) -> serde_json::Value {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    // Window index → a checkpoint was seen in it.
    let windows: Arc<Mutex<Vec<bool>>> = Arc::default();
    let monitor = {
        let (node, stop, windows) = (node.clone(), stop.clone(), windows.clone());
        thread::spawn(move || {
            let stats = node.ledger.checkpoint_stats();
            let mut taken = stats.taken.load(Ordering::Acquire);
            while !stop.load(Ordering::Relaxed) {
                let now_taken = stats.taken.load(Ordering::Acquire);
                let busy = stats.encoding.load(Ordering::Relaxed) || now_taken != taken;
                taken = now_taken;
                let window = (start.elapsed().as_nanos() / WINDOW.as_nanos()) as usize;
                let mut windows = windows.lock().expect("windows");
                if windows.len() <= window {
                    windows.resize(window + 1, false);
                }
                windows[window] |= busy;
                drop(windows);
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let taken_before = node.ledger.checkpoint_stats().taken.load(Ordering::Acquire);
    // (start offset, latency) of every write, per thread.
    let samples: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let (node2, vms2, samples2) = (node.clone(), vms.clone(), samples.clone());
    let run = run_clients(WRITERS, seconds, 1, move |client, n| {
        let began = start.elapsed().as_nanos() as u64;
        let name = Value::str(format!("renamed-{client}-{n}"));
        node2
            .ledger
            .invoke(bench_actor(), "VM.set_name_label", vec![Value::str(&vms2[client]), name])
            .expect("VM.set_name_label");
        let took = start.elapsed().as_nanos() as u64 - began;
        samples2.lock().expect("samples").push((began, took));
    });
    stop.store(true, Ordering::Relaxed);
    monitor.join().expect("monitor");
    let taken = node.ledger.checkpoint_stats().taken.load(Ordering::Acquire) - taken_before;
    let windows = windows.lock().expect("windows").clone();
    let (mut with, mut without) = (Latencies::default(), Latencies::default());
    for (began, took) in samples.lock().expect("samples").iter() {
        let window = (*began / WINDOW.as_nanos() as u64) as usize;
        if windows.get(window).copied().unwrap_or(false) {
            with.0.push(*took);
        } else {
            without.0.push(*took);
        }
    }
    let mut all = Latencies(run.latencies.0.clone());
    json!({
        "ops_per_s": (run.ops as f64 / run.seconds).round(),
        "p50_us": all.percentile_us(0.5),
        "p99_us": all.percentile_us(0.99),
        "checkpoints": taken,
        "writes_in_checkpoint_windows": with.0.len(),
        "p99_us_with_checkpoint": if with.0.is_empty() { json!(null) } else { json!(with.percentile_us(0.99)) },
        "p99_us_without_checkpoint": if without.0.is_empty() { json!(null) } else { json!(without.percentile_us(0.99)) },
        "cpu_s": round2(run.cpu_s),
    })
}

/// The server's side: see the module documentation. Reads `<vms> <seconds>` on stdin.
pub fn child_main() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("the spec");
    let mut words = line.split_whitespace();
    let vm_count: usize = words.next().and_then(|w| w.parse().ok()).expect("vms");
    let seconds: f64 = words.next().and_then(|w| w.parse().ok()).expect("seconds");
    let say = |text: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}").and_then(|()| out.flush()).expect("stdout");
    };

    let dir = temp_dir("scale");
    let first =
        FirstStart { root_password: Some(PASSWORD.into()), hostname: "bench".into(), address: "127.0.0.1".into() };
    let (node, _) = Node::open(&dir.path().join("data"), &first).expect("Node::open");
    let rss_open_kb = rss_kb();
    let (networks, _) = node.ledger.invoke(bench_actor(), "network.get_all", vec![]).expect("network.get_all");
    let network = networks.as_set().and_then(|s| s.first()).and_then(Value::as_str).expect("a network").to_string();
    let objects_before = node.ledger.snapshot().tables.iter().map(|t| t.objects.len()).sum::<usize>();

    // The writers' own VMs are the first of the fill's.
    static NETWORK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NETWORK.set(network).expect("set once");
    let first_vms = spread(&node, WRITERS, |node, _, i| make_vm(node, NETWORK.get().expect("set"), i));
    let first_vms = Arc::new(first_vms);
    // A second of warm-up (the node's first-start work, the allocator), then the measured run.
    timed_writes(&node, &first_vms, 1.0);
    let empty = timed_writes(&node, &first_vms, seconds);

    let fill_start = Instant::now();
    spread(&node, vm_count.saturating_sub(WRITERS), |node, _, i| {
        make_vm(node, NETWORK.get().expect("set"), WRITERS + i)
    });
    spread(&node, OTHERS, |node, _, i| {
        new_ref(
            node,
            "blob.create",
            vec![Value::str(if i % 2 == 0 { "text/plain" } else { "application/json" }), Value::Bool(false)],
        )
    });
    let fill_s = fill_start.elapsed().as_secs_f64();
    let state = node.ledger.snapshot();
    let objects = state.tables.iter().map(|t| t.objects.len()).sum::<usize>() - objects_before;
    let vms_held = state.table(schema().class_id("VM").expect("VM")).objects.len();
    drop(state);
    let rss_filled_kb = rss_kb();
    let peak_fill_kb = https::status_kb("VmHWM:");
    let full = timed_writes(&node, &first_vms, seconds);

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let server =
        runtime.block_on(Running::start(Arc::new(NodeHandler { node: node.clone() }), &dir.path().join("tls"), false));
    say(json!({
        "port": server.https.port(),
        "vms": vms_held,
        "objects": objects,
        "fill_s": round2(fill_s),
        "rss_open_kb": rss_open_kb,
        "rss_filled_kb": rss_filled_kb,
        "peak_rss_fill_kb": peak_fill_kb,
        "rss_bytes_per_object": ((rss_filled_kb.saturating_sub(rss_open_kb)) * 1024) / objects.max(1) as u64,
        "writes_empty": empty,
        "writes_full": full,
        "write_rate_ratio": round2(full["ops_per_s"].as_f64().unwrap_or(0.0) / empty["ops_per_s"].as_f64().unwrap_or(1.0).max(1.0)),
    })
    .to_string());
    // The client's calls run now; a line on stdin asks for the RSS, and end of input ends it.
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    while stdin.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        say(json!({"rss_kb": rss_kb(), "peak_rss_kb": https::status_kb("VmHWM:")}).to_string());
        line.clear();
    }
    runtime.block_on(server.stop());
    drop(node);
}

/// Times `GETS` calls of `VM.get_all_records` over `wire` after a warm-up; returns the median and
/// the highest in ms, and the reply's size.
async fn get_all_records(conn: &mut Conn, wire: Wire) -> serde_json::Value {
    let session = wire.login(conn).await;
    let body = wire.encode(1, "VM.get_all_records", &[Value::str(session)]);
    let mut times = Vec::new();
    let mut bytes = 0;
    for i in 0..=GETS {
        let start = Instant::now();
        let reply = conn.post(wire.path(), wire.content_type(), &body).await.expect("VM.get_all_records");
        let took = start.elapsed().as_secs_f64() * 1000.0;
        assert!(reply.status == 200 && reply.body.starts_with(wire.success()), "{}", https::excerpt(reply.body));
        bytes = reply.body.len();
        if i > 0 {
            times.push(took);
        }
    }
    times.sort_by(f64::total_cmp);
    json!({"median_ms": round2(times[times.len() / 2]), "max_ms": round2(times[times.len() - 1]), "reply_bytes": bytes})
}

pub fn scale(options: &Options) {
    let load = load_avg();
    let vms = if options.vms == 1000 { VMS } else { options.vms };
    let mut child = std::process::Command::new(std::env::current_exe().expect("the bench's own path"))
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server's process");
    let mut stdin = child.stdin.take().expect("child stdin");
    writeln!(stdin, "{vms} {}", options.seconds).expect("send the spec");
    let mut from = std::io::BufReader::new(child.stdout.take().expect("child stdout"));
    let mut read_line = || {
        let mut line = String::new();
        from.read_line(&mut line).expect("read the child");
        serde_json::from_str::<serde_json::Value>(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    let ready = read_line();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", ready["port"]).parse().expect("address");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (xml, json_rpc) = runtime.block_on(async {
        let connector = https::connector();
        let mut conn = Conn::https(addr, &connector).await.expect("connect");
        let xml = get_all_records(&mut conn, Wire::Xml).await;
        let json_rpc = get_all_records(&mut conn, Wire::Json).await;
        (xml, json_rpc)
    });
    writeln!(stdin, "rss").expect("ask the RSS");
    let rss = read_line();
    drop(stdin);
    let _ = child.wait();
    let objects = ready["objects"].as_u64().unwrap_or(0);
    let extra = vec![
        ("vms", ready["vms"].clone()),
        ("objects", json!(objects)),
        ("xmlrpc_get_all_records", xml.clone()),
        ("jsonrpc_get_all_records", json_rpc),
        ("rss_kb", rss["rss_kb"].clone()),
        ("peak_rss_kb", rss["peak_rss_kb"].clone()),
        ("rss_open_kb", ready["rss_open_kb"].clone()),
        ("rss_filled_kb", ready["rss_filled_kb"].clone()),
        ("peak_rss_fill_kb", ready["peak_rss_fill_kb"].clone()),
        ("rss_bytes_per_object", ready["rss_bytes_per_object"].clone()),
        ("fill_s", ready["fill_s"].clone()),
        ("writes_empty", ready["writes_empty"].clone()),
        ("writes_full", ready["writes_full"].clone()),
        ("write_rate_ratio", ready["write_rate_ratio"].clone()),
        ("load_avg_1m", load),
    ];
    let seconds = xml["median_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    super::report("scale", 1, GETS as u64, seconds, None, extra);
}
