//! VLANs (xapi `xapi_vlan.ml`): `VLAN.create` puts a new, plugged interface carrying the tag on
//! a network, on top of a physical interface or a bond; `VLAN.destroy` unplugs and removes it.

use super::super::implicit::{create_internal, destroy};
use super::super::tx::Tx;
use super::pif::{assert_managed, assert_unpluggable, bring_up, existing, is_set, refs};
use super::vm::get;
use super::{args, Call};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::value::{Value, NULL_REF};

type Reply = Result<Value, ApiError>;

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The dummy MAC of a VLAN's interface (xapi `xapi_vlan.ml`).
const VLAN_MAC: &str = "fe:ff:ff:ff:ff:ff";

/// `NETWORK_ALREADY_CONNECTED [host, pif]` when the network has an interface on the host
/// already (xapi sends the host first, whatever the datamodel's names say).
pub(super) fn assert_network_free_on(tx: &Tx, network: &str, host: &str) -> Result<(), ApiError> {
    let on_host = refs(get(&tx.state, f::network::PIFS, network))
        .into_iter()
        .find(|p| text(get(&tx.state, f::pif::HOST, p)) == host);
    match on_host {
        Some(pif) => Err(ApiError::new(ErrorCode::NetworkAlreadyConnected, [host.to_string(), pif])),
        None => Ok(()),
    }
}

/// `VLAN.create(tagged_PIF, tag, network)`.
pub fn create(tx: &mut Tx, call: &Call) -> Reply {
    let a = args::VlanCreate::from(call);
    existing(&tx.state, &a.tagged_PIF)?;
    create_on(tx, &a.tagged_PIF, a.tag, &a.network).map(Value::Ref)
}

/// The checks of xapi's `VLAN.create` in order, then the VLAN and its interface, plugged.
pub(super) fn create_on(tx: &mut Tx, tagged: &str, tag: i64, network: &str) -> Result<String, ApiError> {
    super::network::existing(&tx.state, network)?;
    super::network::assert_managed(&tx.state, network)?;
    let host = text(get(&tx.state, f::pif::HOST, tagged));
    assert_network_free_on(tx, network, &host)?;
    assert_managed(&tx.state, tagged)?;
    let physical = get(&tx.state, f::pif::PHYSICAL, tagged).as_bool() == Some(true);
    if physical && is_set(get(&tx.state, f::pif::BOND_SLAVE_OF, tagged)) {
        return Err(ApiError::new(ErrorCode::CannotAddVlanToBondSlave, [tagged]));
    }
    if get(&tx.state, f::pif::VLAN, tagged).as_int().unwrap_or(-1) != -1 {
        return Err(ApiError::new(ErrorCode::PifIsVlan, [tagged]));
    }
    if !(0..=4094).contains(&tag) {
        return Err(ApiError::new(ErrorCode::VlanTagInvalid, [tag.to_string()]));
    }
    let device = text(get(&tx.state, f::pif::DEVICE, tagged));
    let exists = refs(get(&tx.state, f::pif::VLAN_SLAVE_OF, tagged))
        .iter()
        .any(|v| get(&tx.state, f::vlan::TAG, v).as_int() == Some(tag));
    if exists {
        return Err(ApiError::new(ErrorCode::PifVlanExists, [device]));
    }
    let vlan =
        create_internal(tx, "VLAN", vec![("tagged_PIF", Value::Ref(tagged.to_string())), ("tag", Value::Int(tag))]);
    let untagged = create_internal(
        tx,
        "PIF",
        vec![
            ("device", Value::String(device)),
            ("network", Value::Ref(network.to_string())),
            ("host", Value::Ref(host)),
            ("MAC", Value::str(VLAN_MAC)),
            ("MTU", get(&tx.state, f::pif::MTU, tagged)),
            ("VLAN", Value::Int(tag)),
            ("metrics", get(&tx.state, f::pif::METRICS, tagged)),
            ("physical", Value::Bool(false)),
            ("currently_attached", Value::Bool(false)),
            ("VLAN_master_of", Value::Ref(vlan.clone())),
            ("IPv6", Value::Set(vec![Value::str("")])),
            ("primary_address_type", get(&tx.state, f::pif::PRIMARY_ADDRESS_TYPE, tagged)),
        ],
    );
    tx.put(f::vlan::UNTAGGED_PIF, &vlan, Value::Ref(untagged.clone()));
    bring_up(tx, &untagged);
    Ok(vlan)
}

/// `VLAN.destroy(self)`.
pub fn destroy_vlan(tx: &mut Tx, call: &Call) -> Reply {
    let vlan = call.str(0);
    if !tx.state.exists(class::VLAN.get().id, vlan) {
        return Err(ApiError::handle_invalid("VLAN", vlan));
    }
    let untagged = text(get(&tx.state, f::vlan::UNTAGGED_PIF, vlan));
    destroy_vlan_of(tx, vlan, &untagged)
}

/// Unplugs and removes a VLAN's interface, then the VLAN (its metrics, shared with the tagged
/// interface, and its network stay).
pub(super) fn destroy_vlan_of(tx: &mut Tx, vlan: &str, untagged: &str) -> Reply {
    if untagged.is_empty() || untagged == NULL_REF || !tx.state.exists(class::PIF.get().id, untagged) {
        if tx.state.exists(class::VLAN.get().id, vlan) {
            destroy(tx, class::VLAN.get(), vlan);
        }
        return Ok(Value::String(String::new()));
    }
    let bonded = is_set(get(&tx.state, f::pif::BOND_SLAVE_OF, untagged))
        || !refs(get(&tx.state, f::pif::BOND_MASTER_OF, untagged)).is_empty();
    if bonded {
        return Err(ApiError::new(ErrorCode::PifAlreadyBonded, [untagged]));
    }
    if get(&tx.state, f::pif::VLAN, untagged).as_int().unwrap_or(-1) < 0 {
        return Err(ApiError::new(ErrorCode::PifIsPhysical, Vec::<String>::new()));
    }
    assert_unpluggable(&tx.state, untagged)?;
    if tx.state.exists(class::VLAN.get().id, vlan) {
        destroy(tx, class::VLAN.get(), vlan);
    }
    destroy(tx, class::PIF.get(), untagged);
    Ok(Value::String(String::new()))
}
