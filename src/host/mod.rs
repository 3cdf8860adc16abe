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

    /// The VDI files in an SR's directory: `(uuid, size, allocated bytes)` of each `<uuid>.img`.
    fn vdi_list(&self, sr_dir: &Path) -> Result<Vec<(String, u64, u64)>, HostError>;

    /// Copies a VDI's bytes into a new VDI (holes stay holes).
    fn vdi_copy(&self, from_dir: &Path, from_uuid: &str, to_dir: &Path, to_uuid: &str) -> Result<(), HostError>;
}

/// The backing file of a VDI in a file-backed SR's directory.
pub fn vdi_path(sr_dir: &Path, vdi_uuid: &str) -> PathBuf {
    sr_dir.join(format!("{vdi_uuid}.img"))
}
