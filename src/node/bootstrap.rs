//! First start: the root password (given or generated), then the `FirstStart` internal op
//! (`engine/internal/first_start.rs`) that creates root, the pool and this host.

use crate::auth;
use crate::engine::internal::{inventory_is_missing, FirstBoot, InternalOp, Inventory, Machine};
use crate::entry::Actor;
use crate::ledger::{Job, Ledger, LedgerError};
use crate::schema::schema;

/// What a first start needs from outside.
#[derive(Clone, Debug, Default)]
pub struct FirstStart {
    /// The root password; `None` generates one (returned once to be printed).
    pub root_password: Option<String>,
    pub hostname: String,
    pub address: String,
}

/// Whether the data dir has no pool yet: this start creates root, the pool and this host.
pub fn is_first_start(ledger: &Ledger) -> bool {
    let pool = schema().class("pool").expect("pool class");
    ledger.snapshot().table(pool.id).objects.is_empty()
}

/// Creates what a fresh server has, unless the data dir already has a pool. Returns the
/// generated root password, if one was generated.
pub fn ensure(ledger: &Ledger, first: &FirstStart) -> Result<Option<String>, LedgerError> {
    if !is_first_start(ledger) {
        return Ok(None);
    }
    let (password, generated) = match &first.root_password {
        Some(p) => (p.clone(), None),
        None => {
            let p = auth::generate_password();
            (p.clone(), Some(p))
        }
    };
    let op = InternalOp::FirstStart(Box::new(FirstBoot {
        root_password_hash: auth::hash_password(&password),
        hostname: first.hostname.clone(),
        address: first.address.clone(),
        machine: machine(),
    }));
    let job =
        Job::internal(Actor { session: String::new(), user: "xenledger".into(), originator: "first-start".into() }, op);
    ledger
        .call_blocking(job)
        .map_err(|e| LedgerError::Checkpoint { seq: 0, reason: format!("first start failed: {e}") })?;
    Ok(generated)
}

/// This machine's CPUs and memory (`/proc/meminfo`'s `MemTotal`; 16 GiB where it cannot be read).
fn machine() -> Machine {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<i64>().ok());
    Machine { cpus, memory_bytes: kib.map_or(16 << 30, |k| k * 1024) }
}

/// Adds the host's inventory (docs/xenapi-semantics.md §i) if the data dir lacks it: a new data
/// dir right after its first start, an older one on its next start. The local SR's VDI files live
/// in `DIR/sr-local` (`xenledger-sr-memory` under the system's temp dir for a ledger without a data dir).
pub fn ensure_inventory(ledger: &Ledger, address: &str) -> Result<(), LedgerError> {
    if !inventory_is_missing(&ledger.snapshot()) {
        return Ok(());
    }
    let dir = match ledger.dir() {
        Some(d) => d.join("sr-local"),
        // One shared directory for every ledger without a data dir (tests, simulations): VDI files
        // are named by uuid, so they never collide, and no run leaves a directory behind.
        None => std::env::temp_dir().join("xenledger-sr-memory"),
    };
    {
        use std::os::unix::fs::DirBuilderExt;
        // The SR's files hold guests' bytes: the owner's only, like the rest of the data dir.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| LedgerError::Io(dir.display().to_string(), e))?;
    }
    let (size, used) = file_system_use(&dir);
    let mut mac = [0u8; 6];
    crate::entropy::fill(&mut mac);
    let op = InternalOp::Inventory(Box::new(Inventory {
        local_sr_dir: dir.display().to_string(),
        local_sr_size: size,
        local_sr_used: used,
        address: address.to_string(),
        mac: crate::value::format_mac(mac),
    }));
    ledger
        .call_blocking(Job::internal(Actor::server("inventory"), op))
        .map_err(|e| LedgerError::Checkpoint { seq: 0, reason: format!("the host's inventory: {e}") })?;
    Ok(())
}

/// The size and the used bytes of the file system holding `dir` (as `df` reports them; zeros if
/// it cannot say).
fn file_system_use(dir: &std::path::Path) -> (i64, i64) {
    let out = std::process::Command::new("df").args(["-B1", "--output=size,used"]).arg(dir).output();
    let Ok(out) = out else { return (0, 0) };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut figures = text.lines().nth(1).unwrap_or("").split_whitespace().map(|n| n.parse::<i64>().unwrap_or(0));
    (figures.next().unwrap_or(0), figures.next().unwrap_or(0))
}
