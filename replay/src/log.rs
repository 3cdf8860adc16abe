//! `log`: one line per entry, filtered by class, object, actor and time.
//!
//! Entries are read in seq order and each is checked against the chain as it is printed, so a damaged
//! record stops the listing with an error naming it (everything before it has been printed).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use xenledger::entry::{Change, Entry};
use xenledger::store::GENESIS_HASH;
use xenledger::value::{parse_datetime, Value};

use crate::redact::Redactor;
use crate::render::entry_text;
use crate::{class_name, open_store, state_at, walk};

/// Which entries `log` prints. Every filter given must match (they combine with "and").
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// Entries with a change to an object of this class (case-insensitive name).
    pub class: Option<String>,
    /// Entries with a change to this object, or setting a field to a ref to it.
    pub reference: Option<String>,
    /// As `reference`, for the object(s) created with this uuid (resolved from `Create` changes, and
    /// `Set`s of a `uuid` field, as the log goes).
    pub uuid: Option<String>,
    /// Entries whose actor has this user name, originator or session (`session:<uuid>`).
    pub actor: Option<String>,
    /// Entries at or after this time (`YYYY-MM-DDTHH:MM:SSZ` or xapi's `YYYYMMDDTHH:MM:SSZ`).
    pub since: Option<String>,
    /// Entries at or before this time (the whole second included).
    pub until: Option<String>,
    /// The first seq to read (default 1).
    pub from_seq: Option<u64>,
    /// The last seq to read (default: the end of the log).
    pub to_seq: Option<u64>,
    /// Each change on its own line, created objects with all their non-default fields.
    pub long: bool,
}

/// Writes the matching entries to `out`, one per line (more with `long`). Returns how many matched.
pub fn log(dir: &Path, filter: &LogFilter, out: &mut dyn Write) -> Result<u64> {
    let mut matcher = Matcher::new(filter)?;
    let store = open_store(dir)?;
    let from_seq = filter.from_seq.unwrap_or(1).max(1);
    // The chain link of the first record read is checked against its stored predecessor.
    let prev = match from_seq {
        1 => GENESIS_HASH,
        seq => match store.record(seq - 1)? {
            Some(bytes) => xenledger::store::record_header(seq - 1, &bytes).map_err(crate::describe)?.hash,
            None => bail!("the log has no entry {}", seq - 1),
        },
    };
    // Sessions created before the first entry read are named by the state there.
    let mut redactor = match from_seq {
        1 => Redactor::default(),
        seq => Redactor::of_state(&state_at(&store, seq - 1, true)?.0),
    };
    let mut matched = 0u64;
    walk(&store, from_seq, filter.to_seq, prev, |entry| {
        redactor.learn_entry(&entry);
        let entry = redactor.entry(&entry);
        if matcher.matches(&entry) {
            matched += 1;
            writeln!(out, "{}", entry_text(&entry, filter.long))?;
        }
        Ok(())
    })?;
    Ok(matched)
}

/// A [`LogFilter`] checked and ready: class resolved, times parsed, uuid refs collected on the way.
struct Matcher {
    class: Option<String>,
    reference: Option<String>,
    uuid: Option<String>,
    uuid_refs: HashSet<String>,
    actor: Option<String>,
    since_us: Option<i64>,
    until_us: Option<i64>,
}

impl Matcher {
    fn new(filter: &LogFilter) -> Result<Matcher> {
        let time = |text: &Option<String>, flag: &str| -> Result<Option<i64>> {
            text.as_deref()
                .map(|t| {
                    parse_datetime(t)
                        .with_context(|| format!("{flag} {t:?}: expected YYYY-MM-DDTHH:MM:SSZ or YYYYMMDDTHH:MM:SSZ"))
                })
                .transpose()
        };
        Ok(Matcher {
            class: filter.class.as_deref().map(class_name).transpose()?,
            reference: filter.reference.clone(),
            uuid: filter.uuid.clone(),
            uuid_refs: HashSet::new(),
            actor: filter.actor.clone(),
            since_us: time(&filter.since, "--since")?.map(|secs| secs * 1_000_000),
            // Inclusive of the whole second named.
            until_us: time(&filter.until, "--until")?.map(|secs| (secs + 1) * 1_000_000 - 1),
        })
    }

    fn matches(&mut self, entry: &Entry) -> bool {
        if let Some(uuid) = &self.uuid {
            collect_uuid_refs(uuid, entry, &mut self.uuid_refs);
        }
        let time_ok = self.since_us.is_none_or(|t| entry.timestamp_us >= t)
            && self.until_us.is_none_or(|t| entry.timestamp_us <= t);
        let actor_ok = self
            .actor
            .as_deref()
            .is_none_or(|a| entry.actor.user == a || entry.actor.originator == a || entry.actor.session == a);
        let class_ok = self
            .class
            .as_deref()
            .is_none_or(|class| entry.changes.iter().any(|c| c.object().is_some_and(|(c, _)| c == class)));
        let ref_ok = self.reference.as_deref().is_none_or(|r| touches(entry, |x| x == r));
        let uuid_ok = self.uuid.is_none() || touches(entry, |x| self.uuid_refs.contains(x));
        time_ok && actor_ok && class_ok && ref_ok && uuid_ok
    }
}

/// Adds the refs this entry gives `uuid` to.
fn collect_uuid_refs(uuid: &str, entry: &Entry, refs: &mut HashSet<String>) {
    for change in &entry.changes {
        let named = match change {
            Change::Create { reference, fields, .. } => {
                fields.iter().any(|(name, value)| name == "uuid" && value.as_str() == Some(uuid)).then_some(reference)
            }
            Change::Set { reference, field, value, .. } if field == "uuid" && value.as_str() == Some(uuid) => {
                Some(reference)
            }
            _ => None,
        };
        if let Some(reference) = named {
            refs.insert(reference.clone());
        }
    }
}

/// Whether a change of `entry` is about an object `is_ref` accepts, or stores a ref it accepts.
fn touches(entry: &Entry, is_ref: impl Fn(&str) -> bool + Copy) -> bool {
    entry.changes.iter().any(|change| {
        if change.object().is_some_and(|(_, r)| is_ref(r)) {
            return true;
        }
        match change {
            Change::Create { fields, .. } => fields.iter().any(|(_, v)| holds_ref(v, is_ref)),
            Change::Set { value, .. } | Change::SetAdd { value, .. } | Change::SetRemove { value, .. } => {
                holds_ref(value, is_ref)
            }
            Change::MapPut { key, value, .. } => holds_ref(key, is_ref) || holds_ref(value, is_ref),
            Change::MapRemove { key, .. } => holds_ref(key, is_ref),
            _ => false,
        }
    })
}

fn holds_ref(value: &Value, is_ref: impl Fn(&str) -> bool + Copy) -> bool {
    match value {
        Value::Ref(r) => is_ref(r),
        Value::Set(items) => items.iter().any(|v| holds_ref(v, is_ref)),
        Value::Map(entries) => entries.iter().any(|(k, v)| holds_ref(k, is_ref) || holds_ref(v, is_ref)),
        Value::Record(members) => members.iter().any(|(_, v)| holds_ref(v, is_ref)),
        _ => false,
    }
}
