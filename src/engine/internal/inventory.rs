//! What a freshly installed host holds besides the pool and itself (docs/xenapi-semantics.md §i):
//! SM records for the storage types offered, the "Local storage" SR with its plugged PBD (the
//! pool's default, suspend-image and crash-dump SR), the management network and its PIF, the host
//! internal management network, and the default templates (`schema/facts/templates.json`,
//! docs/templates.md). Added in one entry to any data dir that lacks it: a new one right after
//! the first start, an older one on its next start.

use std::sync::OnceLock;

use super::super::explicit::vm::{ops, the_pool, this_host};
use super::super::implicit::{create_internal, new_object};
use super::super::state::State;
use super::super::tx::Tx;
use crate::schema::generated::field as f;
use crate::schema::schema;
use crate::value::Value;

/// What the inventory needs from outside the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    /// The directory that holds the local SR's VDI files.
    pub local_sr_dir: String,
    /// Its file system's size and use, in bytes.
    pub local_sr_size: i64,
    pub local_sr_used: i64,
    /// The management interface's address and MAC.
    pub address: String,
    pub mac: String,
}

const TEMPLATES_JSON: &str = include_str!("../../../schema/facts/templates.json");

/// The default templates, parsed once.
pub fn templates() -> &'static [serde_json::Value] {
    static PARSED: OnceLock<Vec<serde_json::Value>> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(TEMPLATES_JSON).expect("schema/facts/templates.json is an array"))
}

/// Whether `state` lacks the inventory (no SM record: made before it existed).
pub fn is_missing(state: &State) -> bool {
    let sm = schema().class("SM").expect("SM");
    state.table(sm.id).objects.is_empty()
}

pub(super) fn run(tx: &mut Tx, inv: Inventory) {
    let host = this_host(&tx.state);
    storage_managers(tx);
    let sr = local_sr(tx, &host, &inv);
    if let Some(pool) = the_pool(&tx.state) {
        for f in ["default_SR", "suspend_image_SR", "crash_dump_SR"] {
            tx.set("pool", &pool, f, Value::Ref(sr.clone()));
        }
    }
    tx.put(f::host::SUSPEND_IMAGE_SR, &host, Value::Ref(sr.clone()));
    tx.put(f::host::CRASH_DUMP_SR, &host, Value::Ref(sr));
    networks(tx, &host, &inv);
    for t in templates() {
        template(tx, t);
    }
}

fn storage_managers(tx: &mut Tx) {
    type Sm = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);
    let types: [Sm; 4] = [
        (
            "ext",
            "Local EXT3 VHD",
            "SR plugin which represents disks as VHD files stored on a local EXT3 filesystem",
            &[("device", "local device path (required) (e.g. /dev/sda3)")],
        ),
        (
            "file",
            "Local Path VHD",
            "SR plugin which represents disks as files in a local directory",
            &[("location", "local directory path (required)")],
        ),
        (
            "iso",
            "ISO",
            "Handles CD images stored as files in iso format",
            &[("location", "path to mount (required)"), ("legacy_mode", "true (optional)")],
        ),
        ("udev", "Removable storage", "SR plugin which represents removable media as VDIs", &[]),
    ];
    for (ty, label, description, config) in types {
        let configuration = Value::Map(config.iter().map(|(k, v)| (Value::str(*k), Value::str(*v))).collect());
        let capabilities =
            super::super::explicit::sr::SM_TYPES.iter().find(|(t, _)| *t == ty).map_or(&[][..], |(_, caps)| caps);
        create_internal(
            tx,
            "SM",
            vec![
                ("name_label", Value::str(label)),
                ("name_description", Value::str(description)),
                ("type", Value::str(ty)),
                ("vendor", Value::str("xenledger")),
                ("copyright", Value::str("")),
                ("version", Value::str("1.0")),
                ("required_api_version", Value::str("1.0")),
                ("configuration", configuration),
                ("capabilities", Value::Set(capabilities.iter().map(|c| Value::str(*c)).collect())),
                ("features", Value::Map(capabilities.iter().map(|c| (Value::str(*c), Value::Int(1))).collect())),
                ("driver_filename", Value::String(format!("/opt/xensource/sm/{}SR", ty.to_uppercase()))),
            ],
        );
    }
}

fn local_sr(tx: &mut Tx, host: &str, inv: &Inventory) -> String {
    let sr = create_internal(
        tx,
        "SR",
        vec![
            ("name_label", Value::str("Local storage")),
            ("name_description", Value::str("")),
            ("type", Value::str("ext")),
            ("content_type", Value::str("user")),
            ("shared", Value::Bool(false)),
            ("physical_size", Value::Int(inv.local_sr_size)),
            ("physical_utilisation", Value::Int(inv.local_sr_used)),
            ("virtual_allocation", Value::Int(0)),
            (
                "other_config",
                Value::string_map([("i18n-key", "local-storage"), ("i18n-original-value-name_label", "Local storage")]),
            ),
            ("sm_config", Value::string_map([("devserial", "xenledger-local")])),
            (
                "allowed_operations",
                Value::Set(
                    [
                        "scan",
                        "vdi_create",
                        "vdi_destroy",
                        "vdi_resize",
                        "vdi_clone",
                        "vdi_snapshot",
                        "update",
                        "unplug",
                        "plug",
                        "pbd_create",
                        "pbd_destroy",
                    ]
                    .iter()
                    .map(|o| Value::Enum((*o).into()))
                    .collect(),
                ),
            ),
        ],
    );
    create_internal(
        tx,
        "PBD",
        vec![
            ("host", Value::Ref(host.to_string())),
            ("SR", Value::Ref(sr.clone())),
            (
                "device_config",
                Value::string_map([("device", "/dev/xenledger-local"), ("location", inv.local_sr_dir.as_str())]),
            ),
            ("currently_attached", Value::Bool(true)),
        ],
    );
    sr
}

fn networks(tx: &mut Tx, host: &str, inv: &Inventory) {
    create_internal(
        tx,
        "network",
        vec![
            ("name_label", Value::str("Host internal management network")),
            ("name_description", Value::str("Network on which guests will be assigned a private link-local IP address which can be used to talk XenAPI")),
            ("bridge", Value::str("xenapi")),
            ("MTU", Value::Int(1500)),
            (
                "other_config",
                Value::string_map([
                    ("is_guest_installer_network", "true"),
                    ("is_host_internal_management_network", "true"),
                    ("ip_begin", "169.254.0.1"),
                    ("ip_end", "169.254.255.254"),
                    ("netmask", "255.255.0.0"),
                ]),
            ),
        ],
    );
    // Two NICs: eth0 carries the management interface; eth1 is plugged with no address, as the
    // first-boot script leaves every other NIC (xapi scripts/network-init).
    for (n, mac) in [(0, inv.mac.clone()), (1, next_mac(&inv.mac))] {
        let network = create_internal(
            tx,
            "network",
            vec![
                ("name_label", Value::String(format!("Pool-wide network associated with eth{n}"))),
                ("bridge", Value::String(format!("xenbr{n}"))),
                ("MTU", Value::Int(1500)),
                ("managed", Value::Bool(true)),
            ],
        );
        let metrics = create_internal(
            tx,
            "PIF_metrics",
            vec![("carrier", Value::Bool(true)), ("speed", Value::Int(1000)), ("duplex", Value::Bool(true))],
        );
        let management = n == 0;
        let (mode, ip, netmask) =
            if management { ("Static", inv.address.as_str(), "255.255.255.0") } else { ("None", "", "") };
        create_internal(
            tx,
            "PIF",
            vec![
                ("device", Value::String(format!("eth{n}"))),
                ("network", Value::Ref(network)),
                ("host", Value::Ref(host.to_string())),
                ("MAC", Value::String(mac)),
                ("MTU", Value::Int(1500)),
                ("VLAN", Value::Int(-1)),
                ("metrics", Value::Ref(metrics)),
                ("physical", Value::Bool(true)),
                ("currently_attached", Value::Bool(true)),
                ("ip_configuration_mode", Value::Enum(mode.into())),
                ("IP", Value::str(ip)),
                ("netmask", Value::str(netmask)),
                ("management", Value::Bool(management)),
                ("primary_address_type", Value::Enum("IPv4".into())),
                ("managed", Value::Bool(true)),
                ("properties", Value::string_map([("gro", "on")])),
            ],
        );
    }
}

/// The MAC after `mac` (the next NIC of the same card): its last byte plus one.
fn next_mac(mac: &str) -> String {
    let mut bytes: Vec<u8> = mac.split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
    if let Some(last) = bytes.last_mut() {
        *last = last.wrapping_add(1);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn string_map(v: &serde_json::Value) -> Value {
    Value::Map(
        v.as_object()
            .map(|m| m.iter().map(|(k, v)| (Value::str(k.as_str()), Value::str(v.as_str().unwrap_or("")))).collect())
            .unwrap_or_default(),
    )
}

/// One default template: a halted VM with `is_a_template` and `is_default_template`.
fn template(tx: &mut Tx, t: &serde_json::Value) {
    let s = |k: &str| Value::str(t[k].as_str().unwrap_or(""));
    let i = |k: &str| Value::Int(t[k].as_i64().unwrap_or(0));
    let now = Value::DateTime(tx.ctx.now_secs());
    let metrics = create_internal(tx, "VM_metrics", vec![("last_updated", now)]);
    let mut other = string_map(&t["other_config"]);
    if let Value::Map(entries) = &mut other {
        entries.push((Value::str("mac_seed"), Value::String(tx.new_uuid())));
    }
    let reference = tx.new_ref();
    let uuid = t["uuid"].as_str().unwrap_or("").to_string();
    tx.push(new_object(
        "VM",
        &reference,
        &uuid,
        vec![
            ("name_label", s("name_label")),
            ("name_description", s("name_description")),
            ("reference_label", s("reference_label")),
            ("is_a_template", Value::Bool(true)),
            ("is_default_template", Value::Bool(true)),
            ("power_state", Value::Enum("Halted".into())),
            ("user_version", Value::Int(1)),
            ("domid", Value::Int(-1)),
            ("memory_static_min", i("memory_static_min")),
            ("memory_static_max", i("memory_static_max")),
            ("memory_dynamic_min", i("memory_dynamic_min")),
            ("memory_dynamic_max", i("memory_dynamic_max")),
            ("memory_target", i("memory_dynamic_max")),
            ("VCPUs_max", i("VCPUs_max")),
            ("VCPUs_at_startup", i("VCPUs_at_startup")),
            ("actions_after_shutdown", Value::Enum("destroy".into())),
            ("actions_after_reboot", Value::Enum("restart".into())),
            ("actions_after_crash", Value::Enum("restart".into())),
            ("HVM_boot_policy", s("HVM_boot_policy")),
            ("HVM_boot_params", string_map(&t["HVM_boot_params"])),
            ("HVM_shadow_multiplier", Value::Float(1.0)),
            ("PV_bootloader", s("PV_bootloader")),
            ("PV_args", s("PV_args")),
            ("domain_type", Value::Enum(t["domain_type"].as_str().unwrap_or("hvm").into())),
            ("platform", string_map(&t["platform"])),
            ("other_config", other),
            ("recommendations", s("recommendations")),
            ("blocked_operations", string_map(&t["blocked_operations"])),
            ("has_vendor_device", Value::Bool(t["has_vendor_device"].as_bool().unwrap_or(false))),
            ("hardware_platform_version", i("hardware_platform_version")),
            ("metrics", Value::Ref(metrics)),
        ],
    ));
    ops::refresh(tx, &reference);
}
