//! A VDI's bytes over HTTP, as xapi serves them (`import_raw_vdi.ml`, `export_raw_vdi.ml`,
//! `xapi_http.ml`): `PUT /import_raw_vdi?session_id=…&vdi=…` writes the body into the VDI from
//! its first byte, `GET /export_raw_vdi?session_id=…&vdi=…` streams the VDI out. The format is
//! `raw` (the only one served here). Credentials are a `session_id` (query or cookie), HTTP Basic
//! (a session for the transfer, ended after it) or the local socket; the caller needs the
//! `http/put_import_raw_vdi` or `http/get_export_raw_vdi` permission (vm-admin and above). A
//! `task_id` names the caller's task, which gets the progress and the outcome (the VDI's ref as
//! the result of an import); without one a task is made for the transfer and destroyed after it.
//!
//! The bytes go through the host (`Host::vdi_open`), in pieces, off the async threads. Runs of
//! zeros are written as holes, so an imported image is as sparse as its data allows.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::{sessions, Caller, Node, Origin};
use crate::auth;
use crate::engine::internal::{InternalOp, NewTask, TaskEdit};
use crate::error::{ApiError, ErrorCode};
use crate::ledger::Job;
use crate::schema::generated::{class, field as f};
use crate::value::Value;

/// What the adapter read from the HTTP request.
pub struct DiskRequest {
    pub origin: Origin,
    /// Cookies first, then the query's parameters, decoded (xapi reads a cookie before the query).
    pub params: Vec<(String, String)>,
    /// `Authorization: Basic` user and password.
    pub basic: Option<(String, String)>,
}

impl DiskRequest {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// How a transfer ended, for the adapter to say in HTTP.
pub enum TransferOutcome {
    /// No valid credentials (401).
    Unauthorised,
    /// The caller's role lacks the permission (403).
    Forbidden(ApiError),
    /// The transfer failed: the HTTP status, the task (if it exists) and the error it failed with.
    Failed { status: u16, task: Option<String>, error: ApiError },
    /// The whole body is in the VDI.
    Imported { task: String },
    /// A page made whole (`/metrics`).
    Page { content_type: &'static str, body: Vec<u8> },
    /// A file with no task (the online backup), to stream.
    Download { len: u64, filename: String, pieces: mpsc::Receiver<io::Result<Bytes>> },
    /// The VDI's bytes, to stream.
    Exporting { task: String, len: u64, filename: String, pieces: mpsc::Receiver<io::Result<Bytes>> },
}

/// Bytes handed to the disk at once.
const WRITE_BATCH: usize = 4 << 20;
/// Holes are punched for runs of zeros of this size (aligned).
const HOLE_BLOCK: usize = 64 << 10;
/// Progress entries per transfer are at most this frequent.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

struct Started {
    caller: Caller,
    task: String,
    owned: bool,
    /// A session made from Basic credentials, ended after the transfer.
    temporary: bool,
}

pub(super) async fn authenticate(node: &Arc<Node>, req: &DiskRequest) -> Result<(Caller, bool), TransferOutcome> {
    if req.origin.unix {
        let caller = Caller {
            session: String::new(),
            presented: String::new(),
            user: auth::ROOT.into(),
            originator: "local socket".into(),
            superuser: true,
            role: "pool-admin".into(),
        };
        return Ok((caller, false));
    }
    if let Some(session) = req.param("session_id") {
        return node
            .sessions
            .check(&node.ledger.snapshot(), session)
            .map(|c| (c, false))
            .map_err(|_| TransferOutcome::Unauthorised);
    }
    if let Some((user, password)) = &req.basic {
        let originator = format!("{} using Basic auth", req.origin.peer);
        let session = sessions::login(node, user, password, &originator, &req.origin).await;
        let Ok(Value::Ref(session)) = session else { return Err(TransferOutcome::Unauthorised) };
        return node
            .sessions
            .check(&node.ledger.snapshot(), &session)
            .map(|c| (c, true))
            .map_err(|_| TransferOutcome::Unauthorised);
    }
    Err(TransferOutcome::Unauthorised)
}

/// Credentials, permission, then the task: the caller's `task_id`, or a new one.
async fn begin(node: &Arc<Node>, req: &DiskRequest, action: &str, label: &str) -> Result<Started, TransferOutcome> {
    let (caller, temporary) = authenticate(node, req).await?;
    let roles = auth::roles_at_least("vm-admin");
    if !caller.superuser && !roles.contains(&caller.role.as_str()) {
        let error = super::permission_denied(&format!("http/{action}"), &roles);
        if let Some(task) = req.param("task_id") {
            complete(node, &caller, task, false, Err(error.clone()), None).await;
        }
        end_temporary(node, &caller, temporary).await;
        return Err(TransferOutcome::Forbidden(error));
    }
    let tasks = class::TASK.get();
    match req.param("task_id") {
        Some(task) if node.ledger.snapshot().exists(tasks.id, task) => {
            Ok(Started { caller, task: task.to_string(), owned: false, temporary })
        }
        Some(task) => {
            end_temporary(node, &caller, temporary).await;
            Err(TransferOutcome::Failed { status: 404, task: None, error: ApiError::handle_invalid("task", task) })
        }
        None => {
            let new = NewTask {
                label: label.into(),
                description: String::new(),
                host: node.host.clone(),
                other_config: Vec::new(),
                subtask_of: req.param("subtask_of").map(String::from),
                explicit: false,
            };
            match node.ledger.call(Job::internal(caller.actor(), InternalOp::TaskCreate(Box::new(new)))).await {
                Ok((Value::Ref(task), _)) => Ok(Started { caller, task, owned: true, temporary }),
                Ok(_) | Err(_) => {
                    end_temporary(node, &caller, temporary).await;
                    Err(TransferOutcome::Failed { status: 500, task: None, error: ApiError::internal("no task") })
                }
            }
        }
    }
}

pub(super) async fn end_temporary(node: &Arc<Node>, caller: &Caller, temporary: bool) {
    if temporary {
        let logout = schema_message("session", "logout");
        let _ = sessions::logout(node, caller, logout).await;
    }
}

fn schema_message(class: &str, message: &str) -> &'static crate::schema::Message {
    crate::schema::schema().class(class).and_then(|c| c.message(message)).expect("a datamodel message")
}

async fn complete(
    node: &Arc<Node>,
    caller: &Caller,
    task: &str,
    owned: bool,
    outcome: Result<Value, ApiError>,
    written: Option<(String, i64)>,
) {
    let op = InternalOp::TransferDone { task: task.to_string(), owned, outcome: Box::new(outcome), written };
    if let Err(e) = node.ledger.call(Job::internal(caller.actor(), op)).await {
        tracing::error!("recording the end of a disk transfer: {e}");
    }
}

/// The VDI the request names (a ref or a uuid), and its file.
fn target(node: &Node, req: &DiskRequest) -> Result<(String, std::path::PathBuf), (u16, ApiError)> {
    let state = node.ledger.snapshot();
    let vdis = class::VDI.get();
    let vdi = match req.param("vdi") {
        None | Some("") => return Err((400, ApiError::new(ErrorCode::VdiMissing, Vec::<String>::new()))),
        Some(r) if r.starts_with("OpaqueRef:") => {
            if !state.exists(vdis.id, r) {
                return Err((404, ApiError::handle_invalid("VDI", r)));
            }
            r.to_string()
        }
        Some(uuid) => match state.table(vdis.id).by_uuid.get(uuid.to_ascii_lowercase().as_str()) {
            Some(r) => r.to_string(),
            None => return Err((404, ApiError::new(ErrorCode::UuidInvalid, ["VDI", uuid]))),
        },
    };
    match req.param("format").map(str::to_ascii_lowercase).as_deref() {
        None | Some("raw") => {}
        Some(other @ ("vhd" | "tar" | "qcow2")) => {
            return Err((404, ApiError::internal(format!("Format {other} is not supported by this server"))))
        }
        Some(other) => return Err((404, ApiError::internal(format!("Unknown format {other}")))),
    }
    let sr = crate::engine::explicit::vm::get(&state, f::vdi::SR, &vdi).as_str().unwrap_or("").to_string();
    let file = crate::engine::explicit::vdi::file(&state, &vdi)
        .ok_or_else(|| (500, ApiError::new(ErrorCode::SrOperationNotSupported, [sr.as_str()])))?;
    crate::engine::explicit::sr::assert_plugged(&state, &sr).map_err(|e| (500, e))?;
    Ok((vdi, crate::host::vdi_path(std::path::Path::new(&file.sr_dir), &file.uuid)))
}

/// `PUT /import_raw_vdi`: the body goes into the VDI from byte 0; a body longer than the VDI
/// fails (`VDI_IO_ERROR`) and leaves what was written.
pub async fn import_raw(
    node: &Arc<Node>,
    req: DiskRequest,
    body: mpsc::Receiver<io::Result<Bytes>>,
    declared: Option<u64>,
) -> TransferOutcome {
    let started = match begin(node, &req, "put_import_raw_vdi", "Importing raw VDI").await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let result = match target(node, &req) {
        Err((status, error)) => Err((status, error)),
        Ok((vdi, path)) => write_body(node, &started, &vdi, &path, body, declared).await.map_err(|e| (500, e)),
    };
    let outcome = match result {
        Ok((vdi, allocated)) => {
            complete(
                node,
                &started.caller,
                &started.task,
                started.owned,
                Ok(Value::Ref(vdi.clone())),
                Some((vdi, allocated)),
            )
            .await;
            TransferOutcome::Imported { task: started.task.clone() }
        }
        Err((status, error)) => {
            complete(node, &started.caller, &started.task, started.owned, Err(error.clone()), None).await;
            let task = (!started.owned).then(|| started.task.clone());
            TransferOutcome::Failed { status, task, error }
        }
    };
    end_temporary(node, &started.caller, started.temporary).await;
    outcome
}

async fn write_body(
    node: &Arc<Node>,
    started: &Started,
    vdi: &str,
    path: &std::path::Path,
    mut body: mpsc::Receiver<io::Result<Bytes>>,
    declared: Option<u64>,
) -> Result<(String, i64), ApiError> {
    let state = node.ledger.snapshot();
    let get = |key| crate::engine::explicit::vm::get(&state, key, vdi);
    if get(f::vdi::READ_ONLY).as_bool() == Some(true) {
        return Err(ApiError::new(ErrorCode::VdiReadonly, [vdi]));
    }
    if crate::engine::explicit::vdi::attached(&state, vdi) {
        return Err(ApiError::new(ErrorCode::VdiInUse, [vdi, "import"]));
    }
    let (dir, name) = split(path);
    let host = node.backend.host.clone();
    let file = tokio::task::spawn_blocking(move || host.vdi_open(&dir, &name, true))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(io_failure)?;
    let len = file.metadata().map_err(|e| io_failure(e.into_host(path)))?.len();
    // The disk is written by a thread of its own while the next batch arrives.
    let (batches, mut to_write) = mpsc::channel::<(u64, Bytes)>(2);
    let writer = tokio::task::spawn_blocking(move || -> io::Result<u64> {
        while let Some((offset, data)) = to_write.blocking_recv() {
            write_holes_as_holes(&file, offset, &data)?;
        }
        file.sync_all()?;
        Ok(std::os::unix::fs::MetadataExt::blocks(&file.metadata()?) * 512)
    });
    let clock = node.ledger.clock().clone();
    let (mut offset, mut batch, mut last_progress) = (0u64, BytesMut::with_capacity(WRITE_BATCH), clock.now_us());
    let mut failed = None;
    while let Some(piece) = body.recv().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                failed = Some(ApiError::new(ErrorCode::VdiIoError, [format!("reading the request: {e}")]));
                break;
            }
        };
        if offset + (batch.len() + piece.len()) as u64 > len {
            failed = Some(ApiError::new(ErrorCode::VdiIoError, ["The image is larger than the VDI"]));
            break;
        }
        batch.extend_from_slice(&piece);
        if batch.len() >= WRITE_BATCH {
            let data = batch.split().freeze();
            let at = offset;
            offset += data.len() as u64;
            if batches.send((at, data)).await.is_err() {
                break; // the writer failed: its error is below
            }
            if let Some(total) = declared.filter(|t| *t > 0) {
                if clock.now_us() - last_progress >= PROGRESS_INTERVAL.as_micros() as i64 {
                    last_progress = clock.now_us();
                    progress(node, &started.caller, &started.task, offset as f64 / total as f64).await;
                }
            }
        }
    }
    if failed.is_none() && !batch.is_empty() {
        let _ = batches.send((offset, batch.freeze())).await;
    }
    drop(batches);
    let written = writer.await.map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(e) = failed {
        return Err(e);
    }
    let allocated = written.map_err(|e| io_failure(e.into_host(path)))?;
    Ok((vdi.to_string(), allocated as i64))
}

fn split(path: &std::path::Path) -> (std::path::PathBuf, String) {
    let dir = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    (dir, name)
}

async fn progress(node: &Arc<Node>, caller: &Caller, task: &str, fraction: f64) {
    let value = Value::Float((fraction.clamp(0.0, 1.0) * 0.99 * 100.0).round() / 100.0);
    let edit = TaskEdit::Set { field: "progress", value };
    let _ = node.ledger.call(Job::internal(caller.actor(), InternalOp::TaskEdit { task: task.into(), edit })).await;
}

/// Writes `data` at `offset`, runs of zeros as holes (blocks aligned to the file, so that a
/// hole covers whole blocks).
fn write_holes_as_holes(file: &std::fs::File, offset: u64, data: &[u8]) -> io::Result<()> {
    let mut at = 0usize;
    while at < data.len() {
        let here = offset as usize + at;
        let block_end = (here / HOLE_BLOCK + 1) * HOLE_BLOCK - offset as usize;
        let piece = &data[at..block_end.min(data.len())];
        if piece.iter().all(|b| *b == 0) {
            let flags = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
            if rustix::fs::fallocate(file, flags, here as u64, piece.len() as u64).is_err() {
                file.write_all_at(piece, here as u64)?;
            }
        } else {
            file.write_all_at(piece, here as u64)?;
        }
        at += piece.len();
    }
    Ok(())
}

trait IntoHost {
    fn into_host(self, path: &std::path::Path) -> crate::host::HostError;
}

impl IntoHost for io::Error {
    fn into_host(self, path: &std::path::Path) -> crate::host::HostError {
        crate::host::HostError::Io { path: path.to_path_buf(), source: self }
    }
}

/// A disk the host could not read or write: `VDI_IO_ERROR ["Device I/O errors"]`, as xapi.
fn io_failure(e: crate::host::HostError) -> ApiError {
    tracing::warn!("disk transfer: {e}");
    ApiError::new(ErrorCode::VdiIoError, ["Device I/O errors"])
}

/// `GET /export_raw_vdi`: the VDI's bytes, streamed in pieces; the task ends when the last
/// piece is handed over (or the client goes away: the task fails).
pub async fn export_raw(node: &Arc<Node>, req: DiskRequest) -> TransferOutcome {
    let started = match begin(node, &req, "get_export_raw_vdi", "Exporting raw VDI").await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let opened = match target(node, &req) {
        Err((status, error)) => Err((status, error)),
        Ok((vdi, path)) => {
            let (dir, name) = split(&path);
            let host = node.backend.host.clone();
            match tokio::task::spawn_blocking(move || host.vdi_open(&dir, &name, false)).await {
                Ok(Ok(file)) => Ok((vdi, file)),
                Ok(Err(e)) => Err((500, io_failure(e))),
                Err(e) => Err((500, ApiError::internal(e.to_string()))),
            }
        }
    };
    let (vdi, file) = match opened {
        Ok(v) => v,
        Err((status, error)) => {
            complete(node, &started.caller, &started.task, started.owned, Err(error.clone()), None).await;
            end_temporary(node, &started.caller, started.temporary).await;
            let task = (!started.owned).then(|| started.task.clone());
            return TransferOutcome::Failed { status, task, error };
        }
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let uuid = crate::engine::explicit::vm::get(&node.ledger.snapshot(), f::vdi::UUID, &vdi)
        .as_str()
        .unwrap_or("")
        .to_string();
    let (sender, pieces) = mpsc::channel(4);
    let reader = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut offset = 0u64;
        while offset < len {
            let want = (len - offset).min(1 << 20) as usize;
            let mut buf = vec![0u8; want];
            if let Err(e) = file.read_exact_at(&mut buf, offset) {
                let _ = sender.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                return Err(e.to_string());
            }
            offset += want as u64;
            if sender.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return Err("the client went away".into());
            }
        }
        Ok(())
    });
    let (node2, started2) = (node.clone(), started);
    let task = started2.task.clone();
    tokio::spawn(async move {
        let outcome = match reader.await {
            Ok(Ok(())) => Ok(Value::String(String::new())),
            Ok(Err(e)) => Err(ApiError::new(ErrorCode::VdiIoError, [e])),
            Err(e) => Err(ApiError::internal(e.to_string())),
        };
        complete(&node2, &started2.caller, &started2.task, started2.owned, outcome, None).await;
        end_temporary(&node2, &started2.caller, started2.temporary).await;
    });
    TransferOutcome::Exporting { task, len, filename: format!("{uuid}.raw"), pieces }
}
