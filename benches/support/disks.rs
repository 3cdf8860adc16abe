//! The disk scenarios: `vdi-copy` (bytes per second of `VDI.copy` of a 1 GiB sparse disk with
//! 256 MiB of data, through the node's call path, beside a plain copy of the same file by the
//! same process in the same run as its ceiling) and `import-raw` (bytes per second of
//! `PUT /import_raw_vdi` over HTTPS into a 64 MiB VDI, beside `upload-ceiling`: the same uploads
//! to our server with a handler that reads the body and throws it away, and the disk's own rate
//! for writing and syncing the same image to a file beside the VDIs).

use std::future::Future;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use tokio::runtime::Runtime;
use xenledger::node::{FirstStart, Node, Origin, Reply};
use xenledger::rpc::NodeHandler;
use xenledger::server::{ResponseBody, RpcHandler, RpcRequest, RpcResponse, TransferRequest, TransferResponse};
use xenledger::value::Value;

use super::https::{self, Conn, Running};
use super::{round2, run_clients, temp_dir, Options};

const PASSWORD: &str = "bench-disks";
const MIB: u64 = 1 << 20;
/// The copied disk: its size, and where its data is (a 4 MiB run every 16 MiB).
const COPY_DISK_BYTES: u64 = 1 << 30;
const COPY_RUN_BYTES: u64 = 4 * MIB;
const COPY_STRIDE_BYTES: u64 = 16 * MIB;
/// The imported image.
const IMPORT_BYTES: u64 = 64 * MIB;

fn call(rt: &Runtime, node: &Arc<Node>, method: &str, params: Vec<Value>, origin: &Origin) -> Value {
    match rt.block_on(node.call(method, params, origin)) {
        Reply::Rpc(Ok(v)) | Reply::Bare(v) => v,
        Reply::Rpc(Err(e)) => panic!("{method}: {e}"),
    }
}

struct Disks {
    _dir: tempfile::TempDir,
    node: Arc<Node>,
    rt: Arc<Runtime>,
    session: Value,
    sr: Value,
}

fn open(label: &str) -> Disks {
    let dir = temp_dir(label);
    let first =
        FirstStart { root_password: Some(PASSWORD.into()), hostname: "bench".into(), address: "127.0.0.1".into() };
    let (node, _) = Node::open(&dir.path().join("data"), &first).expect("Node::open");
    let rt = Arc::new(tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime"));
    let origin = Origin { unix: false, peer: "bench".into() };
    let login = vec![Value::str("root"), Value::str(PASSWORD), Value::str("1.0"), Value::str("bench")];
    let session = call(&rt, &node, "session.login_with_password", login, &origin);
    let pools = call(&rt, &node, "pool.get_all", vec![session.clone()], &origin);
    let pool = pools.as_set().and_then(|p| p.first().cloned()).expect("the pool");
    let sr = call(&rt, &node, "pool.get_default_SR", vec![session.clone(), pool], &origin);
    Disks { _dir: dir, node, rt, session, sr }
}

impl Disks {
    fn call(&self, method: &str, params: Vec<Value>) -> Value {
        let origin = Origin { unix: false, peer: "bench".into() };
        let mut all = vec![self.session.clone()];
        all.extend(params);
        call(&self.rt, &self.node, method, all, &origin)
    }

    /// A new VDI of `size` bytes in the default SR, and its file.
    fn new_vdi(&self, size: u64) -> (Value, std::path::PathBuf) {
        let record = Value::Record(vec![
            ("name_label".into(), Value::str("bench")),
            ("SR".into(), self.sr.clone()),
            ("virtual_size".into(), Value::Int(size as i64)),
            ("type".into(), Value::Enum("user".into())),
            ("sharable".into(), Value::Bool(false)),
            ("read_only".into(), Value::Bool(false)),
            ("other_config".into(), Value::Map(vec![])),
        ]);
        let vdi = self.call("VDI.create", vec![record]);
        (vdi.clone(), self.file(&vdi))
    }

    fn file(&self, vdi: &Value) -> std::path::PathBuf {
        let pbds = self.call("SR.get_PBDs", vec![self.sr.clone()]);
        let pbd = pbds.as_set().and_then(|p| p.first().cloned()).expect("a PBD");
        let config = self.call("PBD.get_device_config", vec![pbd]);
        let dir = config
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("location")))
            .and_then(|(_, v)| v.as_str().map(String::from))
            .expect("a location");
        let location = self.call("VDI.get_location", vec![vdi.clone()]);
        std::path::Path::new(&dir).join(format!("{}.img", location.as_str().unwrap_or("")))
    }
}

/// Bytes that do not compress or repeat.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn vdi_copy(options: &Options) {
    let disks = open("vdi-copy");
    let (source, path) = disks.new_vdi(COPY_DISK_BYTES);
    let file = std::fs::OpenOptions::new().write(true).open(&path).expect("the VDI's file");
    let run = noise(COPY_RUN_BYTES as usize, 7);
    let mut data = 0;
    for at in (0..COPY_DISK_BYTES).step_by(COPY_STRIDE_BYTES as usize) {
        file.write_all_at(&run, at).expect("data written");
        data += COPY_RUN_BYTES;
    }
    file.sync_all().expect("synced");
    // The ceiling: a plain copy of the same file by this process (copy_file_range on Linux).
    let ceiling_path = path.with_extension("ceiling");
    let start = Instant::now();
    std::fs::copy(&path, &ceiling_path).expect("plain copy");
    let ceiling_s = start.elapsed().as_secs_f64();
    std::fs::remove_file(&ceiling_path).expect("ceiling copy removed");
    let disks = Arc::new(disks);
    let d = disks.clone();
    let run = run_clients(options.clients.unwrap_or(1), options.seconds, 1, move |_, _| {
        let null = Value::Ref("OpaqueRef:NULL".into());
        let copy = d.call("VDI.copy", vec![source.clone(), d.sr.clone(), null.clone(), null]);
        d.call("VDI.destroy", vec![copy]);
    });
    let copy_s = run.seconds / run.ops.max(1) as f64;
    let bytes_per_s = COPY_DISK_BYTES as f64 / copy_s;
    let ceiling = COPY_DISK_BYTES as f64 / ceiling_s;
    let extra = vec![
        ("disk_bytes", json!(COPY_DISK_BYTES)),
        ("data_bytes", json!(data)),
        ("bytes_per_s", json!(bytes_per_s.round())),
        ("data_bytes_per_s", json!((data as f64 / copy_s).round())),
        ("plain_copy_bytes_per_s", json!(ceiling.round())),
        ("ratio_to_plain_copy", json!(round2(bytes_per_s / ceiling))),
        ("note", json!("each op is VDI.copy then VDI.destroy of the copy")),
    ];
    run.report("vdi-copy", options.clients.unwrap_or(1), extra);
}

/// Reads an upload and throws it away: the transport's ceiling for `import-raw`.
struct Sink;

impl RpcHandler for Sink {
    fn handle(&self, _req: RpcRequest) -> Pin<Box<dyn Future<Output = RpcResponse> + Send + '_>> {
        Box::pin(async { RpcResponse { status: 404, content_type: "text/plain", body: Vec::new().into() } })
    }

    fn transfer(&self, mut req: TransferRequest) -> Pin<Box<dyn Future<Output = TransferResponse> + Send + '_>> {
        Box::pin(async move {
            while let Some(piece) = req.body.chunk().await {
                piece.expect("upload piece");
            }
            TransferResponse { status: 200, headers: Vec::new(), body: ResponseBody::Bytes(Vec::new()) }
        })
    }
}

/// Each client uploads `image` over its own HTTPS connection to `path` (its own target) in a loop.
fn uploads(options: &Options, handler: Arc<dyn RpcHandler>, paths: Vec<String>, image: Arc<Vec<u8>>) -> super::Run {
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("server runtime");
    let dir = temp_dir("uploads");
    let server = server_rt.block_on(Running::start(handler, &dir.path().join("tls"), false));
    let client_rt = Arc::new(tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("client runtime"));
    let connector = https::connector();
    let conns: Vec<Mutex<Conn>> = paths
        .iter()
        .map(|_| Mutex::new(client_rt.block_on(Conn::https(server.https, &connector)).expect("HTTPS connect")))
        .collect();
    let (conns, paths, rt) = (Arc::new(conns), Arc::new(paths), client_rt.clone());
    let run = run_clients(paths.len(), options.seconds, 1, move |client, _| {
        let mut conn = conns[client].lock().expect("connection");
        let reply = rt.block_on(conn.put(&paths[client], &image)).expect("upload");
        assert_eq!(reply.status, 200, "{}", https::excerpt(reply.body));
    });
    server_rt.block_on(server.stop());
    run
}

pub fn import_raw(options: &Options) {
    let clients = options.clients.unwrap_or(1);
    let disks = open("import-raw");
    let image = Arc::new(noise(IMPORT_BYTES as usize, 11));
    let session = disks.session.as_str().unwrap_or("").to_string();
    let paths: Vec<String> = (0..clients)
        .map(|_| {
            let (vdi, _) = disks.new_vdi(IMPORT_BYTES);
            format!("/import_raw_vdi?session_id={session}&vdi={}", vdi.as_str().unwrap_or(""))
        })
        .collect();
    // The disk's own ceiling: the same image written and synced to a file beside the VDIs.
    let (_, beside) = disks.new_vdi(MIB);
    let disk_file = beside.with_extension("ceiling");
    let start = Instant::now();
    let mut writes = 0u64;
    while start.elapsed().as_secs_f64() < options.seconds.min(3.0) {
        let file = std::fs::File::create(&disk_file).expect("ceiling file");
        file.write_all_at(&image, 0).expect("written");
        file.sync_all().expect("synced");
        writes += 1;
    }
    let disk_bytes_per_s = (writes * IMPORT_BYTES) as f64 / start.elapsed().as_secs_f64();
    std::fs::remove_file(&disk_file).expect("ceiling file removed");
    let ceiling = uploads(options, Arc::new(Sink), vec!["/upload".to_string(); clients], image.clone());
    let ceiling_bytes_per_s = (ceiling.ops * IMPORT_BYTES) as f64 / ceiling.seconds;
    let node = disks.node.clone();
    let run = uploads(options, Arc::new(NodeHandler { node }), paths, image);
    let bytes_per_s = (run.ops * IMPORT_BYTES) as f64 / run.seconds;
    let extra = vec![
        ("image_bytes", json!(IMPORT_BYTES)),
        ("bytes_per_s", json!(bytes_per_s.round())),
        ("upload_ceiling_bytes_per_s", json!(ceiling_bytes_per_s.round())),
        ("ratio_to_upload_ceiling", json!(round2(bytes_per_s / ceiling_bytes_per_s))),
        ("disk_write_sync_bytes_per_s", json!(disk_bytes_per_s.round())),
        ("ratio_to_slower_ceiling", json!(round2(bytes_per_s / ceiling_bytes_per_s.min(disk_bytes_per_s)))),
    ];
    ceiling.report(
        "upload-ceiling",
        clients,
        vec![("image_bytes", json!(IMPORT_BYTES)), ("bytes_per_s", json!(ceiling_bytes_per_s.round()))],
    );
    run.report("import-raw", clients, extra);
}
