//! The host seam: every effect on the machine a XenAPI server manages — a domain's life, a
//! disk's bytes — goes through the [`Host`] trait, never through the engine.
//!
//! A long operation is three log entries: one that marks it (`current_operations`), the effect
//! run here, off the writer, and one that records its outcome. Replay folds the entries and never
//! calls a host; after a crash between mark and outcome, the next start asks the host what is
//! true ([`Host::vm_power_state`]) and reconciles.
//!
//! Implementations: [`NullHost`] refuses every effect (a server with no hypervisor), and
//! [`SimHost`] simulates one: domains as in-memory state, VDIs as real sparse files in a directory
//! SR. A real backend (QEMU/KVM) implements the same trait.

mod null;
mod sim;

use std::path::{Path, PathBuf};

pub use null::NullHost;
pub use sim::SimHost;

/// A domain's power state as the backend sees it (xapi's `vm_power_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PowerState {
    Halted,
    Running,
    Paused,
    Suspended,
}

impl PowerState {
    /// The datamodel's enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::Halted => "Halted",
            PowerState::Running => "Running",
            PowerState::Paused => "Paused",
            PowerState::Suspended => "Suspended",
        }
    }
}

/// What a backend needs to build a domain for a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSpec {
    pub uuid: String,
    pub memory_bytes: u64,
    pub vcpus: u32,
    pub hvm: bool,
}

/// A running domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub domid: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// This backend has no such effect (the null host has none).
    #[error("the {backend} host cannot {operation}")]
    Unsupported { backend: &'static str, operation: &'static str },
    /// The VM's domain is not in the state the operation needs.
    #[error("VM {uuid} is {actual:?} on the host; {operation} needs {expected:?}")]
    BadPowerState { uuid: String, operation: &'static str, expected: PowerState, actual: PowerState },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Host-side effects. Each call is one effect, done when it returns; the caller records the
/// outcome as a log entry.
pub trait Host: Send + Sync + 'static {
    /// A short name for messages and logs.
    fn name(&self) -> &'static str;

    /// What the backend reports a VM's domain to be (`Halted` if it has none).
    fn vm_power_state(&self, vm_uuid: &str) -> PowerState;

    /// Builds and starts (or starts paused) the VM's domain.
    fn vm_start(&self, vm: &VmSpec, paused: bool) -> Result<Domain, HostError>;

    /// Stops the VM's domain; `clean` asks the guest first. A hard shutdown also ends a paused
    /// or suspended VM (xapi's `hard_shutdown` from Paused or Suspended).
    fn vm_shutdown(&self, vm_uuid: &str, clean: bool) -> Result<(), HostError>;

    fn vm_pause(&self, vm_uuid: &str) -> Result<(), HostError>;

    fn vm_unpause(&self, vm_uuid: &str) -> Result<(), HostError>;

    /// Saves the domain's memory into `image` and stops it.
    fn vm_suspend(&self, vm_uuid: &str, image: &Path) -> Result<(), HostError>;

    /// Saves the running domain's memory into `image` and lets it run on (a checkpoint).
    fn vm_checkpoint(&self, vm_uuid: &str, image: &Path) -> Result<(), HostError>;

    /// Moves the running (or paused) domain to a new domain on this host: a localhost
    /// migration, the only one a one-host pool has (xapi `xapi_vm_migrate.ml` `pool_migrate`).
    fn vm_migrate(&self, vm_uuid: &str) -> Result<Domain, HostError>;

    /// Records that the (halted) VM is suspended with `image` as its memory: a revert to a
    /// checkpoint. A real backend keeps no state for a suspended VM beyond its image.
    fn vm_set_suspended(&self, vm_uuid: &str, image: &Path) -> Result<(), HostError>;

    /// Restores the domain from `image`.
    fn vm_resume(&self, vm: &VmSpec, image: &Path, paused: bool) -> Result<Domain, HostError>;

    /// Creates the VDI's backing file of `virtual_size` bytes in the SR's directory.
    fn vdi_create(&self, sr_dir: &Path, vdi_uuid: &str, virtual_size: u64) -> Result<PathBuf, HostError>;

    /// Removes the VDI's backing file.
    fn vdi_destroy(&self, sr_dir: &Path, vdi_uuid: &str) -> Result<(), HostError>;

    /// Grows (or shrinks) the VDI's backing file.
    fn vdi_resize(&self, sr_dir: &Path, vdi_uuid: &str, virtual_size: u64) -> Result<(), HostError>;

    /// The VDI files in an SR's directory: `(location, size, allocated bytes)` of each
    /// `<location>.img` (a VDI's location is its uuid, unless it was introduced or scanned in
    /// under another name).
    fn vdi_list(&self, sr_dir: &Path) -> Result<Vec<(String, u64, u64)>, HostError>;

    /// Copies a VDI's bytes into another VDI's file (holes stay holes), calling `progress` with
    /// the fraction done now and then. The destination is a new file, or an existing one whose
    /// content is replaced (`VDI.copy` into a VDI; it keeps its length if that is larger). It
    /// changes whole or not at all: the copy is written under a temporary name
    /// ([`PARTIAL_SUFFIX`]) and renamed over it when complete.
    fn vdi_copy(
        &self,
        from_dir: &Path,
        from_uuid: &str,
        to_dir: &Path,
        to_uuid: &str,
        progress: &dyn Fn(f64),
    ) -> Result<(), HostError>;

    /// Opens a VDI's bytes for a transfer over HTTP (`/import_raw_vdi`, `/export_raw_vdi`):
    /// for writing (in place, its length kept) or for reading.
    fn vdi_open(&self, sr_dir: &Path, vdi_uuid: &str, write: bool) -> Result<std::fs::File, HostError>;

    /// Prepares an SR's directory (`SR.create`): made if `make` and missing; it must then exist.
    fn sr_make(&self, sr_dir: &Path, make: bool) -> Result<(), HostError>;

    /// Removes an SR's directory if it is empty (`SR.destroy` of an SR whose directory the
    /// server made); a directory that still holds files is left.
    fn sr_remove(&self, sr_dir: &Path) -> Result<(), HostError>;

    /// The size and the free bytes of the file system that holds an SR's directory.
    fn sr_stat(&self, sr_dir: &Path) -> Result<(u64, u64), HostError>;

    /// The `.iso` files of an ISO library: `(file name, size)`.
    fn iso_list(&self, sr_dir: &Path) -> Result<Vec<(String, u64)>, HostError>;

    /// Removes what an interrupted effect left in an SR's directory: files of copies that never
    /// completed, and the files `orphans` (uuids no VDI record names, made by operations whose
    /// outcome was never logged). Answers how many files went.
    fn sr_tidy(&self, sr_dir: &Path, orphans: &[String]) -> Result<usize, HostError>;
}

/// The suffix of a disk file still being written by a copy.
pub const PARTIAL_SUFFIX: &str = ".img.partial";

/// The backing file of a VDI in a file-backed SR's directory.
pub fn vdi_path(sr_dir: &Path, vdi_uuid: &str) -> PathBuf {
    sr_dir.join(format!("{vdi_uuid}.img"))
}
