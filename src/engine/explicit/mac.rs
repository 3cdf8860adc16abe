//! A VIF's generated MAC address (docs/xenapi-semantics.md §h.2; xapi `xapi_vif_helpers.ml`
//! `gen_mac`, `record_util.ml` `mac_from_int_array`): the VM's `mac_seed` hashed with MD5
//! `2 × device + 1` times, four bytes of that and two of its own MD5, locally administered and
//! unicast. MD5 is xapi's choice here (OCaml's `Digest`), kept for identical addresses; it
//! protects nothing.

use super::super::state::State;
use super::vm::get;
use crate::schema::generated::field as f;

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

/// MD5 (RFC 1321).
fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
        20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6,
        10, 15, 21,
    ];
    let k: Vec<u32> = (0..64).map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32).collect();
    let mut message = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) = (0x6745_2301u32, 0xefcd_ab89u32, 0x98ba_dcfeu32, 0x1032_5476u32);
    for block in message.chunks(64) {
        let m: Vec<u32> = block.chunks(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, word) in [a0, b0, c0, d0].iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn md5_matches_rfc_1321s_test_suite() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        let long = b"12345678901234567890123456789012345678901234567890123456789012345678901234567890";
        assert_eq!(hex(&md5(long)), "57edf4a22be3c955ac49da2e2107b67a");
    }

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
