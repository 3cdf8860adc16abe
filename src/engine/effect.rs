//! Host effects as data: what a long operation asks the host to do between the entry that marks
//! it and the entry that records its outcome (ARCHITECTURE.md, "Where new code goes"). The engine
//! only describes an effect; the node runs it through the `Host` trait, off the writer, and
//! replay never does.

/// What a domain is built from.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainSpec {
    pub vm_uuid: String,
    pub memory_bytes: u64,
    pub vcpus: u32,
    pub hvm: bool,
}

/// One disk file: the directory of its SR and its uuid.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskFile {
    pub sr_dir: String,
    pub uuid: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Nothing for the host to do (the bookkeeping alone is the operation).
    Nothing,
    VmStart {
        spec: DomainSpec,
        paused: bool,
    },
    /// Stops the domain; a suspended VM's `image` (its suspend VDI's file) is removed too.
    VmShutdown {
        vm_uuid: String,
        clean: bool,
        image: Option<DiskFile>,
    },
    VmReboot {
        spec: DomainSpec,
        clean: bool,
    },
    VmPause {
        vm_uuid: String,
    },
    VmUnpause {
        vm_uuid: String,
    },
    /// Saves the domain into the suspend image, a VDI file.
    VmSuspend {
        vm_uuid: String,
        image: DiskFile,
    },
    /// Restores the domain from the suspend image, then removes it.
    VmResume {
        spec: DomainSpec,
        image: DiskFile,
        paused: bool,
    },
    /// Saves a running domain's memory into `image` while it runs on, then copies the disks.
    VmCheckpoint {
        vm_uuid: String,
        image: DiskFile,
        copies: Vec<(DiskFile, DiskFile)>,
    },
    /// Moves a running or paused domain to a new domain on this host.
    VmMigrate {
        vm_uuid: String,
    },
    /// Asks whether the VM has a domain (`VM.power_state_reset` refuses one that does).
    VmStat {
        vm_uuid: String,
    },
    /// Puts a VM back as a snapshot had it: the snapshot's disks (and memory image, for a
    /// checkpoint) copied, then the VM's domain ended and its replaced disk files removed.
    VmRevert {
        vm_uuid: String,
        /// Whether the VM has a domain (or a suspended one) to end first.
        halt: bool,
        copies: Vec<(DiskFile, DiskFile)>,
        /// A checkpoint's memory image, copied to become the VM's: the VM is then suspended.
        image: Option<(DiskFile, DiskFile)>,
        remove: Vec<DiskFile>,
    },
    /// Stops the host's running guests (hard) before it reboots or shuts down.
    HostPower {
        vm_uuids: Vec<String>,
    },
    /// Creates sparse disk files of the given sizes.
    CreateDisks(Vec<(DiskFile, u64)>),
    /// Measures an SR's directory and lists its disk files (`.iso` images for an ISO library).
    ScanDisks {
        sr_dir: String,
        iso: bool,
    },
    /// Prepares a new SR's directory (made if `make`), then measures and lists it as `ScanDisks`.
    SrCreate {
        sr_dir: String,
        make: bool,
        iso: bool,
    },
    /// Removes an SR's directory the server made, if empty.
    SrRemove {
        sr_dir: String,
    },
    /// Removes disk files.
    DestroyDisks(Vec<DiskFile>),
    /// Grows a disk file to `size` bytes.
    ResizeDisk {
        file: DiskFile,
        size: u64,
    },
    /// Copies disk files (source, destination).
    CopyDisks(Vec<(DiskFile, DiskFile)>),
}

/// What the host reports back.
#[derive(Clone, Debug, PartialEq)]
pub enum Done {
    Nothing,
    /// The domain now running (or paused).
    Domain {
        domid: i64,
    },
    /// Whether the VM has a domain on the host (running, paused or suspended).
    DomainExists(bool),
    /// An SR's directory: its file system's size and free bytes, the disk files found
    /// (`(uuid, size, allocated bytes)`) and ISO images (`(file name, size)`).
    Sr(SrListing),
}

/// What the host found in an SR's directory.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SrListing {
    pub size: u64,
    pub free: u64,
    pub disks: Vec<(String, u64, u64)>,
    pub isos: Vec<(String, u64)>,
}
