//! First start: the root password (given or generated), then the `FirstStart` internal op
//! (`engine/internal/first_start.rs`) that creates root, the pool and this host.

use crate::auth;
use crate::engine::internal::{FirstBoot, InternalOp};
use crate::engine::State;
use crate::entry::Actor;
use crate::ledger::{Job, Ledger, LedgerError};
use crate::schema::schema;

/// What a first start needs from outside.
#[derive(Clone, Debug, Default)]
pub struct FirstStart {
    /// The root password; `None` generates one (returned once to be printed).
    pub root_password: Option<String>,
    pub hostname: String,
    pub address: String,
}

/// Whether the data dir has no pool yet: this start creates root, the pool and this host.
pub fn is_first_start(ledger: &Ledger) -> bool {
    let pool = schema().class("pool").expect("pool class");
    ledger.snapshot().table(pool.id).objects.is_empty()
}

/// Creates what a fresh server has, unless the data dir already has a pool. Returns the
/// generated root password, if one was generated.
pub fn ensure(ledger: &Ledger, first: &FirstStart) -> Result<Option<String>, LedgerError> {
    if !is_first_start(ledger) {
        return Ok(None);
    }
    let (password, generated) = match &first.root_password {
        Some(p) => (p.clone(), None),
        None => {
            let p = auth::generate_password();
            (p.clone(), Some(p))
        }
    };
    let op = InternalOp::FirstStart(Box::new(FirstBoot {
        root_password_hash: auth::hash_password(&password),
        hostname: first.hostname.clone(),
        address: first.address.clone(),
    }));
    let job =
        Job::internal(Actor { session: String::new(), user: "xenledger".into(), originator: "first-start".into() }, op);
    ledger
        .call_blocking(job)
        .map_err(|e| LedgerError::Checkpoint { seq: 0, reason: format!("first start failed: {e}") })?;
    Ok(generated)
}

/// This host: the pool master.
pub fn this_host(state: &State) -> Option<String> {
    let pool = schema().class("pool")?;
    let master = pool.field("master")?;
    state.table(pool.id).objects.values().next().and_then(|o| o.fields[master].as_str().map(String::from))
}
