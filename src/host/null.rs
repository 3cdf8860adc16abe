//! The null host: a server with no hypervisor and no storage. Every effect is refused, so no
//! operation can pretend to have happened.

use std::path::{Path, PathBuf};

use super::{Domain, Host, HostError, PowerState, VmSpec};

#[derive(Clone, Copy, Debug, Default)]
pub struct NullHost;

fn unsupported<T>(operation: &'static str) -> Result<T, HostError> {
    Err(HostError::Unsupported { backend: "null", operation })
}

impl Host for NullHost {
    fn name(&self) -> &'static str {
        "null"
    }

    fn vm_power_state(&self, _vm_uuid: &str) -> PowerState {
        PowerState::Halted
    }

    fn vm_start(&self, _vm: &VmSpec, _paused: bool) -> Result<Domain, HostError> {
        unsupported("start a VM")
    }

    fn vm_shutdown(&self, _vm_uuid: &str, _clean: bool) -> Result<(), HostError> {
        unsupported("shut a VM down")
    }

    fn vm_pause(&self, _vm_uuid: &str) -> Result<(), HostError> {
        unsupported("pause a VM")
    }

    fn vm_unpause(&self, _vm_uuid: &str) -> Result<(), HostError> {
        unsupported("unpause a VM")
    }

    fn vm_suspend(&self, _vm_uuid: &str, _image: &Path) -> Result<(), HostError> {
        unsupported("suspend a VM")
    }

    fn vm_checkpoint(&self, _vm_uuid: &str, _image: &Path) -> Result<(), HostError> {
        unsupported("checkpoint a VM")
    }

    fn vm_migrate(&self, _vm_uuid: &str) -> Result<Domain, HostError> {
        unsupported("migrate a VM")
    }

    fn vdi_list(&self, _sr_dir: &Path) -> Result<Vec<(String, u64, u64)>, HostError> {
        unsupported("list disks")
    }

    fn vm_set_suspended(&self, _vm_uuid: &str, _image: &Path) -> Result<(), HostError> {
        unsupported("revert a VM to a checkpoint")
    }

    fn vm_resume(&self, _vm: &VmSpec, _image: &Path, _paused: bool) -> Result<Domain, HostError> {
        unsupported("resume a VM")
    }

    fn vdi_create(&self, _sr_dir: &Path, _vdi_uuid: &str, _virtual_size: u64) -> Result<PathBuf, HostError> {
        unsupported("create a disk")
    }

    fn vdi_destroy(&self, _sr_dir: &Path, _vdi_uuid: &str) -> Result<(), HostError> {
        unsupported("destroy a disk")
    }

    fn vdi_resize(&self, _sr_dir: &Path, _vdi_uuid: &str, _virtual_size: u64) -> Result<(), HostError> {
        unsupported("resize a disk")
    }

    fn vdi_copy(
        &self,
        _from_dir: &Path,
        _from: &str,
        _to_dir: &Path,
        _to: &str,
        _progress: &dyn Fn(f64),
    ) -> Result<(), HostError> {
        unsupported("copy a disk")
    }

    fn vdi_open(&self, _sr_dir: &Path, _vdi_uuid: &str, _write: bool) -> Result<std::fs::File, HostError> {
        unsupported("transfer a disk's bytes")
    }

    fn sr_tidy(&self, _sr_dir: &Path, _orphans: &[String]) -> Result<usize, HostError> {
        Ok(0)
    }

    fn sr_make(&self, _sr_dir: &Path, _make: bool) -> Result<(), HostError> {
        unsupported("make a storage repository")
    }

    fn sr_remove(&self, _sr_dir: &Path) -> Result<(), HostError> {
        unsupported("remove a storage repository")
    }

    fn sr_stat(&self, _sr_dir: &Path) -> Result<(u64, u64), HostError> {
        unsupported("measure a storage repository")
    }

    fn iso_list(&self, _sr_dir: &Path) -> Result<Vec<(String, u64)>, HostError> {
        unsupported("list ISO images")
    }
}
