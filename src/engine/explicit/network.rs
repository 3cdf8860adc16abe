//! Networks (xapi `xapi_network.ml`): `network.create` names a bridge when none is given
//! (`xapi<N>`) and refuses the host's own prefixes; `network.destroy` is refused while a VIF is
//! plugged or a PIF connects it, and for the host internal management network; locking mode and
//! purposes.

use super::super::implicit::destroy;
use super::super::state::State;
use super::super::tx::Tx;
use super::vm::get;
use super::{args, Call};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::value::Value;

type Reply = Result<Value, ApiError>;

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn refs(v: Value) -> Vec<String> {
    v.as_set().unwrap_or(&[]).iter().filter_map(|r| r.as_str().map(String::from)).collect()
}

pub(super) fn existing(state: &State, network: &str) -> Result<(), ApiError> {
    if state.exists(class::NETWORK.get().id, network) {
        Ok(())
    } else {
        Err(ApiError::handle_invalid("network", network))
    }
}

/// `NETWORK_UNMANAGED [network]` for a network xapi does not manage.
pub(super) fn assert_managed(state: &State, network: &str) -> Result<(), ApiError> {
    if get(state, f::network::MANAGED, network).as_bool() == Some(false) {
        return Err(ApiError::new(ErrorCode::NetworkUnmanaged, [network]));
    }
    Ok(())
}

fn bridges(state: &State) -> Vec<String> {
    state.table(class::NETWORK.get().id).objects.keys().map(|n| text(get(state, f::network::BRIDGE, n))).collect()
}

/// `network.create(record)`: an MTU of 0 or less is 1500; an empty bridge gets the first free
/// `xapi<N>`; a given one must not use the host's prefixes nor exceed 15 characters
/// (`INVALID_VALUE ["bridge", bridge]`) nor be taken (`BRIDGE_NAME_EXISTS`).
pub fn create(tx: &mut Tx, call: &Call) -> Reply {
    let taken = bridges(&tx.state);
    let bridge = match text(call.member("bridge")) {
        b if b.is_empty() => (0..).map(|n| format!("xapi{n}")).find(|b| !taken.contains(b)).expect("a free bridge"),
        b => {
            let reserved = ["xen", "xapi", "vif", "tap", "eth"].iter().any(|p| b.starts_with(p));
            if b.len() > 15 || reserved {
                return Err(ApiError::invalid_value("bridge", &b));
            }
            if taken.contains(&b) {
                return Err(ApiError::new(ErrorCode::BridgeNameExists, [b]));
            }
            b
        }
    };
    // An MTU of 0 or less is 1500; a mistyped one is the generic constructor's to refuse.
    let mtu_reset = matches!(call.member("MTU"), Value::Int(n) if n <= 0);
    // The generic constructor checks the members; it gets the bridge and MTU chosen here.
    let Some(Value::Record(mut members)) = call.args.first().map(Value::materialized) else {
        return Err(ApiError::field_type_error("args"));
    };
    members.retain(|(k, _)| k != "bridge" && !(mtu_reset && k == "MTU"));
    members.push(("bridge".into(), Value::String(bridge)));
    if mtu_reset {
        members.push(("MTU".into(), Value::Int(1500)));
    }
    super::super::implicit::create(tx, call.class, &Value::Record(members)).map(Value::Ref)
}

/// `network.destroy(self)`: `NETWORK_CONTAINS_VIF` naming the plugged VIFs, then
/// `NETWORK_CONTAINS_PIF` naming every PIF, then `CANNOT_DESTROY_SYSTEM_NETWORK`; the unplugged
/// VIFs go with it.
pub fn destroy_network(tx: &mut Tx, call: &Call) -> Reply {
    let network = call.str(0);
    existing(&tx.state, network)?;
    let vifs = refs(get(&tx.state, f::network::VIFS, network));
    let plugged: Vec<String> = vifs
        .iter()
        .filter(|v| get(&tx.state, f::vif::CURRENTLY_ATTACHED, v).as_bool() == Some(true))
        .cloned()
        .collect();
    if !plugged.is_empty() {
        return Err(ApiError::new(ErrorCode::NetworkContainsVif, plugged));
    }
    let pifs = refs(get(&tx.state, f::network::PIFS, network));
    if !pifs.is_empty() {
        return Err(ApiError::new(ErrorCode::NetworkContainsPif, pifs));
    }
    let system = get(&tx.state, f::network::OTHER_CONFIG, network)
        .as_map()
        .unwrap_or(&[])
        .iter()
        .any(|(k, v)| k.as_str() == Some("is_host_internal_management_network") && v.as_str() == Some("true"));
    if system {
        return Err(ApiError::new(ErrorCode::CannotDestroySystemNetwork, [network]));
    }
    for vif in vifs {
        destroy(tx, class::VIF.get(), &vif);
    }
    destroy(tx, class::NETWORK.get(), network);
    Ok(Value::String(String::new()))
}

/// `network.set_default_locking_mode(network, value)`: not while a VIF on it is plugged
/// (`VIF_IN_USE [network, vif]`).
pub fn set_default_locking_mode(tx: &mut Tx, call: &Call) -> Reply {
    let a = args::NetworkSetDefaultLockingMode::from(call);
    existing(&tx.state, &a.network)?;
    let plugged = refs(get(&tx.state, f::network::VIFS, &a.network))
        .into_iter()
        .find(|v| get(&tx.state, f::vif::CURRENTLY_ATTACHED, v).as_bool() == Some(true));
    if let Some(vif) = plugged {
        return Err(ApiError::new(ErrorCode::VifInUse, [a.network, vif]));
    }
    tx.put(f::network::DEFAULT_LOCKING_MODE, &a.network, Value::Enum(a.value));
    Ok(Value::String(String::new()))
}

/// `network.add_purpose(self, value)`: `nbd` and `insecure_nbd` exclude each other across the
/// pool (`NETWORK_INCOMPATIBLE_PURPOSES [new, conflicting]`).
pub fn add_purpose(tx: &mut Tx, call: &Call) -> Reply {
    let (network, value) = (call.str(0).to_string(), call.str(1).to_string());
    existing(&tx.state, &network)?;
    assert_managed(&tx.state, &network)?;
    let mut purposes = refs(get(&tx.state, f::network::PURPOSE, &network));
    if purposes.contains(&value) {
        return Ok(Value::String(String::new()));
    }
    let conflicting = match value.as_str() {
        "nbd" => Some("insecure_nbd"),
        "insecure_nbd" => Some("nbd"),
        _ => None,
    };
    if let Some(other) = conflicting {
        let used = tx
            .state
            .table(class::NETWORK.get().id)
            .objects
            .keys()
            .any(|n| refs(get(&tx.state, f::network::PURPOSE, n)).iter().any(|p| p == other));
        if used {
            return Err(ApiError::new(ErrorCode::NetworkIncompatiblePurposes, [value.as_str(), other]));
        }
    }
    purposes.insert(0, value);
    tx.put(f::network::PURPOSE, &network, Value::Set(purposes.into_iter().map(Value::Enum).collect()));
    Ok(Value::String(String::new()))
}

/// `network.remove_purpose(self, value)`.
pub fn remove_purpose(tx: &mut Tx, call: &Call) -> Reply {
    let (network, value) = (call.str(0).to_string(), call.str(1).to_string());
    existing(&tx.state, &network)?;
    let purposes: Vec<Value> = refs(get(&tx.state, f::network::PURPOSE, &network))
        .into_iter()
        .filter(|p| *p != value)
        .map(Value::Enum)
        .collect();
    tx.put(f::network::PURPOSE, &network, Value::Set(purposes));
    Ok(Value::String(String::new()))
}
