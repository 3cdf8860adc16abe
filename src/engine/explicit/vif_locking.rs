//! A VIF's locking mode and allowed addresses (xapi `xapi_vif.ml`): the mode is set as given;
//! each allowed address must be an address of its family (`INVALID_IP_ADDRESS_SPECIFIED
//! ["ipv4_allowed"]` or `["ipv6_allowed"]`), and a set is kept without duplicates.

use super::super::tx::Tx;
use super::vm::get;
use super::Call;
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::schema::FieldKey;
use crate::value::Value;

type Reply = Result<Value, ApiError>;

fn existing(tx: &Tx, vif: &str) -> Result<(), ApiError> {
    if tx.state.exists(class::VIF.get().id, vif) {
        Ok(())
    } else {
        Err(ApiError::handle_invalid("VIF", vif))
    }
}

/// `VIF.set_locking_mode(self, value)`.
pub fn set_locking_mode(tx: &mut Tx, call: &Call) -> Reply {
    let vif = call.str(0);
    existing(tx, vif)?;
    tx.put(f::vif::LOCKING_MODE, vif, call.args.get(1).cloned().unwrap_or(Value::Enum("network_default".into())));
    Ok(Value::String(String::new()))
}

/// Which list a message edits, and whether its addresses are IPv6.
fn list_of(message: &str) -> (FieldKey, bool) {
    if message.contains("ipv6") {
        (f::vif::IPV6_ALLOWED, true)
    } else {
        (f::vif::IPV4_ALLOWED, false)
    }
}

fn assert_address(address: &str, v6: bool) -> Result<(), ApiError> {
    let valid = if v6 {
        address.parse::<core::net::Ipv6Addr>().is_ok()
    } else {
        address.parse::<core::net::Ipv4Addr>().is_ok()
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::InvalidIpAddressSpecified, [if v6 { "ipv6_allowed" } else { "ipv4_allowed" }]))
    }
}

/// `VIF.set_ipv4_allowed`, `add_ipv4_allowed`, `remove_ipv4_allowed` and their IPv6 twins.
pub fn allowed(tx: &mut Tx, call: &Call) -> Reply {
    let vif = call.str(0);
    existing(tx, vif)?;
    let (key, v6) = list_of(&call.msg.name);
    let mut list: Vec<String> =
        get(&tx.state, key, vif).as_set().unwrap_or(&[]).iter().filter_map(|a| a.as_str().map(String::from)).collect();
    let value = call.args.get(1).cloned().unwrap_or(Value::Null);
    if call.msg.name.starts_with("set_") {
        let given: Vec<String> =
            value.as_set().unwrap_or(&[]).iter().filter_map(|a| a.as_str().map(String::from)).collect();
        for a in &given {
            assert_address(a, v6)?;
        }
        list.clear();
        for a in given {
            if !list.contains(&a) {
                list.push(a);
            }
        }
    } else if call.msg.name.starts_with("add_") {
        let a = value.as_str().unwrap_or("").to_string();
        assert_address(&a, v6)?;
        if !list.contains(&a) {
            list.push(a);
        }
    } else {
        list.retain(|a| Some(a.as_str()) != value.as_str());
    }
    tx.put(key, vif, Value::Set(list.into_iter().map(Value::String).collect()));
    Ok(Value::String(String::new()))
}
