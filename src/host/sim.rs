//! The simulated host: domains are entries in a table (with the domids a Xen host hands out,
//! from 1 up; 0 is the control domain), suspend images and VDIs are real files, VDIs sparse, so
//! a client that writes a disk's bytes and reads them back sees them.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{vdi_path, Domain, Host, HostError, PowerState, VmSpec, PARTIAL_SUFFIX};

#[derive(Debug, Default)]
pub struct SimHost {
    domains: Mutex<Domains>,
    /// Where the domain table is kept, so that domains outlive a restart of the server as they
    /// outlive a restart of xapi on a real host.
    state_file: Option<PathBuf>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Domains {
    /// VM uuid → its domid (none while suspended) and state; a halted VM has no entry.
    by_vm: HashMap<String, (Option<i64>, PowerState)>,
    last_domid: i64,
}

impl SimHost {
    pub fn new() -> SimHost {
        SimHost::default()
    }

    /// A simulated host whose domains are kept in `state_file` (loaded if it exists).
    pub fn open(state_file: &Path) -> SimHost {
        let domains =
            std::fs::read(state_file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        SimHost { domains: Mutex::new(domains), state_file: Some(state_file.to_path_buf()) }
    }

    /// Reads the domain table (nothing to save).
    fn peek<T>(&self, f: impl FnOnce(&Domains) -> T) -> T {
        f(&self.domains.lock().expect("sim host lock"))
    }

    /// Changes the domain table and saves it.
    fn with<T>(&self, f: impl FnOnce(&mut Domains) -> T) -> T {
        let mut domains = self.domains.lock().expect("sim host lock");
        let result = f(&mut domains);
        if let Some(path) = &self.state_file {
            let tmp = path.with_extension("tmp");
            let saved = serde_json::to_vec(&*domains)
                .map_err(std::io::Error::other)
                .and_then(|bytes| private().write(true).create(true).truncate(true).open(&tmp)?.write_all(&bytes))
                .and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = saved {
                tracing::error!("saving the simulated host's domains to {}: {e}", path.display());
            }
        }
        result
    }
}

/// Files of the simulated host (VDIs, suspend images, its state) are the owner's only: they hold
/// guests' bytes.
fn private() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    options.mode(0o600);
    options
}

/// A simulated memory image: enough for a resume to know whose it is.
fn write_image(vm_uuid: &str, image: &Path) -> Result<(), HostError> {
    let mut file = private().write(true).create(true).truncate(true).open(image).map_err(io(image))?;
    file.write_all(format!("xenledger simulated suspend image of VM {vm_uuid}\n").as_bytes()).map_err(io(image))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HostError + '_ {
    move |source| HostError::Io { path: path.to_path_buf(), source }
}

impl Domains {
    fn state(&self, uuid: &str) -> PowerState {
        self.by_vm.get(uuid).map_or(PowerState::Halted, |(_, s)| *s)
    }

    fn expect(&self, uuid: &str, operation: &'static str, expected: PowerState) -> Result<(), HostError> {
        let actual = self.state(uuid);
        if actual == expected {
            Ok(())
        } else {
            Err(HostError::BadPowerState { uuid: uuid.to_string(), operation, expected, actual })
        }
    }

    /// Sets a VM's state: `Halted` forgets it, `Suspended` keeps it without a domain, and the
    /// others keep its domain (creating one if it has none).
    fn set(&mut self, uuid: &str, state: PowerState) -> Option<Domain> {
        match state {
            PowerState::Halted => {
                self.by_vm.remove(uuid);
                None
            }
            PowerState::Suspended => {
                self.by_vm.insert(uuid.to_string(), (None, state));
                None
            }
            PowerState::Running | PowerState::Paused => {
                let domid = match self.by_vm.get(uuid).and_then(|(d, _)| *d) {
                    Some(domid) => domid,
                    None => {
                        self.last_domid += 1;
                        self.last_domid
                    }
                };
                self.by_vm.insert(uuid.to_string(), (Some(domid), state));
                Some(Domain { domid })
            }
        }
    }
}

impl Host for SimHost {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn vm_power_state(&self, vm_uuid: &str) -> PowerState {
        self.peek(|d| d.state(vm_uuid))
    }

    fn vm_start(&self, vm: &VmSpec, paused: bool) -> Result<Domain, HostError> {
        self.with(|d| {
            d.expect(&vm.uuid, "start", PowerState::Halted)?;
            Ok(d.set(&vm.uuid, if paused { PowerState::Paused } else { PowerState::Running }).expect("a domain"))
        })
    }

    fn vm_shutdown(&self, vm_uuid: &str, clean: bool) -> Result<(), HostError> {
        self.with(|d| {
            // A hard shutdown also ends a paused or suspended VM; a clean one needs a running guest.
            let state = d.state(vm_uuid);
            let hard_ok = matches!(state, PowerState::Paused | PowerState::Suspended);
            d.expect(vm_uuid, "shutdown", if !clean && hard_ok { state } else { PowerState::Running })?;
            d.set(vm_uuid, PowerState::Halted);
            Ok(())
        })
    }

    fn vm_pause(&self, vm_uuid: &str) -> Result<(), HostError> {
        self.with(|d| {
            d.expect(vm_uuid, "pause", PowerState::Running)?;
            d.set(vm_uuid, PowerState::Paused);
            Ok(())
        })
    }

    fn vm_unpause(&self, vm_uuid: &str) -> Result<(), HostError> {
        self.with(|d| {
            d.expect(vm_uuid, "unpause", PowerState::Paused)?;
            d.set(vm_uuid, PowerState::Running);
            Ok(())
        })
    }

    fn vm_suspend(&self, vm_uuid: &str, image: &Path) -> Result<(), HostError> {
        self.with(|d| {
            d.expect(vm_uuid, "suspend", PowerState::Running)?;
            write_image(vm_uuid, image)?;
            d.set(vm_uuid, PowerState::Suspended);
            Ok(())
        })
    }

    fn vm_checkpoint(&self, vm_uuid: &str, image: &Path) -> Result<(), HostError> {
        self.with(|d| {
            d.expect(vm_uuid, "checkpoint", PowerState::Running)?;
            write_image(vm_uuid, image)
        })
    }

    fn vm_set_suspended(&self, vm_uuid: &str, image: &Path) -> Result<(), HostError> {
        self.with(|d| {
            d.expect(vm_uuid, "revert", PowerState::Halted)?;
            std::fs::metadata(image).map_err(io(image))?;
            d.set(vm_uuid, PowerState::Suspended);
            Ok(())
        })
    }

    fn vm_migrate(&self, vm_uuid: &str) -> Result<Domain, HostError> {
        self.with(|d| {
            let state = d.state(vm_uuid);
            if !matches!(state, PowerState::Running | PowerState::Paused) {
                d.expect(vm_uuid, "migrate", PowerState::Running)?;
            }
            // The domain is rebuilt on the destination (here, this host): a new domid.
            d.by_vm.remove(vm_uuid);
            Ok(d.set(vm_uuid, state).expect("a domain"))
        })
    }

    fn vm_resume(&self, vm: &VmSpec, image: &Path, paused: bool) -> Result<Domain, HostError> {
        self.with(|d| {
            d.expect(&vm.uuid, "resume", PowerState::Suspended)?;
            let text = std::fs::read_to_string(image).map_err(io(image))?;
            if !text.contains(&vm.uuid) {
                return Err(HostError::Io {
                    path: image.to_path_buf(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not this VM's suspend image"),
                });
            }
            Ok(d.set(&vm.uuid, if paused { PowerState::Paused } else { PowerState::Running }).expect("a domain"))
        })
    }

    fn vdi_create(&self, sr_dir: &Path, vdi_uuid: &str, virtual_size: u64) -> Result<PathBuf, HostError> {
        let path = vdi_path(sr_dir, vdi_uuid);
        let file = private().write(true).create_new(true).open(&path).map_err(io(&path))?;
        // Sparse: the length is set, no block is written.
        file.set_len(virtual_size).map_err(io(&path))?;
        Ok(path)
    }

    /// A file already gone is no error: the VDI it backed can still be forgotten.
    fn vdi_destroy(&self, sr_dir: &Path, vdi_uuid: &str) -> Result<(), HostError> {
        let path = vdi_path(sr_dir, vdi_uuid);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other.map_err(io(&path)),
        }
    }

    fn vdi_resize(&self, sr_dir: &Path, vdi_uuid: &str, virtual_size: u64) -> Result<(), HostError> {
        let path = vdi_path(sr_dir, vdi_uuid);
        let file = OpenOptions::new().write(true).open(&path).map_err(io(&path))?;
        file.set_len(virtual_size).map_err(io(&path))
    }

    fn vdi_list(&self, sr_dir: &Path) -> Result<Vec<(String, u64, u64)>, HostError> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(sr_dir).map_err(io(sr_dir))? {
            let entry = entry.map_err(io(sr_dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(stem) = name.strip_suffix(".img") else { continue };
            let meta = entry.metadata().map_err(io(&entry.path()))?;
            if !stem.is_empty() && meta.is_file() {
                out.push((stem.to_string(), meta.len(), meta.blocks() * 512));
            }
        }
        out.sort();
        Ok(out)
    }

    fn vdi_copy(
        &self,
        from_dir: &Path,
        from_uuid: &str,
        to_dir: &Path,
        to_uuid: &str,
        progress: &dyn Fn(f64),
    ) -> Result<(), HostError> {
        let (from, to) = (vdi_path(from_dir, from_uuid), vdi_path(to_dir, to_uuid));
        let partial = to_dir.join(format!("{to_uuid}{PARTIAL_SUFFIX}"));
        let keep_len = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
        let copied = copy_sparse(&from, &partial, progress)
            .and_then(|()| {
                let file = OpenOptions::new().write(true).open(&partial)?;
                if file.metadata()?.len() < keep_len {
                    file.set_len(keep_len)?;
                }
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&partial, &to));
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(io(&to)(e));
        }
        Ok(())
    }

    fn vdi_open(&self, sr_dir: &Path, vdi_uuid: &str, write: bool) -> Result<std::fs::File, HostError> {
        let path = vdi_path(sr_dir, vdi_uuid);
        OpenOptions::new().read(true).write(write).open(&path).map_err(io(&path))
    }

    fn sr_make(&self, sr_dir: &Path, make: bool) -> Result<(), HostError> {
        if make {
            std::fs::create_dir_all(sr_dir).map_err(io(sr_dir))?;
        }
        match std::fs::metadata(sr_dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(io(sr_dir)(std::io::ErrorKind::NotADirectory.into())),
            Err(e) => Err(io(sr_dir)(e)),
        }
    }

    fn sr_remove(&self, sr_dir: &Path) -> Result<(), HostError> {
        match std::fs::remove_dir(sr_dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                tracing::warn!("{} still holds files: left in place", sr_dir.display());
                Ok(())
            }
            other => other.map_err(io(sr_dir)),
        }
    }

    fn sr_stat(&self, sr_dir: &Path) -> Result<(u64, u64), HostError> {
        let st = rustix::fs::statvfs(sr_dir).map_err(|e| io(sr_dir)(e.into()))?;
        Ok((st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize))
    }

    fn iso_list(&self, sr_dir: &Path) -> Result<Vec<(String, u64)>, HostError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(sr_dir).map_err(io(sr_dir))? {
            let entry = entry.map_err(io(sr_dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let meta = entry.metadata().map_err(io(&entry.path()))?;
            if name.to_ascii_lowercase().ends_with(".iso") && meta.is_file() {
                out.push((name, meta.len()));
            }
        }
        out.sort();
        Ok(out)
    }

    fn sr_tidy(&self, sr_dir: &Path, orphans: &[String]) -> Result<usize, HostError> {
        let mut removed = 0;
        for entry in std::fs::read_dir(sr_dir).map_err(io(sr_dir))? {
            let entry = entry.map_err(io(sr_dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let orphan = name.strip_suffix(".img").is_some_and(|uuid| orphans.iter().any(|o| o == uuid));
            if orphan || name.ends_with(PARTIAL_SUFFIX) {
                std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Copies `from` into a new file `to`, reading only the data extents (SEEK_DATA/SEEK_HOLE) and
/// writing only chunks that hold data: the copy of a sparse disk stays sparse and costs what its
/// data costs. The copy is on disk (fsync) when this returns.
fn copy_sparse(from: &Path, to: &Path, progress: &dyn Fn(f64)) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut src = std::fs::File::open(from)?;
    let len = src.metadata()?.len();
    let mut dst = private().write(true).create_new(true).open(to)?;
    dst.set_len(len)?;
    const CHUNK: usize = 1 << 20;
    let (mut chunk, zeros) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut pos = 0u64;
    while pos < len {
        let start = match rustix::fs::seek(&src, rustix::fs::SeekFrom::Data(pos)) {
            Ok(at) => at,
            Err(rustix::io::Errno::NXIO) => break, // no data after `pos`
            Err(e) => return Err(e.into()),
        };
        let end = rustix::fs::seek(&src, rustix::fs::SeekFrom::Hole(start))?;
        src.seek(SeekFrom::Start(start))?;
        let mut at = start;
        while at < end {
            let want = CHUNK.min((end - at) as usize);
            src.read_exact(&mut chunk[..want])?;
            if chunk[..want] != zeros[..want] {
                dst.seek(SeekFrom::Start(at))?;
                dst.write_all(&chunk[..want])?;
            }
            at += want as u64;
            progress(at as f64 / len as f64);
        }
        pos = end;
    }
    dst.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn spec(uuid: &str) -> VmSpec {
        VmSpec { uuid: uuid.into(), memory_bytes: 1 << 30, vcpus: 1, hvm: true }
    }

    #[test]
    fn domains_follow_xapis_power_state_machine() {
        let host = SimHost::new();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(host.vm_power_state("a"), PowerState::Halted);
        assert_eq!(host.vm_start(&spec("a"), false).unwrap(), Domain { domid: 1 });
        assert!(matches!(host.vm_start(&spec("a"), false), Err(HostError::BadPowerState { .. })));
        host.vm_pause("a").unwrap();
        assert!(matches!(host.vm_shutdown("a", true), Err(HostError::BadPowerState { .. })));
        host.vm_unpause("a").unwrap();
        let image = dir.path().join("a.suspend");
        host.vm_suspend("a", &image).unwrap();
        assert_eq!(host.vm_power_state("a"), PowerState::Suspended);
        assert!(host.vm_resume(&spec("b"), &image, false).is_err(), "b is not suspended");
        assert_eq!(host.vm_resume(&spec("a"), &image, false).unwrap(), Domain { domid: 2 });
        host.vm_shutdown("a", false).unwrap();
        assert_eq!(host.vm_power_state("a"), PowerState::Halted);
    }

    #[test]
    fn vdis_are_sparse_files() {
        let host = SimHost::new();
        let dir = tempfile::tempdir().unwrap();
        let path = host.vdi_create(dir.path(), "v", 10 << 30).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 10 << 30);
        assert!(meta.blocks() * 512 < 1 << 20, "no blocks allocated for an empty disk");
        host.vdi_resize(dir.path(), "v", 20 << 30).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 20 << 30);
        assert!(host.vdi_create(dir.path(), "v", 1).is_err(), "an existing VDI is not overwritten");
        host.vdi_destroy(dir.path(), "v").unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_copy_is_sparse_and_appears_whole() {
        use std::os::unix::fs::FileExt;
        let host = SimHost::new();
        let dir = tempfile::tempdir().unwrap();
        host.vdi_create(dir.path(), "a", 64 << 20).unwrap();
        let file = host.vdi_open(dir.path(), "a", true).unwrap();
        file.write_all_at(b"first", 0).unwrap();
        file.write_all_at(b"last", (64 << 20) - 4).unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        host.vdi_copy(dir.path(), "a", dir.path(), "b", &|p| seen.lock().unwrap().push(p)).unwrap();
        let copy = std::fs::read(vdi_path(dir.path(), "b")).unwrap();
        assert_eq!((&copy[..5], &copy[copy.len() - 4..], copy.len()), (&b"first"[..], &b"last"[..], 64 << 20));
        let allocated = std::fs::metadata(vdi_path(dir.path(), "b")).unwrap().blocks() * 512;
        assert!(allocated <= 4 << 20, "the holes stayed holes: {allocated} bytes allocated");
        assert_eq!(seen.lock().unwrap().last(), Some(&1.0));
        // Into an existing, larger VDI: its content is replaced, its length kept.
        host.vdi_create(dir.path(), "big", 128 << 20).unwrap();
        host.vdi_open(dir.path(), "big", true).unwrap().write_all_at(b"old", 1 << 20).unwrap();
        host.vdi_copy(dir.path(), "a", dir.path(), "big", &|_| ()).unwrap();
        let big = std::fs::read(vdi_path(dir.path(), "big")).unwrap();
        assert_eq!((&big[..5], big.len(), &big[1 << 20..(1 << 20) + 3]), (&b"first"[..], 128 << 20, &[0u8; 3][..]));
        host.vdi_destroy(dir.path(), "big").unwrap();
        // What a crash leaves: a partial copy, and a whole file no record names.
        std::fs::write(dir.path().join(format!("c{PARTIAL_SUFFIX}")), b"half").unwrap();
        assert_eq!(host.sr_tidy(dir.path(), &["b".to_string()]).unwrap(), 2);
        assert_eq!(host.vdi_list(dir.path()).unwrap().iter().map(|d| d.0.as_str()).collect::<Vec<_>>(), ["a"]);
        assert!(vdi_path(dir.path(), "a").exists() && !vdi_path(dir.path(), "b").exists());
    }
}
