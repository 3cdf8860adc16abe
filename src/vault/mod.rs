//! The secret key of a data dir, and secret values sealed under it.
//!
//! The value of a `secret` object never reaches the log or a checkpoint in the clear: the node
//! seals it (AES-256-GCM, a random 96-bit nonce) before the write becomes a job, the engine stores
//! the sealed text like any string, and the node opens it again on the way out to a caller allowed
//! to read it. The fold never needs the key, so replay and `verify` work without it, and a copy of
//! the log without the key file holds no secret.
//!
//! The key file `DIR/secret.key` (mode 0600) holds one key per line, `<id> <64 hex digits>`; the
//! last line is the key new values are sealed with. A sealed value reads
//! `xenledger-sealed:1:<key id>:<hex of nonce ‖ ciphertext ‖ tag>`, the key id bound in as
//! associated data. [`rekey_file`] adds a new key, and once every live value is sealed under it,
//! [`Vault::retire_old_keys`] drops the others: values only the log still holds (destroyed
//! secrets, older versions) can then no longer be opened by anyone.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

mod values;

pub use values::{reveal, reveal_snapshot, seal_args};

/// The key file's name inside the data dir.
pub const KEY_FILE_NAME: &str = "secret.key";
/// A key file written but not yet in force: the first start after an upgrade writes it, logs the
/// upgrade, then renames it to [`KEY_FILE_NAME`] (see `ledger::keys`).
pub const STAGED_KEY_FILE_NAME: &str = "secret.key.new";

const SEALED_PREFIX: &str = "xenledger-sealed:1:";
const KEY_SIZE_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("key file {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {}: line {line} is not `<id> <64 hex digits>`", path.display())]
    Malformed { path: PathBuf, line: usize },
    #[error("key file {} holds no key", path.display())]
    Empty { path: PathBuf },
    /// A sealed value names a key this vault does not hold (retired, or the file was replaced).
    #[error("the value was sealed under key {id}, which the key file no longer holds")]
    UnknownKey { id: u32 },
    /// A sealed value that does not open: damaged, or not sealed by this data dir.
    #[error("the sealed value does not open under key {id}")]
    Damaged { id: u32 },
}

/// The keys of one data dir.
#[derive(Clone)]
pub struct Vault {
    /// `(id, key bytes)`, the sealing key last.
    keys: Vec<(u32, [u8; KEY_SIZE_BYTES])>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key bytes.
        let ids: Vec<u32> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("Vault").field("key_ids", &ids).finish()
    }
}

impl Vault {
    /// A vault with one fresh random key (id 1), not yet written anywhere.
    pub fn generate() -> Vault {
        Vault { keys: vec![(1, random_key())] }
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Vault, VaultError> {
        let text = std::fs::read_to_string(path).map_err(|source| VaultError::Io { path: path.to_owned(), source })?;
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let malformed = || VaultError::Malformed { path: path.to_owned(), line: i + 1 };
            let (id, hex) = line.trim().split_once(' ').ok_or_else(malformed)?;
            let id: u32 = id.parse().map_err(|_| malformed())?;
            let bytes = decode_hex(hex.trim()).ok_or_else(malformed)?;
            let key: [u8; KEY_SIZE_BYTES] = bytes.try_into().map_err(|_| malformed())?;
            keys.push((id, key));
        }
        if keys.is_empty() {
            return Err(VaultError::Empty { path: path.to_owned() });
        }
        Ok(Vault { keys })
    }

    /// Writes the key file atomically (a temporary file, fsync, rename, fsync of the dir), mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), VaultError> {
        let io = |source| VaultError::Io { path: path.to_owned(), source };
        let mut text = String::new();
        for (id, key) in &self.keys {
            let _ = writeln!(text, "{id} {}", encode_hex(key));
        }
        let temporary = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io)?;
        // The mode above is filtered by the umask; this is not.
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }

    /// The id of the key new values are sealed with.
    pub fn sealing_key_id(&self) -> u32 {
        self.keys.last().expect("a vault holds a key").0
    }

    /// Adds a fresh key and makes it the sealing key; the old ones still open what they sealed.
    pub fn add_key(&mut self) -> u32 {
        let id = self.keys.iter().map(|(id, _)| *id).max().unwrap_or(0) + 1;
        self.keys.push((id, random_key()));
        id
    }

    /// Forgets every key but the sealing key.
    pub fn retire_old_keys(&mut self) {
        let last = *self.keys.last().expect("a vault holds a key");
        self.keys = vec![last];
    }

    /// Seals `plain` under the sealing key with a fresh random nonce.
    pub fn seal(&self, plain: &str) -> String {
        let (id, key) = self.keys.last().expect("a vault holds a key");
        let mut nonce = [0u8; NONCE_LEN];
        crate::entropy::fill(&mut nonce);
        let mut in_out = plain.as_bytes().to_vec();
        aead_key(key)
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad(*id)), &mut in_out)
            .expect("AES-256-GCM seals any input that fits in memory");
        let mut out = format!("{SEALED_PREFIX}{id}:");
        out.push_str(&encode_hex(&nonce));
        out.push_str(&encode_hex(&in_out));
        out
    }

    /// Opens a value [`seal`](Vault::seal)ed by this data dir. A value that is not sealed text
    /// (written before values were sealed) is returned as it is.
    pub fn open(&self, value: &str) -> Result<String, VaultError> {
        let Some((id, bytes)) = parse_sealed(value) else { return Ok(value.to_string()) };
        let key = self.keys.iter().find(|(k, _)| *k == id).map(|(_, key)| key).ok_or(VaultError::UnknownKey { id })?;
        if bytes.len() < NONCE_LEN {
            return Err(VaultError::Damaged { id });
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        let mut in_out = sealed.to_vec();
        let plain = aead_key(key)
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad(id)), &mut in_out)
            .map_err(|_| VaultError::Damaged { id })?;
        String::from_utf8(plain.to_vec()).map_err(|_| VaultError::Damaged { id })
    }
}

/// Whether a stored value is sealed text (as opposed to a value written before sealing).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// The key file of a data dir.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE_NAME)
}

/// The staged key file of a data dir (see [`STAGED_KEY_FILE_NAME`]).
pub fn staged_key_path(dir: &Path) -> PathBuf {
    dir.join(STAGED_KEY_FILE_NAME)
}

fn parse_sealed(value: &str) -> Option<(u32, Vec<u8>)> {
    let rest = value.strip_prefix(SEALED_PREFIX)?;
    let (id, hex) = rest.split_once(':')?;
    Some((id.parse().ok()?, decode_hex(hex)?))
}

fn aad(id: u32) -> [u8; 24] {
    let mut out = *b"xenledger secret key \0\0\0";
    out[21..24].copy_from_slice(&id.to_le_bytes()[..3]);
    out
}

fn aead_key(key: &[u8; KEY_SIZE_BYTES]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key suits AES-256-GCM"))
}

fn random_key() -> [u8; KEY_SIZE_BYTES] {
    let mut key = [0u8; KEY_SIZE_BYTES];
    crate::entropy::fill(&mut key);
    key
}

fn encode_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_and_hide_the_plain_text() {
        let vault = Vault::generate();
        let sealed = vault.seal("hunter2");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, vault.seal("hunter2"), "each sealing draws a new nonce");
        assert_eq!(vault.open(&sealed).unwrap(), "hunter2");
        assert_eq!(vault.open("plain").unwrap(), "plain");
    }

    #[test]
    fn a_flipped_byte_or_another_key_does_not_open() {
        let vault = Vault::generate();
        let sealed = vault.seal("hunter2");
        let last = sealed.len() - 1;
        let flipped = format!("{}{}", &sealed[..last], if sealed.ends_with('0') { '1' } else { '0' });
        assert!(matches!(vault.open(&flipped), Err(VaultError::Damaged { id: 1 })));
        assert!(matches!(Vault::generate().open(&sealed), Err(VaultError::Damaged { id: 1 })));
    }

    #[test]
    fn retired_keys_no_longer_open_what_they_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(dir.path());
        let mut vault = Vault::generate();
        let old = vault.seal("old value");
        vault.add_key();
        vault.save(&path).unwrap();
        let reloaded = Vault::load(&path).unwrap();
        assert_eq!(reloaded.open(&old).unwrap(), "old value");
        assert_eq!(reloaded.sealing_key_id(), 2);
        let mut retired = reloaded;
        retired.retire_old_keys();
        retired.save(&path).unwrap();
        assert!(matches!(Vault::load(&path).unwrap().open(&old), Err(VaultError::UnknownKey { id: 1 })));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
