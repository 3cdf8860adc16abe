//! The hand-written network commands (`cli_operations.ml`): networks, VIFs, PIF addressing and
//! VLANs.

use serde_json::{Map, Value as Json};

use super::api::s;
use super::argv::Params;
use super::failure::XeError;
use super::generic::internal;
use super::records;
use super::table::{hand, Spec};
use super::Ctx;

pub const COMMANDS: &[Spec] = &[
    hand(
        "network-create",
        &["name-label"],
        &["name-description", "MTU", "bridge", "managed"],
        "Create a network; prints its uuid.",
        network_create,
    ),
    hand("network-destroy", &["uuid"], &[], "Destroy a network.", network_destroy),
    hand(
        "vif-create",
        &["device", "network-uuid", "vm-uuid"],
        &["mac"],
        "Create a VIF joining a VM to a network (mac=random, or empty for one made from the VM's seed); prints its uuid.",
        vif_create,
    ),
    hand("vif-destroy", &["uuid"], &[], "Destroy a VIF.", vif_destroy),
    hand("vif-plug", &["uuid"], &[], "Hot-plug a VIF into its running VM.", vif_plug),
    hand("vif-unplug", &["uuid"], &["force"], "Hot-unplug a VIF from its running VM.", vif_unplug),
    hand(
        "pif-reconfigure-ip",
        &["uuid", "mode"],
        &["IP", "netmask", "gateway", "DNS"],
        "Set a PIF's IPv4 configuration: mode=none, dhcp or static (with IP, netmask, gateway, DNS).",
        pif_reconfigure_ip,
    ),
    hand("pif-plug", &["uuid"], &[], "Bring a PIF up.", pif_plug),
    hand("pif-unplug", &["uuid"], &[], "Take a PIF down.", pif_unplug),
    hand(
        "vlan-create",
        &["pif-uuid", "vlan", "network-uuid"],
        &[],
        "Create a VLAN on a PIF into a network; prints the new VLAN PIF's uuid.",
        vlan_create,
    ),
    hand("vlan-destroy", &["uuid"], &[], "Destroy a VLAN (or its PIF).", vlan_destroy),
];

fn empty_map() -> Json {
    Json::Object(Map::new())
}

fn network_create(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let mtu: i64 = match params.get("MTU") {
        None => 1500,
        Some(t) => t.parse().map_err(|_| XeError::api("INTERNAL_ERROR", &["Failure: Int64.of_string"]))?,
    };
    let mut record = Map::new();
    record.insert("name_label".into(), s(params.req("name-label")?));
    record.insert("name_description".into(), s(params.get("name-description").unwrap_or("")));
    record.insert("MTU".into(), Json::from(mtu));
    record.insert("other_config".into(), empty_map());
    record.insert("bridge".into(), s(params.get("bridge").unwrap_or("")));
    record.insert("managed".into(), Json::Bool(params.flag_or("managed", true)?));
    record.insert("tags".into(), Json::Array(Vec::new()));
    let net = ctx.api.call_str("network.create", vec![Json::Object(record)])?;
    ctx.print_uuid_of("network", &net)
}

fn network_destroy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "network", "network.destroy")
}

/// `Record_util.random_mac_local`: one random byte six times, marked local and unicast.
fn random_mac() -> String {
    let mut b = [0u8; 1];
    let _ = getrandom::fill(&mut b);
    let first = (b[0] | 0x02) & !0x01;
    format!("{first:02x}:{0:02x}:{0:02x}:{0:02x}:{0:02x}:{0:02x}", b[0])
}

fn vif_create(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let mac = match params.get("mac") {
        Some("random") => random_mac(),
        Some(m) => m.to_string(),
        None => String::new(),
    };
    let vm = records::ref_by_uuid(&ctx.api, "VM", params.req("vm-uuid")?)?;
    let net = records::ref_by_uuid(&ctx.api, "network", params.req("network-uuid")?)?;
    let mtu = ctx.api.call("network.get_MTU", vec![s(&net)])?;
    let mut record = Map::new();
    record.insert("device".into(), s(params.req("device")?));
    record.insert("network".into(), s(&net));
    record.insert("VM".into(), s(&vm));
    record.insert("MAC".into(), s(&mac));
    record.insert("MTU".into(), mtu);
    record.insert("other_config".into(), empty_map());
    record.insert("currently_attached".into(), Json::Bool(false));
    record.insert("qos_algorithm_type".into(), s(""));
    record.insert("qos_algorithm_params".into(), empty_map());
    record.insert("locking_mode".into(), s("network_default"));
    record.insert("ipv4_allowed".into(), Json::Array(Vec::new()));
    record.insert("ipv6_allowed".into(), Json::Array(Vec::new()));
    let vif = ctx.api.call_str("VIF.create", vec![Json::Object(record)])?;
    ctx.print_uuid_of("VIF", &vif)
}

fn vif_destroy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "VIF", "VIF.destroy")
}

fn vif_plug(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "VIF", "VIF.plug")
}

fn vif_unplug(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let method = if params.flag("force")? { "VIF.unplug_force" } else { "VIF.unplug" };
    ctx.on_uuid(params, "VIF", method)
}

fn pif_reconfigure_ip(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let pif = records::ref_by_uuid(&ctx.api, "PIF", params.req("uuid")?)?;
    let mode = match params.req("mode")?.to_ascii_lowercase().as_str() {
        "none" => "None",
        "dhcp" => "DHCP",
        "static" => "Static",
        other => return Err(internal(format!("Expected one of 'None', 'DHCP', 'Static', got {other}"))),
    };
    // xe matches the IP and DNS keys in any case.
    let any_case = |key: &str| {
        params.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    ctx.api.call(
        "PIF.reconfigure_ip",
        vec![
            s(&pif),
            s(mode),
            s(&any_case("IP")),
            s(params.get("netmask").unwrap_or("")),
            s(params.get("gateway").unwrap_or("")),
            s(&any_case("DNS")),
        ],
    )?;
    Ok(())
}

fn pif_plug(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "PIF", "PIF.plug")
}

fn pif_unplug(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    ctx.on_uuid(params, "PIF", "PIF.unplug")
}

fn vlan_create(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let net = records::ref_by_uuid(&ctx.api, "network", params.req("network-uuid")?)?;
    let pif = records::ref_by_uuid(&ctx.api, "PIF", params.req("pif-uuid")?)?;
    let tag: i64 =
        params.req("vlan")?.parse().map_err(|_| internal("Failed to parse parameter 'vlan': expecting an integer"))?;
    let vlan = ctx.api.call_str("VLAN.create", vec![s(&pif), Json::from(tag), s(&net)])?;
    let untagged = ctx.api.call_str("VLAN.get_untagged_PIF", vec![s(&vlan)])?;
    ctx.print_uuid_of("PIF", &untagged)
}

fn vlan_destroy(ctx: &mut Ctx, params: &Params) -> Result<(), XeError> {
    let uuid = params.req("uuid")?;
    let first = records::ref_by_uuid(&ctx.api, "VLAN", uuid).and_then(|v| ctx.api.call("VLAN.destroy", vec![s(&v)]));
    match first {
        Ok(_) => Ok(()),
        Err(e @ XeError::Api { .. }) if matches!(&e, XeError::Api { code, .. } if code == "HANDLE_INVALID" || code == "HOST_OFFLINE") => {
            Err(e)
        }
        Err(e) => match records::ref_by_uuid(&ctx.api, "PIF", uuid) {
            Ok(pif) => ctx.api.call("PIF.destroy", vec![s(&pif)]).map(|_| ()),
            Err(_) => Err(e),
        },
    }
}
