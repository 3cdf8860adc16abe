//! A VIF's generated MAC address (docs/xenapi-semantics.md §h.2; xapi `xapi_vif_helpers.ml`
//! `gen_mac`, `record_util.ml` `mac_from_int_array`): the VM's `mac_seed` hashed with MD5
//! `2 × device + 1` times, four bytes of that and two of its own MD5, locally administered and
//! unicast. MD5 is xapi's choice here (OCaml's `Digest`), kept for identical addresses; it
//! protects nothing.

use super::super::state::State;
use super::vm::get;
use crate::schema::generated::field as f;
use crate::value::md5;

/// A VM's `other_config:mac_seed`, if it has one.
pub fn seed(state: &State, vm: &str) -> Option<String> {
    let other = get(state, f::vm::OTHER_CONFIG, vm);
    let found = other.as_map().unwrap_or(&[]).iter().find(|(k, _)| k.as_str() == Some("mac_seed")).cloned();
    found.and_then(|(_, v)| v.as_str().map(String::from))
}

/// The MAC xapi gives VIF `device` of a VM whose `other_config:mac_seed` is `seed`.
pub fn generated(device: u32, seed: &str) -> String {
    let mut h = md5(seed.as_bytes());
    for _ in 0..2 * device {
        h = md5(&h);
    }
    let second = md5(&h);
    let mut bytes = [h[0], h[1], h[2], h[3], second[1], second[2]];
    bytes[0] = (bytes[0] | 0x02) & !0x01;
    crate::value::format_mac(bytes)
}

/// 6 colon-separated pairs of hex digits, either case (xapi `Helpers.is_valid_MAC`).
pub fn is_valid(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_macs_are_local_unicast_and_differ_by_device() {
        let seed = "c6b62dc6-b4a8-0c3f-a9a1-b2dd0cbc3dc7";
        let (a, b) = (generated(0, seed), generated(1, seed));
        assert!(is_valid(&a) && is_valid(&b) && a != b);
        let first = u8::from_str_radix(&a[..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02, "locally administered, unicast: {a}");
        assert_eq!(generated(0, seed), a, "deterministic");
        assert!(!is_valid("00:11:22:33:44") && !is_valid("00:11:22:33:44:gg") && is_valid("AA:bb:cc:dd:ee:ff"));
    }
}
