//! Local users: argon2id password hashing, the superuser, and the session keys. The roles are
//! the datamodel's (`schema::roles`), re-exported here.
//!
//! Verification is CPU-heavy (tens of ms), so callers run it on a blocking thread. Passwords are
//! never stored or logged in clear: only PHC strings reach the log.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

pub use crate::schema::roles::{is_role, roles_at_least, ROLES};

/// The built-in superuser.
pub const ROOT: &str = "root";

/// Hashes a password as an argon2id PHC string with a random salt.
pub fn hash_password(password: &str) -> String {
    Argon2::default().hash_password(password.as_bytes()).expect("argon2 hashing succeeds").to_string()
}

/// Checks a password against a PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// The key a session is stored, logged and found under: a one-way digest of the ref its client
/// holds, shaped like a ref. The ref itself is a bearer credential and is returned only to the
/// caller of the login; whoever reads the log, a checkpoint or a record sees the key, which does
/// not authenticate (the server digests whatever ref it is shown).
pub fn session_key(presented: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("xenledger 2026-12 session ref");
    hasher.update(presented.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    let mut key = String::with_capacity(46);
    key.push_str("OpaqueRef:");
    crate::value::push_uuid(&mut key, &b);
    key
}

/// A random password for a first start without `XENLEDGER_ROOT_PASSWORD`.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    crate::entropy::fill(&mut bytes);
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let phc = hash_password("s3cret");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("s3cret", "not a phc string"));
    }

    #[test]
    fn session_keys_are_ref_shaped_digests() {
        let presented = "OpaqueRef:43d43f8f-75ca-4af4-b3c5-8a7e93a64618";
        let key = session_key(presented);
        assert!(key.starts_with("OpaqueRef:") && key.len() == presented.len());
        assert_ne!(key, presented);
        assert_eq!(key, session_key(presented));
        assert_ne!(session_key(&key), key, "a key shown as a ref digests to another key");
        // Keys are stored in the log: the digest of a ref never changes.
        assert_eq!(key, "OpaqueRef:c2627c98-fa40-d363-9ef4-697d137245da");
    }
}
