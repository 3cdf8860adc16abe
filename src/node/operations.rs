//! Long operations (the registry's `Long` rows; docs/xenapi-semantics.md §f.6, §g): an entry that
//! checks and marks the operation, the host effect off the writer with task progress, an entry
//! with the outcome that clears the mark. At start, operations a crash interrupted are reconciled
//! with what the host reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::tasks::OPERATION_WAIT_MAX;
use super::{Caller, Node};
use crate::clock;
use crate::engine::effect::{DiskFile, DomainSpec, Done, Effect};
use crate::engine::internal::{InternalOp, TaskEdit};
use crate::engine::{self, Finished, LongCall, Op};
use crate::entry::Actor;
use crate::error::{ApiError, ErrorCode};
use crate::host::{Host, HostError, VmSpec};
use crate::ledger::{Job, Ledger};
use crate::schema::schema;
use crate::value::Value;

/// The hypervisor a node drives, and how fast its simulated effects take (1.0: about as long as
/// on a real host; 0: instant).
#[derive(Clone)]
pub struct Backend {
    pub host: Arc<dyn Host>,
    pub speed: f64,
}

/// Progress entries per task are at most this frequent (the issue's ≤ 10 entries/s).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// How long an effect takes on a real host at speed 1.0.
fn base_duration(effect: &Effect) -> Duration {
    let ms = match effect {
        Effect::Nothing => 0,
        Effect::VmStart { .. } | Effect::VmReboot { .. } => 2000,
        Effect::VmShutdown { clean: true, .. } => 1500,
        Effect::VmShutdown { clean: false, .. } => 500,
        Effect::VmPause { .. } | Effect::VmUnpause { .. } => 200,
        Effect::VmSuspend { .. } | Effect::VmResume { .. } => 1500,
        Effect::CreateDisks(_) => 1000,
        // Real bytes take real time; progress follows them.
        Effect::CopyDisks(_) => 0,
        Effect::VmCheckpoint { .. } | Effect::VmRevert { .. } => 1500,
        Effect::VmMigrate { .. } => 1000,
        Effect::VmStat { .. } => 0,
        Effect::HostPower { .. } => 3000,
        Effect::DestroyDisks(_) | Effect::ResizeDisk { .. } => 300,
        Effect::ScanDisks { .. } | Effect::SrCreate { .. } => 500,
        Effect::SrRemove { .. } => 100,
    };
    Duration::from_millis(ms)
}

/// Runs a long operation for `caller`; `task` is the `Async.` call's task (else the call gets its own).
pub async fn run(
    node: &Arc<Node>,
    caller: &Caller,
    call: LongCall,
    params: Vec<Value>,
    task: Option<String>,
) -> Result<Value, ApiError> {
    let owned = task.is_none();
    let task = mark(node, caller, &call, params, task).await?;
    node.long_running.lock().expect("long operations lock").insert(task.clone());
    let outcome = effect_and_outcome(node, caller, call, &task, owned).await;
    node.long_running.lock().expect("long operations lock").remove(&task);
    node.cancels.lock().expect("cancels lock").remove(&task);
    outcome
}

async fn effect_and_outcome(
    node: &Arc<Node>,
    caller: &Caller,
    call: LongCall,
    task: &str,
    owned: bool,
) -> Result<Value, ApiError> {
    cancel_what_this_overrides(node, &call, task).await;
    let planned = call.plan(&node.ledger.snapshot(), task);
    let (effect, done) = match planned {
        Ok(effect) => {
            let done = perform(node, caller, task, &effect).await;
            (effect, done)
        }
        Err(e) => (Effect::Nothing, Err(e)),
    };
    let outcome = match &done {
        Ok(_) => Value::str("success"),
        Err(e) => Value::String(e.code.clone()),
    };
    let params = vec![Value::Ref(task.to_string()), outcome];
    let finished = Finished { call, task: task.to_string(), owned, effect, done };
    let finish = Job { actor: caller.actor(), op: Op::Finish(Box::new(finished)), params };
    engine::outcome_of(node.ledger.call(finish).await?.0)
}

/// Logs the entry that marks the operation. While another operation on the object refuses
/// it (`OTHER_OPERATION_IN_PROGRESS`), the call waits its turn as xapi's `with_vm_operation`
/// does (`Helpers.retry_with_global_lock`, policy `standard`: up to 2 hours), woken by each
/// commit; a cancelled `Async.` task ends the wait.
async fn mark(
    node: &Arc<Node>,
    caller: &Caller,
    call: &LongCall,
    params: Vec<Value>,
    task: Option<String>,
) -> Result<String, ApiError> {
    let clock = node.ledger.clock().clone();
    let deadline_us = clock::deadline_us(&*clock, OPERATION_WAIT_MAX);
    let mut committed = node.ledger.committed();
    let waiting = |on: bool| {
        if let Some(t) = &task {
            let mut w = node.waiting_tasks.lock().expect("waiting tasks lock");
            if on {
                w.insert(t.clone());
            } else {
                w.remove(t);
            }
        }
    };
    loop {
        committed.borrow_and_update();
        let job = Job {
            actor: caller.actor(),
            op: Op::Mark { call: call.clone(), task: task.clone() },
            params: params.clone(),
        };
        match node.ledger.call(job).await {
            Ok((t, _)) => {
                waiting(false);
                return Ok(t.as_str().unwrap_or_default().to_string());
            }
            Err(e) if e.code == "OTHER_OPERATION_IN_PROGRESS" && clock.now_us() < deadline_us => {
                if let Some(t) = &task {
                    if !crate::engine::internal::task_is_pending(&node.ledger.snapshot(), t) {
                        waiting(false);
                        return Err(ApiError::new(ErrorCode::TaskCancelled, [t.as_str()]));
                    }
                }
                waiting(true);
                clock::until(&*clock, deadline_us, committed.changed()).await;
            }
            Err(e) => {
                waiting(false);
                return Err(e);
            }
        }
    }
}

/// The clean operations a hard one cancels (xapi `message_forwarding.ml` `VM.hard_shutdown`,
/// `VM.hard_reboot`); the hard operation waits until they have ended.
fn overridden_by(op: &str) -> &'static [&'static str] {
    match op {
        "hard_shutdown" => {
            &["clean_shutdown", "clean_reboot", "hard_reboot", "pool_migrate", "call_plugin", "shutdown", "suspend"]
        }
        "hard_reboot" => &["clean_shutdown", "clean_reboot", "pool_migrate", "call_plugin", "suspend"],
        _ => &[],
    }
}

async fn cancel_what_this_overrides(node: &Arc<Node>, call: &LongCall, task: &str) {
    let overridden = overridden_by(call.long.op);
    if overridden.is_empty() {
        return;
    }
    let others = |state: &crate::engine::State| -> Vec<String> {
        let (class, object) = call.target();
        let current = class.field("current_operations").expect("operations");
        let Some(o) = state.get(class.id, &object) else { return Vec::new() };
        o.fields[current]
            .as_map()
            .unwrap_or(&[])
            .iter()
            .filter(|(t, op)| t.as_str() != Some(task) && op.as_str().is_some_and(|op| overridden.contains(&op)))
            .filter_map(|(t, _)| t.as_str().map(String::from))
            .collect()
    };
    let clock = node.ledger.clock().clone();
    let deadline_us = clock::deadline_us(&*clock, OPERATION_WAIT_MAX);
    let mut committed = node.ledger.committed();
    loop {
        committed.borrow_and_update();
        let pending = others(&node.ledger.snapshot());
        if pending.is_empty() || clock.now_us() >= deadline_us {
            return;
        }
        node.cancels.lock().expect("cancels lock").extend(pending);
        clock::until(&*clock, deadline_us, committed.changed()).await;
    }
}

/// Whether the operation of `task` has been asked to stop (a hard operation overriding it, or
/// `task.cancel`): it ends with `TASK_CANCELLED` unless its effect has already run.
fn cancelled(node: &Node, task: &str) -> Result<(), ApiError> {
    if node.cancels.lock().expect("cancels lock").contains(task) {
        Err(ApiError::new(ErrorCode::TaskCancelled, [task]))
    } else {
        Ok(())
    }
}

/// The effect through the host, paced by the backend's speed with task progress on the way.
async fn perform(node: &Arc<Node>, caller: &Caller, task: &str, effect: &Effect) -> Result<Done, ApiError> {
    let clock = node.ledger.clock().clone();
    let total = base_duration(effect).mul_f64(node.backend.speed.max(0.0));
    let mut waited = Duration::ZERO;
    while waited < total {
        cancelled(node, task)?;
        let step = PROGRESS_INTERVAL.min(total - waited);
        clock.sleep(step).await;
        waited += step;
        let progress = (waited.as_secs_f64() / total.as_secs_f64() * 0.9).min(0.9);
        let edit = TaskEdit::Set { field: "progress", value: Value::Float((progress * 100.0).round() / 100.0) };
        let _ = node.ledger.call(Job::internal(caller.actor(), InternalOp::TaskEdit { task: task.into(), edit })).await;
    }
    cancelled(node, task)?;
    let host = node.backend.host.clone();
    let effect = effect.clone();
    let snapshot = node.ledger.snapshot();
    // The effect reports the fraction done; it is logged at most every PROGRESS_INTERVAL.
    let fraction = Arc::new(AtomicU64::new(0f64.to_bits()));
    let report = fraction.clone();
    let mut blocking = tokio::task::spawn_blocking(move || {
        apply(&*host, &effect, &|f: f64| report.store(f.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed))
    });
    let mut logged = 0.0;
    let done = loop {
        tokio::select! {
            done = &mut blocking => break done,
            () = clock.sleep(PROGRESS_INTERVAL) => {
                let now = (f64::from_bits(fraction.load(Ordering::Relaxed)) * 0.99 * 100.0).round() / 100.0;
                if now > logged {
                    logged = now;
                    let edit = TaskEdit::Set { field: "progress", value: Value::Float(now) };
                    let job = Job::internal(caller.actor(), InternalOp::TaskEdit { task: task.into(), edit });
                    let _ = node.ledger.call(job).await;
                }
            }
        }
    };
    done.map_err(|e| ApiError::internal(e.to_string()))?.map_err(|e| host_error(&snapshot, e))
}

fn spec(s: &DomainSpec) -> VmSpec {
    VmSpec { uuid: s.vm_uuid.clone(), memory_bytes: s.memory_bytes, vcpus: s.vcpus, hvm: s.hvm }
}

fn path(file: &DiskFile) -> std::path::PathBuf {
    crate::host::vdi_path(std::path::Path::new(&file.sr_dir), &file.uuid)
}

/// One effect, through the host's methods; `progress` hears the fraction done of a disk copy.
fn apply(host: &dyn Host, effect: &Effect, progress: &dyn Fn(f64)) -> Result<Done, HostError> {
    let dir = |f: &DiskFile| std::path::PathBuf::from(&f.sr_dir);
    match effect {
        Effect::Nothing => Ok(Done::Nothing),
        Effect::VmStart { spec: s, paused } => Ok(Done::Domain { domid: host.vm_start(&spec(s), *paused)?.domid }),
        Effect::VmShutdown { vm_uuid, clean, image } => {
            host.vm_shutdown(vm_uuid, *clean)?;
            if let Some(image) = image {
                host.vdi_destroy(&dir(image), &image.uuid)?;
            }
            Ok(Done::Nothing)
        }
        Effect::VmReboot { spec: s, clean } => {
            host.vm_shutdown(&s.vm_uuid, *clean)?;
            Ok(Done::Domain { domid: host.vm_start(&spec(s), false)?.domid })
        }
        Effect::VmPause { vm_uuid } => host.vm_pause(vm_uuid).map(|_| Done::Nothing),
        Effect::VmUnpause { vm_uuid } => host.vm_unpause(vm_uuid).map(|_| Done::Nothing),
        Effect::VmSuspend { vm_uuid, image } => host.vm_suspend(vm_uuid, &path(image)).map(|_| Done::Nothing),
        Effect::VmResume { spec: s, image, paused } => {
            let domain = host.vm_resume(&spec(s), &path(image), *paused)?;
            host.vdi_destroy(&dir(image), &image.uuid)?;
            Ok(Done::Domain { domid: domain.domid })
        }
        Effect::CreateDisks(files) => {
            let mut made = Vec::new();
            for (file, size) in files {
                if let Err(e) = host.vdi_create(&dir(file), &file.uuid, *size) {
                    // No half-done state: the files made so far go too.
                    for f in made {
                        let _ = host.vdi_destroy(&dir(f), &f.uuid);
                    }
                    return Err(e);
                }
                made.push(file);
            }
            Ok(Done::Nothing)
        }
        Effect::CopyDisks(copies) => copy_disks(host, copies, progress).map(|()| Done::Nothing),
        Effect::VmCheckpoint { vm_uuid, image, copies } => {
            host.vm_checkpoint(vm_uuid, &path(image))?;
            if let Err(e) = copy_disks(host, copies, &|_| ()) {
                let _ = host.vdi_destroy(&dir(image), &image.uuid);
                return Err(e);
            }
            Ok(Done::Nothing)
        }
        Effect::ScanDisks { sr_dir, iso } => list_sr(host, sr_dir, *iso),
        Effect::SrCreate { sr_dir, make, iso } => {
            host.sr_make(std::path::Path::new(sr_dir), *make)?;
            list_sr(host, sr_dir, *iso)
        }
        Effect::SrRemove { sr_dir } => host.sr_remove(std::path::Path::new(sr_dir)).map(|()| Done::Nothing),
        Effect::DestroyDisks(files) => {
            for file in files {
                host.vdi_destroy(&dir(file), &file.uuid)?;
            }
            Ok(Done::Nothing)
        }
        Effect::ResizeDisk { file, size } => host.vdi_resize(&dir(file), &file.uuid, *size).map(|()| Done::Nothing),
        Effect::HostPower { vm_uuids } => {
            for vm in vm_uuids {
                host.vm_shutdown(vm, false)?;
            }
            Ok(Done::Nothing)
        }
        Effect::VmMigrate { vm_uuid } => Ok(Done::Domain { domid: host.vm_migrate(vm_uuid)?.domid }),
        Effect::VmStat { vm_uuid } => {
            Ok(Done::DomainExists(host.vm_power_state(vm_uuid) != crate::host::PowerState::Halted))
        }
        Effect::VmRevert { vm_uuid, halt, copies, image, remove } => {
            // The new files first: a failure leaves the VM as it was.
            let mut all: Vec<(DiskFile, DiskFile)> = copies.clone();
            all.extend(image.iter().cloned());
            copy_disks(host, &all, &|_| ())?;
            if *halt {
                host.vm_shutdown(vm_uuid, false)?;
            }
            if let Some((_, to)) = image {
                host.vm_set_suspended(vm_uuid, &path(to))?;
            }
            for file in remove {
                host.vdi_destroy(&dir(file), &file.uuid)?;
            }
            Ok(Done::Nothing)
        }
    }
}

fn list_sr(host: &dyn Host, sr_dir: &str, iso: bool) -> Result<Done, HostError> {
    let dir = std::path::Path::new(sr_dir);
    let (size, free) = host.sr_stat(dir)?;
    let (disks, isos) = if iso { (Vec::new(), host.iso_list(dir)?) } else { (host.vdi_list(dir)?, Vec::new()) };
    Ok(Done::Sr(crate::engine::effect::SrListing { size, free, disks, isos }))
}

/// Copies disk files; on a failure the copies made so far are removed.
fn copy_disks(host: &dyn Host, copies: &[(DiskFile, DiskFile)], progress: &dyn Fn(f64)) -> Result<(), HostError> {
    let dir = |f: &DiskFile| std::path::PathBuf::from(&f.sr_dir);
    let mut made = Vec::new();
    let n = copies.len().max(1) as f64;
    for (i, (from, to)) in copies.iter().enumerate() {
        let part = |f: f64| progress((i as f64 + f) / n);
        if let Err(e) = host.vdi_copy(&dir(from), &from.uuid, &dir(to), &to.uuid, &part) {
            for f in made {
                let _ = host.vdi_destroy(&dir(f), &f.uuid);
            }
            return Err(e);
        }
        made.push(to);
    }
    Ok(())
}

/// A host's refusal as the API says it.
fn host_error(state: &crate::engine::State, e: HostError) -> ApiError {
    match e {
        HostError::BadPowerState { uuid, operation: _, expected, actual } => {
            let vms = schema().class("VM").expect("VM");
            let vm = state.table(vms.id).by_uuid.get(uuid.as_str()).map(|r| r.to_string()).unwrap_or(uuid);
            ApiError::new(
                ErrorCode::VmBadPowerState,
                [vm, expected.as_str().to_ascii_lowercase(), actual.as_str().to_ascii_lowercase()],
            )
        }
        // A disk or directory the host could not use: the storage backend's failure, as xapi
        // reports an SM plugin's (`SR_BACKEND_FAILURE [status, stdout, stderr]`).
        HostError::Io { path, source } => ApiError::new(
            ErrorCode::SrBackendFailure,
            [format!("{:?}", source.kind()), String::new(), format!("{}: {source}", path.display())],
        ),
        other => ApiError::internal(other.to_string()),
    }
}

/// After a start: operations a crash interrupted are cleared, and each VM's power state is what
/// the host reports (xapi's `VM.power_state_reset` semantics), in one entry if anything differs.
pub fn reconcile(ledger: &Ledger, host: &dyn Host) -> Result<(), ApiError> {
    let state = ledger.snapshot();
    let class = schema().class("VM").expect("VM");
    let f = |n: &str| class.field(n).expect("a VM field");
    let (power, uuid, control, current) =
        (f("power_state"), f("uuid"), f("is_control_domain"), f("current_operations"));
    let mut vms = Vec::new();
    for (r, o) in state.table(class.id).objects.iter() {
        if o.fields[control].as_bool() == Some(true) {
            continue;
        }
        let reported = host.vm_power_state(o.fields[uuid].as_str().unwrap_or(""));
        let stale_ops = o.fields[current].as_map().is_some_and(|m| {
            m.iter().any(|(t, _)| !crate::engine::internal::task_is_pending(&state, t.as_str().unwrap_or("")))
        });
        if stale_ops || o.fields[power].as_str() != Some(reported.as_str()) {
            vms.push((r.to_string(), reported.as_str().to_string()));
        }
    }
    tidy_disks(&state, host);
    if vms.is_empty()
        && !crate::engine::internal::hosts_need_reconcile(&state)
        && crate::engine::internal::stale_marks(&state).is_empty()
    {
        return Ok(());
    }
    tracing::warn!(vms = vms.len(), "reconciling VMs with what the host reports");
    ledger.call_blocking(Job::internal(Actor::server("start-up"), InternalOp::Reconcile(vms))).map(|_| ())
}

/// Removes what interrupted disk effects left in the SRs' directories: partial copies, and the
/// files of operations whose outcome was never logged (their uuids derive from the task, and no
/// VDI record names them). The source of a copy is never touched.
fn tidy_disks(state: &crate::engine::State, host: &dyn Host) {
    let mut tasks: Vec<String> = crate::engine::internal::stale_marks(state).into_iter().map(|(_, _, t)| t).collect();
    let vms = schema().class("VM").expect("VM");
    let current = vms.field("current_operations").expect("ops");
    for (_, o) in state.table(vms.id).objects.iter() {
        for (t, _) in o.fields[current].as_map().unwrap_or(&[]) {
            let t = t.as_str().unwrap_or("");
            if !crate::engine::internal::task_is_pending(state, t) {
                tasks.push(t.to_string());
            }
        }
    }
    let vdis = state.table(schema().class("VDI").expect("VDI").id);
    let orphans: Vec<String> = tasks
        .iter()
        .flat_map(|t| (0..DERIVED_UUIDS_PER_TASK).map(move |i| crate::engine::derived_uuid(t, i)))
        .filter(|uuid| !vdis.by_uuid.contains_key(uuid.as_str()))
        .collect();
    for dir in crate::engine::sr_dirs(state) {
        match host.sr_tidy(std::path::Path::new(&dir), &orphans) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(sr_dir = %dir, files = n, "removed disk files an interrupted operation left"),
            Err(e) => tracing::warn!(sr_dir = %dir, "tidying an SR's directory: {e}"),
        }
    }
}

/// How many new disk files one operation may make (their uuids `derived_uuid(task, 0..)`).
const DERIVED_UUIDS_PER_TASK: u32 = 256;
