//! Physical interfaces (xapi `xapi_pif.ml`): IP configuration, plug and unplug, forget, and the
//! deprecated `PIF.destroy`/`PIF.create_VLAN`. The simulated host's NICs are up as soon as they
//! are plugged: a DHCP interface keeps the address it is given, or none.

use super::super::implicit::destroy;
use super::super::state::State;
use super::super::tx::Tx;
use super::vm::get;
use super::{args, Call};
use crate::error::{ApiError, ErrorCode};
use crate::schema::generated::{class, field as f};
use crate::value::{Value, NULL_REF};

type Reply = Result<Value, ApiError>;

fn text(v: Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn void() -> Reply {
    Ok(Value::String(String::new()))
}

pub(super) fn existing(state: &State, pif: &str) -> Result<(), ApiError> {
    if state.exists(class::PIF.get().id, pif) {
        Ok(())
    } else {
        Err(ApiError::handle_invalid("PIF", pif))
    }
}

/// `PIF_UNMANAGED [pif]` for an interface xapi does not manage.
pub(super) fn assert_managed(state: &State, pif: &str) -> Result<(), ApiError> {
    if get(state, f::pif::MANAGED, pif).as_bool() == Some(false) {
        return Err(ApiError::new(ErrorCode::PifUnmanaged, [pif]));
    }
    Ok(())
}

pub(super) fn is_set(v: Value) -> bool {
    v.as_str().is_some_and(|r| r != NULL_REF && !r.is_empty())
}

fn flag(state: &State, key: crate::schema::FieldKey, pif: &str) -> bool {
    get(state, key, pif).as_bool() == Some(true)
}

/// `INVALID_IP_ADDRESS_SPECIFIED [field]` unless `value` is an IPv4 address.
fn assert_ipv4(field: &str, value: &str) -> Result<(), ApiError> {
    value
        .parse::<core::net::Ipv4Addr>()
        .map(|_| ())
        .map_err(|_| ApiError::new(ErrorCode::InvalidIpAddressSpecified, [field]))
}

/// The DNS list after a reconfiguration: the valid addresses of the family given (IPv6 with
/// `v6`), then those of the other family already configured.
fn merge_dns(given: &str, old: &str, v6: bool) -> String {
    let is_v6 = |d: &&str| d.parse::<core::net::Ipv6Addr>().is_ok();
    let is_v4 = |d: &&str| d.parse::<core::net::Ipv4Addr>().is_ok();
    let (new, kept): (Vec<&str>, Vec<&str>) = if v6 {
        (given.split(',').map(str::trim).filter(is_v6).collect(), old.split(',').map(str::trim).filter(is_v4).collect())
    } else {
        (given.split(',').map(str::trim).filter(is_v4).collect(), old.split(',').map(str::trim).filter(is_v6).collect())
    };
    new.into_iter().chain(kept).collect::<Vec<_>>().join(",")
}

/// `PIF.reconfigure_ip(self, mode, IP, netmask, gateway, DNS)`, with xapi's checks in order;
/// the DNS list keeps its IPv6 entries and takes the valid IPv4 ones given.
pub fn reconfigure_ip(tx: &mut Tx, call: &Call) -> Reply {
    let a = args::PifReconfigureIp::from(call);
    existing(&tx.state, &a.this)?;
    assert_managed(&tx.state, &a.this)?;
    if a.mode == "Static" {
        assert_ipv4("IP", &a.IP)?;
        assert_ipv4("netmask", &a.netmask)?;
    }
    for (field, value) in [("IP", &a.IP), ("netmask", &a.netmask), ("gateway", &a.gateway)] {
        if !value.is_empty() {
            assert_ipv4(field, value)?;
        }
    }
    let primary_v4 = get(&tx.state, f::pif::PRIMARY_ADDRESS_TYPE, &a.this).as_str() == Some("IPv4");
    if flag(&tx.state, f::pif::MANAGEMENT, &a.this) && a.mode == "None" && primary_v4 {
        return Err(ApiError::new(ErrorCode::PifIsManagementInterface, [a.this.as_str()]));
    }
    let dns = merge_dns(&a.DNS, &text(get(&tx.state, f::pif::DNS, &a.this)), false);
    tx.put(f::pif::IP_CONFIGURATION_MODE, &a.this, Value::Enum(a.mode.clone()));
    tx.put(f::pif::IP, &a.this, Value::String(a.IP));
    tx.put(f::pif::NETMASK, &a.this, Value::String(a.netmask));
    tx.put(f::pif::GATEWAY, &a.this, Value::String(a.gateway));
    tx.put(f::pif::DNS, &a.this, Value::String(dns));
    void()
}

/// `PIF.reconfigure_ipv6(self, mode, IPv6, gateway, DNS)`.
pub fn reconfigure_ipv6(tx: &mut Tx, call: &Call) -> Reply {
    let a = args::PifReconfigureIpv6::from(call);
    existing(&tx.state, &a.this)?;
    assert_managed(&tx.state, &a.this)?;
    if !a.gateway.is_empty() && a.gateway.parse::<core::net::Ipv6Addr>().is_err() {
        return Err(ApiError::new(ErrorCode::InvalidIpAddressSpecified, ["gateway"]));
    }
    let cidr_ok = |c: &str| {
        c.split_once('/').is_some_and(|(ip, len)| {
            ip.parse::<core::net::Ipv6Addr>().is_ok() && len.parse::<u8>().is_ok_and(|n| n <= 128)
        })
    };
    if !a.IPv6.is_empty() && !cidr_ok(&a.IPv6) {
        return Err(ApiError::new(ErrorCode::InvalidCidrAddressSpecified, ["IPv6"]));
    }
    let primary_v6 = get(&tx.state, f::pif::PRIMARY_ADDRESS_TYPE, &a.this).as_str() == Some("IPv6");
    if flag(&tx.state, f::pif::MANAGEMENT, &a.this) && a.mode == "None" && primary_v6 {
        return Err(ApiError::new(ErrorCode::PifIsManagementInterface, [a.this.as_str()]));
    }
    let dns = merge_dns(&a.DNS, &text(get(&tx.state, f::pif::DNS, &a.this)), true);
    tx.put(f::pif::DNS, &a.this, Value::String(dns));
    void()
}

/// `PIF.set_primary_address_type(self, primary_address_type)`: not on the management interface.
pub fn set_primary_address_type(tx: &mut Tx, call: &Call) -> Reply {
    let pif = call.str(0);
    existing(&tx.state, pif)?;
    if flag(&tx.state, f::pif::MANAGEMENT, pif) {
        return Err(ApiError::new(ErrorCode::PifIsManagementInterface, [pif]));
    }
    tx.put(f::pif::PRIMARY_ADDRESS_TYPE, pif, call.args.get(1).cloned().unwrap_or(Value::Enum("IPv4".into())));
    void()
}

/// Brings an interface up: a bond master takes its slaves down, a bond slave takes its master
/// down (xapi `nm.ml` `bring_pif_up`).
pub(super) fn bring_up(tx: &mut Tx, pif: &str) {
    for bond in refs(get(&tx.state, f::pif::BOND_MASTER_OF, pif)) {
        for slave in refs(get(&tx.state, f::bond::SLAVES, &bond)) {
            set_attached(tx, &slave, false);
        }
    }
    let slave_of = text(get(&tx.state, f::pif::BOND_SLAVE_OF, pif));
    if is_set(Value::String(slave_of.clone())) && tx.state.exists(class::BOND.get().id, &slave_of) {
        let master = text(get(&tx.state, f::bond::MASTER, &slave_of));
        set_attached(tx, &master, false);
    }
    set_attached(tx, pif, true);
}

pub(super) fn set_attached(tx: &mut Tx, pif: &str, attached: bool) {
    if tx.state.exists(class::PIF.get().id, pif) && flag(&tx.state, f::pif::CURRENTLY_ATTACHED, pif) != attached {
        tx.put(f::pif::CURRENTLY_ATTACHED, pif, Value::Bool(attached));
    }
}

pub(super) fn refs(v: Value) -> Vec<String> {
    v.as_set().unwrap_or(&[]).iter().filter_map(|r| r.as_str().map(String::from)).collect()
}

/// `PIF.plug(self)`: a bond slave is plugged through its bond (`CANNOT_PLUG_BOND_SLAVE`).
pub fn plug(tx: &mut Tx, call: &Call) -> Reply {
    let pif = call.str(0);
    existing(&tx.state, pif)?;
    assert_managed(&tx.state, pif)?;
    if flag(&tx.state, f::pif::PHYSICAL, pif) && is_set(get(&tx.state, f::pif::BOND_SLAVE_OF, pif)) {
        return Err(ApiError::new(ErrorCode::CannotPlugBondSlave, [pif]));
    }
    bring_up(tx, pif);
    void()
}

/// A VIF of a running VM on this PIF's host plugged into its network (`VIF_IN_USE [network, vif]`).
pub(super) fn assert_no_vif_in_use(state: &State, pif: &str) -> Result<(), ApiError> {
    let (network, host) = (text(get(state, f::pif::NETWORK, pif)), text(get(state, f::pif::HOST, pif)));
    for vif in refs(get(state, f::network::VIFS, &network)) {
        let vm = text(get(state, f::vif::VM, &vif));
        let live = matches!(get(state, f::vm::POWER_STATE, &vm).as_str(), Some("Running" | "Paused"));
        if get(state, f::vif::CURRENTLY_ATTACHED, &vif).as_bool() == Some(true)
            && live
            && text(get(state, f::vm::RESIDENT_ON, &vm)) == host
        {
            return Err(ApiError::new(ErrorCode::VifInUse, [network, vif]));
        }
    }
    Ok(())
}

/// `PIF.unplug(self)`: not the management interface, not while a running VM's VIF uses its
/// network, not when `disallow_unplug`; a bond slave stays as it is.
pub fn unplug(tx: &mut Tx, call: &Call) -> Reply {
    let pif = call.str(0);
    existing(&tx.state, pif)?;
    assert_unpluggable(&tx.state, pif)?;
    if !is_set(get(&tx.state, f::pif::BOND_SLAVE_OF, pif)) {
        set_attached(tx, pif, false);
    }
    void()
}

pub(super) fn assert_unpluggable(state: &State, pif: &str) -> Result<(), ApiError> {
    assert_managed(state, pif)?;
    if flag(state, f::pif::MANAGEMENT, pif) {
        return Err(ApiError::new(ErrorCode::PifIsManagementInterface, [pif]));
    }
    assert_no_vif_in_use(state, pif)?;
    if flag(state, f::pif::DISALLOW_UNPLUG, pif) {
        return Err(ApiError::new(ErrorCode::PifDoesNotAllowUnplug, [pif]));
    }
    Ok(())
}

/// `PIF.forget(self)`: not the management interface, a bonded one or one with VLANs; its
/// metrics go with it, its network stays.
pub fn forget(tx: &mut Tx, call: &Call) -> Reply {
    let pif = call.str(0);
    existing(&tx.state, pif)?;
    if flag(&tx.state, f::pif::MANAGEMENT, pif) {
        return Err(ApiError::new(ErrorCode::PifIsManagementInterface, [pif]));
    }
    let bonded = is_set(get(&tx.state, f::pif::BOND_SLAVE_OF, pif))
        || !refs(get(&tx.state, f::pif::BOND_MASTER_OF, pif)).is_empty();
    if bonded {
        return Err(ApiError::new(ErrorCode::PifAlreadyBonded, [pif]));
    }
    let vlan = get(&tx.state, f::pif::VLAN, pif).as_int().unwrap_or(-1);
    if !refs(get(&tx.state, f::pif::VLAN_SLAVE_OF, pif)).is_empty() || vlan != -1 {
        return Err(ApiError::new(ErrorCode::PifVlanStillExists, [pif]));
    }
    let metrics = text(get(&tx.state, f::pif::METRICS, pif));
    destroy(tx, class::PIF.get(), pif);
    if tx.state.exists(class::PIF_METRICS.get().id, &metrics) {
        destroy(tx, class::PIF_METRICS.get(), &metrics);
    }
    void()
}

/// `PIF.destroy(self)` (deprecated): a VLAN's interface only; it destroys the VLAN
/// (`PIF_IS_PHYSICAL`, with no parameters as xapi sends it, for any other).
pub fn destroy_pif(tx: &mut Tx, call: &Call) -> Reply {
    let pif = call.str(0);
    existing(&tx.state, pif)?;
    if get(&tx.state, f::pif::VLAN, pif).as_int().unwrap_or(-1) < 0 {
        return Err(ApiError::new(ErrorCode::PifIsPhysical, Vec::<String>::new()));
    }
    let vlan = text(get(&tx.state, f::pif::VLAN_MASTER_OF, pif));
    super::vlan::destroy_vlan_of(tx, &vlan, pif)
}

/// `PIF.create_VLAN(device, network, host, VLAN)` (deprecated): `VLAN.create` on the host's
/// physical interface called `device`; answers the new interface.
pub fn create_vlan(tx: &mut Tx, call: &Call) -> Reply {
    let a = args::PifCreateVlan::from(call);
    let base = tx.state.table(class::PIF.get().id).objects.keys().find(|p| {
        text(get(&tx.state, f::pif::DEVICE, p)) == a.device
            && text(get(&tx.state, f::pif::HOST, p)) == a.host
            && get(&tx.state, f::pif::VLAN, p).as_int() == Some(-1)
    });
    let Some(base) = base.cloned() else { return Err(ApiError::invalid_value("device", &a.device)) };
    let vlan = super::vlan::create_on(tx, &base, a.VLAN, &a.network)?;
    Ok(get(&tx.state, f::vlan::UNTAGGED_PIF, &vlan))
}
