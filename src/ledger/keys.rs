//! The data dir's secret key at start-up: created on a first start, checked on every start, and
//! the upgrade of a data dir written before sessions were keyed by digest and secret values sealed.
//! Also the key rotation behind `xenledger secret rekey`.
//!
//! Upgrade: a data dir with a log but no key file was written before this scheme. Its log holds
//! session refs (live credentials, since sessions survive restarts) and secret values in the
//! clear. The first start stages a new key (`secret.key.new`), logs one entry that ends every
//! session and seals every live secret value under the staged key, then puts the key in force by
//! renaming it. A crash in between leaves the staged key, which the next start reuses and finishes
//! with; the entry is idempotent. The old entries themselves are history and stay as they are
//! (the README says what an operator should do about the values they hold).

use std::path::Path;

use super::{Job, Ledger, LedgerError};
use crate::engine::internal::InternalOp;
use crate::engine::State;
use crate::entry::Actor;
use crate::schema::schema;
use crate::vault::{self, Vault, VaultError};

/// Opens the data dir's vault, creating the key on a first start and upgrading an older data dir.
///
/// # Errors
///
/// The key file cannot be read or written, the log holds sealed values but the key file is
/// missing, or a live secret does not open under the key file's keys (the wrong file).
pub(super) fn open_vault(ledger: &Ledger) -> Result<Vault, LedgerError> {
    let dir = ledger.dir().expect("a ledger on disk");
    let (key_path, staged_path) = (vault::key_path(dir), vault::staged_key_path(dir));
    if key_path.exists() {
        let vault = Vault::load(&key_path)?;
        check_secrets_open(&ledger.snapshot(), &vault)?;
        return Ok(vault);
    }
    let state = ledger.snapshot();
    let vault = if staged_path.exists() {
        Vault::load(&staged_path)?
    } else {
        if live_secret_values(&state).any(|(_, v)| vault::is_sealed(&v)) {
            return Err(VaultError::Io {
                path: key_path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the log holds sealed secret values but their key file is missing; restore it from a backup",
                ),
            }
            .into());
        }
        let vault = Vault::generate();
        vault.save(&staged_path)?;
        vault
    };
    if state.seq > 0 {
        upgrade(ledger, &vault)?;
    }
    std::fs::rename(&staged_path, &key_path).map_err(|e| LedgerError::Io(key_path.display().to_string(), e))?;
    sync_dir(dir)?;
    Ok(vault)
}

/// Logs one entry that ends every session and seals every secret value still in the clear, if
/// there is anything to do.
fn upgrade(ledger: &Ledger, vault: &Vault) -> Result<(), LedgerError> {
    let state = ledger.snapshot();
    let session = schema().class("session").expect("session class");
    let sessions: Vec<String> = state.table(session.id).objects.keys().map(|r| r.to_string()).collect();
    let sealed: Vec<(String, String)> =
        live_secret_values(&state).filter(|(_, v)| !vault::is_sealed(v)).map(|(r, v)| (r, vault.seal(&v))).collect();
    if sessions.is_empty() && sealed.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        sessions = sessions.len(),
        secrets = sealed.len(),
        "upgrading a data dir written before sessions were hashed and secrets sealed: ending every session, \
         sealing secret values (the log's older entries still hold them; see the README's security section)"
    );
    let job = Job::internal(Actor::server("upgrade"), InternalOp::UpgradeCredentials { sessions, sealed });
    ledger.call_blocking(job).map_err(|e| LedgerError::Checkpoint { seq: 0, reason: e.to_string() })?;
    Ok(())
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rekeyed {
    pub key_id: u32,
    pub secrets: usize,
    /// The log position of the entry that re-sealed them (0 with no secret to re-seal).
    pub seq: u64,
}

/// Rotates the data dir's key: adds a new key, re-seals every live secret value under it in one
/// logged entry, then retires the old keys. Afterwards the values the log alone still holds
/// (destroyed secrets, replaced values) cannot be opened by anyone. The server must not be
/// running on the data dir (the caller holds the ledger, hence the store's lock).
///
/// A crash before the old keys are retired leaves them in the key file, where the next rotation
/// retires them.
pub fn rekey(ledger: &Ledger) -> Result<Rekeyed, LedgerError> {
    let dir =
        ledger.dir().ok_or_else(|| LedgerError::Io("secret rekey".into(), std::io::Error::other("no data dir")))?;
    let key_path = vault::key_path(dir);
    let mut vault = Vault::load(&key_path)?;
    let key_id = vault.add_key();
    vault.save(&key_path)?;
    let state = ledger.snapshot();
    let mut resealed = Vec::new();
    for (r, value) in live_secret_values(&state) {
        resealed.push((r, vault.seal(&vault.open(&value)?)));
    }
    let secrets = resealed.len();
    let actor = Actor { session: String::new(), user: "cli".into(), originator: "xenledger secret rekey".into() };
    let (_, seq) = ledger
        .call_blocking(Job::internal(actor, InternalOp::Reseal { key_id, values: resealed }))
        .map_err(|e| LedgerError::Checkpoint { seq: 0, reason: e.to_string() })?;
    vault.retire_old_keys();
    vault.save(&key_path)?;
    Ok(Rekeyed { key_id, secrets, seq })
}

/// `(ref, stored value)` of every live secret.
fn live_secret_values(state: &State) -> impl Iterator<Item = (String, String)> + '_ {
    let class = schema().class("secret").expect("secret class");
    let value = class.field("value").expect("secret value field");
    state
        .table(class.id)
        .objects
        .iter()
        .map(move |(r, o)| (r.to_string(), o.fields[value].as_str().unwrap_or("").to_string()))
}

/// Every live secret must open: a start with the wrong key file fails here, not at the first read.
fn check_secrets_open(state: &State, vault: &Vault) -> Result<(), LedgerError> {
    for (_, value) in live_secret_values(state) {
        vault.open(&value)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| LedgerError::Io(dir.display().to_string(), e))
}
