//! The first start of a data dir: the root user, the pool, this host and its metrics, because
//! every real client reads them right after login (docs/xenapi-semantics.md §i; the Go SDK refuses
//! to log in without `software_version.xapi`). Logged as one entry, so replay rebuilds them too.

use super::super::implicit::create_internal;
use super::super::tx::Tx;
use crate::auth;
use crate::entry::Change;
use crate::error::ApiError;
use crate::schema::generated::field as f;
use crate::schema::schema;
use crate::value::{Value, NULL_REF};

/// What a first start needs from outside the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct FirstBoot {
    /// root's password, as an argon2id PHC string.
    pub root_password_hash: String,
    pub hostname: String,
    pub address: String,
    /// The machine this host runs on, as measured at first start.
    pub machine: Machine,
}

/// The machine's CPUs and memory (docs/xenapi-semantics.md §i: a host reports its real ones).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Machine {
    pub cpus: i64,
    pub memory_bytes: i64,
}

impl Machine {
    /// The control domain's share: a quarter of the memory, at most 4 GiB, and at most 2 CPUs
    /// (a real host sizes dom0 from its memory too; xapi reads what it was given).
    fn dom0(self) -> (i64, i64) {
        ((self.memory_bytes / 4).min(4 << 30), self.cpus.clamp(1, 2))
    }
}

/// The product version the host reports (clients split it on dots into ints).
pub const PRODUCT_VERSION: &str = "8.4.0";
/// The `xapi` version key: `major.minor` (clients such as the Go SDK require it).
pub const XAPI_VERSION: &str = "25.33";

pub(super) fn run(tx: &mut Tx, first: FirstBoot) -> Result<Value, ApiError> {
    tx.push(Change::UserPut {
        name: auth::ROOT.into(),
        role: "pool-admin".into(),
        password_hash: first.root_password_hash.clone(),
    });
    let s = schema();
    let now = Value::DateTime(tx.ctx.now_secs());
    let metrics = create_internal(
        tx,
        "host_metrics",
        vec![
            ("memory_total", Value::Int(first.machine.memory_bytes)),
            ("memory_free", Value::Int(first.machine.memory_bytes - first.machine.dom0().0)),
            ("live", Value::Bool(true)),
            ("last_updated", now.clone()),
        ],
    );
    let software_version = Value::string_map([
        ("product_version", PRODUCT_VERSION),
        ("product_version_text", "8.4"),
        ("product_version_text_short", "8.4"),
        ("platform_name", "XCP"),
        ("platform_version", "3.4.0"),
        ("product_brand", "xenledger"),
        ("build_number", "xenledger"),
        ("xapi", XAPI_VERSION),
        ("xapi_build", XAPI_VERSION),
        ("hostname", "localhost"),
        ("network_backend", "openvswitch"),
        ("db_schema", "5.809"),
        ("xen", "4.17.0"),
        ("linux", "6.1.0"),
    ]);
    let api = format!("{}.{}", s.api_version_major, s.api_version_minor);
    let mut sv = software_version;
    if let Value::Map(entries) = &mut sv {
        entries.push((Value::str("xencenter_min"), Value::str(api.clone())));
        entries.push((Value::str("xencenter_max"), Value::str(api)));
    }
    let host = create_internal(
        tx,
        "host",
        vec![
            ("name_label", Value::String(first.hostname.clone())),
            ("name_description", Value::str("Default install")),
            ("hostname", Value::String(first.hostname.clone())),
            ("address", Value::String(first.address.clone())),
            ("enabled", Value::Bool(true)),
            ("API_version_major", Value::Int(s.api_version_major)),
            ("API_version_minor", Value::Int(s.api_version_minor)),
            ("API_version_vendor", Value::str("XenSource")),
            ("software_version", sv),
            ("sched_policy", Value::str("credit")),
            ("supported_bootloaders", Value::Set(vec![Value::str("pygrub"), Value::str("eliloader")])),
            ("metrics", Value::Ref(metrics)),
            ("cpu_info", cpu_info(first.machine.cpus)),
            // What a Xen host on x86-64 reports (xapi reads them from xenopsd): PV and HVM guests.
            (
                "capabilities",
                Value::Set(
                    ["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"]
                        .into_iter()
                        .map(Value::str)
                        .collect(),
                ),
            ),
        ],
    );
    control_domain(tx, &host, &first);
    create_internal(
        tx,
        "pool",
        vec![
            ("name_label", Value::str("")),
            ("master", Value::Ref(host)),
            ("default_SR", Value::Ref(NULL_REF.into())),
            ("other_config", Value::string_map([("memory-ratio-hvm", "0.25"), ("memory-ratio-pv", "0.25")])),
            ("ha_cluster_stack", Value::str("xhad")),
        ],
    );
    Ok(Value::String(String::new()))
}

fn cpu_info(cpus: i64) -> Value {
    let count = cpus.max(1).to_string();
    Value::string_map([("cpu_count", count.as_str()), ("socket_count", "1"), ("vendor", "GenuineIntel")])
}

/// The objects xapi makes for the host's own domain (docs/xenapi-semantics.md §i, create_misc.ml):
/// the control-domain VM with its metrics and two consoles, and the host's CPUs. There is no
/// hypervisor here; they describe the host a client expects to see.
fn control_domain(tx: &mut Tx, host: &str, first: &FirstBoot) {
    let (dom0_memory, dom0_vcpus) = first.machine.dom0();
    let now = Value::DateTime(tx.ctx.now_secs());
    let metrics = create_internal(
        tx,
        "VM_metrics",
        vec![
            ("memory_actual", Value::Int(dom0_memory)),
            ("VCPUs_number", Value::Int(dom0_vcpus)),
            ("state", Value::Set(Vec::new())),
            ("start_time", now.clone()),
            ("last_updated", now),
            ("current_domain_type", Value::Enum("pv".into())),
        ],
    );
    let vm = create_internal(
        tx,
        "VM",
        vec![
            ("name_label", Value::String(format!("Control domain on host: {}", first.hostname))),
            ("name_description", Value::str("The domain which manages physical devices and manages other domains")),
            ("power_state", Value::Enum("Running".into())),
            ("user_version", Value::Int(1)),
            ("is_a_template", Value::Bool(false)),
            ("is_control_domain", Value::Bool(true)),
            ("domid", Value::Int(0)),
            ("resident_on", Value::Ref(host.to_string())),
            ("memory_static_max", Value::Int(dom0_memory)),
            ("memory_dynamic_max", Value::Int(dom0_memory)),
            ("memory_dynamic_min", Value::Int(dom0_memory)),
            ("memory_static_min", Value::Int(dom0_memory)),
            ("memory_target", Value::Int(dom0_memory)),
            ("VCPUs_max", Value::Int(dom0_vcpus)),
            ("VCPUs_at_startup", Value::Int(dom0_vcpus)),
            ("actions_after_shutdown", Value::Enum("destroy".into())),
            ("actions_after_reboot", Value::Enum("destroy".into())),
            ("actions_after_crash", Value::Enum("destroy".into())),
            ("domain_type", Value::Enum("pv".into())),
            ("metrics", Value::Ref(metrics)),
        ],
    );
    super::super::explicit::vm::power::consoles(tx, &vm, host);
    tx.put(f::host::CONTROL_DOMAIN, host, Value::Ref(vm));
    for number in 0..first.machine.cpus.max(1) {
        create_internal(
            tx,
            "host_cpu",
            vec![
                ("host", Value::Ref(host.to_string())),
                ("number", Value::Int(number)),
                ("vendor", Value::str("GenuineIntel")),
                ("speed", Value::Int(2400)),
                ("modelname", Value::str("xenledger virtual CPU")),
                ("utilisation", Value::Float(0.0)),
            ],
        );
    }
}
