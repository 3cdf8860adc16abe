//! Bonds (xapi `xapi_bond.ml`): `Bond.create` makes a master interface `bond<N>` on a network
//! from member interfaces, moving to it their IP configuration, the management role, the VLANs
//! they carry and the VIFs of their networks; `Bond.destroy` moves them back to the primary
//! slave. Modes and properties are checked as xapi's `map_check.ml` does.

use super::super::implicit::{create_internal, destroy};
use super::super::tx::Tx;
use super::pif::{assert_managed, bring_up, existing, is_set, refs, set_attached};
use super::vm::get;
use super::{args, Call};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::value::Value;

type Reply = Result<Value, ApiError>;

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The properties a mode takes, with their defaults (xapi `xapi_bond.ml`: lacp only).
fn checked_properties(mode: &str, given: &[(String, String)]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for (k, v) in given {
        let ok = mode == "lacp"
            && match k.as_str() {
                "hashing_algorithm" => matches!(v.as_str(), "src_mac" | "tcpudp_ports"),
                "lacp-time" => matches!(v.as_str(), "fast" | "slow"),
                "lacp-aggregation-key" => v.parse::<i64>().is_ok(),
                "lacp-fallback-ab" => matches!(v.as_str(), "true" | "false"),
                _ => false,
            };
        if !ok {
            return Err(ApiError::invalid_value("properties", &format!("{k} = {v}")));
        }
        out.push((k.clone(), v.clone()));
    }
    if mode == "lacp" {
        for (k, v) in [("hashing_algorithm", "tcpudp_ports"), ("lacp-time", "slow"), ("lacp-fallback-ab", "true")] {
            if !out.iter().any(|(key, _)| key == k) {
                out.push((k.into(), v.into()));
            }
        }
    }
    Ok(out)
}

fn string_pairs(v: &Value) -> Vec<(String, String)> {
    v.as_map()
        .unwrap_or(&[])
        .iter()
        .map(|(k, v)| (k.as_str().unwrap_or("").to_string(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

fn to_map(pairs: &[(String, String)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| (Value::String(k.clone()), Value::String(v.clone()))).collect())
}

fn has_ip(tx: &Tx, pif: &str) -> bool {
    get(&tx.state, f::pif::IP_CONFIGURATION_MODE, pif).as_str().is_some_and(|m| m != "None")
}

/// Moves the IPv4 configuration from one interface to another (xapi `move_configuration`).
fn move_configuration(tx: &mut Tx, from: &str, to: &str) {
    for key in [f::pif::IP_CONFIGURATION_MODE, f::pif::IP, f::pif::NETMASK, f::pif::GATEWAY, f::pif::DNS] {
        tx.put(key, to, get(&tx.state, key, from));
    }
    tx.put(f::pif::IP_CONFIGURATION_MODE, from, Value::Enum("None".into()));
    for key in [f::pif::IP, f::pif::NETMASK, f::pif::GATEWAY, f::pif::DNS] {
        tx.put(key, from, Value::str(""));
    }
}

/// The VLANs carried by `from` are carried by `to`; the VIFs on `from`'s network go to `to`'s.
fn move_traffic(tx: &mut Tx, from: &str, to: &str) {
    for vlan in refs(get(&tx.state, f::pif::VLAN_SLAVE_OF, from)) {
        tx.put(f::vlan::TAGGED_PIF, &vlan, Value::Ref(to.to_string()));
    }
    let (from_net, to_net) = (text(get(&tx.state, f::pif::NETWORK, from)), text(get(&tx.state, f::pif::NETWORK, to)));
    if from_net != to_net {
        for vif in refs(get(&tx.state, f::network::VIFS, &from_net)) {
            tx.put(f::vif::NETWORK, &vif, Value::Ref(to_net.clone()));
        }
    }
}

/// `Bond.create(network, members, MAC, mode, properties)`, xapi's checks in order.
pub fn create(tx: &mut Tx, call: &Call) -> Reply {
    let a = args::BondCreate::from(call);
    let mut members: Vec<String> = refs(a.members.clone());
    if members.is_empty() {
        return Err(ApiError::new(ErrorCode::PifBondNeedsMoreMembers, Vec::<String>::new()));
    }
    super::network::existing(&tx.state, &a.network)?;
    for m in &members {
        existing(&tx.state, m)?;
    }
    super::network::assert_managed(&tx.state, &a.network)?;
    let host = text(get(&tx.state, f::pif::HOST, &members[0]));
    super::vlan::assert_network_free_on(tx, &a.network, &host)?;
    if !a.MAC.is_empty() && !super::mac::is_valid(&a.MAC) {
        return Err(ApiError::new(ErrorCode::MacInvalid, [a.MAC.as_str()]));
    }
    let mode = if a.mode.is_empty() { "balance-slb".to_string() } else { a.mode.clone() };
    let properties = checked_properties(&mode, &string_pairs(&a.properties))?;
    members.sort();
    members.dedup();
    let primary = members
        .iter()
        .find(|m| get(&tx.state, f::pif::MANAGEMENT, m).as_bool() == Some(true))
        .or_else(|| members.iter().find(|m| has_ip(tx, m)))
        .unwrap_or(&members[0])
        .clone();
    let address_type = get(&tx.state, f::pif::PRIMARY_ADDRESS_TYPE, &primary);
    if let Some(m) = members.iter().find(|m| get(&tx.state, f::pif::PRIMARY_ADDRESS_TYPE, m) != address_type) {
        return Err(ApiError::new(ErrorCode::PifIncompatiblePrimaryAddressType, [m.as_str()]));
    }
    for m in &members {
        assert_managed(&tx.state, m)?;
        if is_set(get(&tx.state, f::pif::BOND_SLAVE_OF, m)) {
            return Err(ApiError::new(ErrorCode::PifAlreadyBonded, [m.as_str()]));
        }
        if get(&tx.state, f::pif::VLAN, m).as_int().unwrap_or(-1) != -1 {
            let device = text(get(&tx.state, f::pif::DEVICE, m));
            return Err(ApiError::new(ErrorCode::PifVlanExists, [device]));
        }
    }
    if members.iter().any(|m| text(get(&tx.state, f::pif::HOST, m)) != host) {
        return Err(ApiError::new(ErrorCode::PifCannotBondCrossHost, Vec::<String>::new()));
    }
    let pif_properties: Vec<Value> = members.iter().map(|m| get(&tx.state, f::pif::PROPERTIES, m)).collect();
    if pif_properties.windows(2).any(|w| w[0] != w[1]) {
        return Err(ApiError::new(ErrorCode::IncompatiblePifProperties, Vec::<String>::new()));
    }
    if members.iter().filter(|m| has_ip(tx, m)).count() > 1 {
        return Err(ApiError::new(ErrorCode::PifBondMoreThanOneIp, Vec::<String>::new()));
    }
    // The master: the first free bond<N> on the host.
    let devices: Vec<String> = tx
        .state
        .table(class::PIF.get().id)
        .objects
        .keys()
        .filter(|p| text(get(&tx.state, f::pif::HOST, p)) == host)
        .map(|p| text(get(&tx.state, f::pif::DEVICE, p)))
        .collect();
    let device = (0..).map(|n| format!("bond{n}")).find(|d| !devices.contains(d)).expect("a free bond name");
    let mac = if a.MAC.is_empty() { get(&tx.state, f::pif::MAC, &primary) } else { Value::String(a.MAC.clone()) };
    let metrics = create_internal(tx, "PIF_metrics", vec![("carrier", Value::Bool(true))]);
    let master = create_internal(
        tx,
        "PIF",
        vec![
            ("device", Value::String(device)),
            ("network", Value::Ref(a.network.clone())),
            ("host", Value::Ref(host)),
            ("MAC", mac),
            ("MTU", get(&tx.state, f::network::MTU, &a.network)),
            ("VLAN", Value::Int(-1)),
            ("metrics", Value::Ref(metrics)),
            ("physical", Value::Bool(false)),
            ("currently_attached", Value::Bool(false)),
            ("IPv6", Value::Set(vec![Value::str("")])),
            ("primary_address_type", address_type),
            ("properties", pif_properties[0].clone()),
        ],
    );
    let bond = create_internal(
        tx,
        "Bond",
        vec![
            ("master", Value::Ref(master.clone())),
            ("primary_slave", Value::Ref(primary.clone())),
            ("mode", Value::Enum(mode)),
            ("properties", to_map(&properties)),
            ("links_up", Value::Int(members.len() as i64)),
            ("auto_update_mac", Value::Bool(a.MAC.is_empty())),
        ],
    );
    for m in &members {
        tx.put(f::pif::BOND_SLAVE_OF, m, Value::Ref(bond.clone()));
    }
    move_configuration(tx, &primary, &master);
    if get(&tx.state, f::pif::MANAGEMENT, &primary).as_bool() == Some(true) {
        tx.put(f::pif::MANAGEMENT, &primary, Value::Bool(false));
        tx.put(f::pif::MANAGEMENT, &master, Value::Bool(true));
    }
    let disallow = members.iter().any(|m| get(&tx.state, f::pif::DISALLOW_UNPLUG, m).as_bool() == Some(true));
    for m in &members {
        move_traffic(tx, m, &master);
        tx.put(f::pif::DISALLOW_UNPLUG, m, Value::Bool(false));
    }
    tx.put(f::pif::DISALLOW_UNPLUG, &master, Value::Bool(disallow));
    bring_up(tx, &master);
    Ok(Value::Ref(bond))
}

/// `Bond.destroy(self)`: the configuration, management role, VLANs and VIFs go back to the
/// primary slave; the members come up again; the master and its metrics go.
pub fn destroy_bond(tx: &mut Tx, call: &Call) -> Reply {
    let bond = call.str(0);
    if !tx.state.exists(class::BOND.get().id, bond) {
        return Err(ApiError::handle_invalid("Bond", bond));
    }
    let master = text(get(&tx.state, f::bond::MASTER, bond));
    let slaves = refs(get(&tx.state, f::bond::SLAVES, bond));
    let primary = match text(get(&tx.state, f::bond::PRIMARY_SLAVE, bond)) {
        p if slaves.contains(&p) => p,
        _ => slaves.first().cloned().unwrap_or_default(),
    };
    let plugged = get(&tx.state, f::pif::CURRENTLY_ATTACHED, &master).as_bool() == Some(true);
    if !primary.is_empty() && tx.state.exists(class::PIF.get().id, &master) {
        move_configuration(tx, &master, &primary);
        if get(&tx.state, f::pif::MANAGEMENT, &master).as_bool() == Some(true) {
            tx.put(f::pif::MANAGEMENT, &master, Value::Bool(false));
            tx.put(f::pif::MANAGEMENT, &primary, Value::Bool(true));
        }
        move_traffic(tx, &master, &primary);
        let disallow = get(&tx.state, f::pif::DISALLOW_UNPLUG, &master);
        tx.put(f::pif::DISALLOW_UNPLUG, &primary, disallow);
    }
    let metrics = text(get(&tx.state, f::pif::METRICS, &master));
    destroy(tx, class::BOND.get(), bond);
    if tx.state.exists(class::PIF.get().id, &master) {
        destroy(tx, class::PIF.get(), &master);
    }
    if tx.state.exists(class::PIF_METRICS.get().id, &metrics) {
        destroy(tx, class::PIF_METRICS.get(), &metrics);
    }
    let management = slaves.iter().any(|s| get(&tx.state, f::pif::MANAGEMENT, s).as_bool() == Some(true));
    if plugged || management {
        for s in &slaves {
            set_attached(tx, s, true);
        }
    }
    Ok(Value::String(String::new()))
}

/// `Bond.set_mode(self, value)`: the properties the new mode does not take are dropped, its
/// defaults added.
pub fn set_mode(tx: &mut Tx, call: &Call) -> Reply {
    let (bond, mode) = (call.str(0).to_string(), call.str(1).to_string());
    if !tx.state.exists(class::BOND.get().id, &bond) {
        return Err(ApiError::handle_invalid("Bond", &bond));
    }
    let kept: Vec<(String, String)> = string_pairs(&get(&tx.state, f::bond::PROPERTIES, &bond))
        .into_iter()
        .filter(|p| checked_properties(&mode, std::slice::from_ref(p)).is_ok())
        .collect();
    let properties = checked_properties(&mode, &kept)?;
    tx.put(f::bond::MODE, &bond, Value::Enum(mode));
    tx.put(f::bond::PROPERTIES, &bond, to_map(&properties));
    void_up(tx, &bond)
}

/// `Bond.set_property(self, name, value)`: checked against the bond's mode.
pub fn set_property(tx: &mut Tx, call: &Call) -> Reply {
    let a = args::BondSetProperty::from(call);
    if !tx.state.exists(class::BOND.get().id, &a.this) {
        return Err(ApiError::handle_invalid("Bond", &a.this));
    }
    let mode = text(get(&tx.state, f::bond::MODE, &a.this));
    checked_properties(&mode, &[(a.name.clone(), a.value.clone())])?;
    let mut properties = string_pairs(&get(&tx.state, f::bond::PROPERTIES, &a.this));
    properties.retain(|(k, _)| *k != a.name);
    properties.push((a.name, a.value));
    tx.put(f::bond::PROPERTIES, &a.this, to_map(&properties));
    void_up(tx, &a.this)
}

fn void_up(tx: &mut Tx, bond: &str) -> Reply {
    let master = text(get(&tx.state, f::bond::MASTER, bond));
    if tx.state.exists(class::PIF.get().id, &master) {
        bring_up(tx, &master);
    }
    Ok(Value::String(String::new()))
}
