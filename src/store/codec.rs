//! The stable, versioned encoding of log records and checkpoints. Pure: no redb, no I/O.
//!
//! A log record is `[FORMAT_VERSION u8][prev_hash 32][hash 32][postcard(Entry)]` with
//! `hash = blake3(prev_hash ‖ seq.to_le_bytes() ‖ postcard body)`. The seq is the table key, not part of
//! the framing, but it is hashed, and the decoded entry must carry the same seq.
//!
//! A checkpoint blob is `[CHECKPOINT_FORMAT_VERSION u8][entry_hash 32][blake3(state) 32][state]`, where
//! `entry_hash` is the hash of the log record the checkpoint was taken after. The state bytes are opaque
//! here; their owner encodes them.
//!
//! Every check on the decode side returns [`StoreError::Corrupt`] naming the seq rather than panicking:
//! the bytes come from disk. The encode side asserts, because a bad entry there is a programmer error.

use crate::entry::Entry;
use crate::store::StoreError;

/// A blake3 digest.
pub type Hash = [u8; 32];

/// The version byte in front of every log record this build writes and the only one it reads.
pub const FORMAT_VERSION: u8 = 1;
/// The version byte in front of every checkpoint blob.
pub const CHECKPOINT_FORMAT_VERSION: u8 = 1;
/// The `prev_hash` of seq 1.
pub const GENESIS_HASH: Hash = [0; 32];
/// Version byte, prev_hash, hash.
pub const RECORD_HEADER_SIZE_BYTES: usize = 1 + 32 + 32;
/// Version byte, entry hash, state hash.
pub const CHECKPOINT_HEADER_SIZE_BYTES: usize = 1 + 32 + 32;
/// The largest stored log record, framing included. One call's changes fit in far less; the bound keeps
/// a runaway call from writing a record that every replay must then load whole.
pub const ENTRY_SIZE_BYTES_MAX: usize = 4 << 20;
/// The largest checkpoint blob, framing included (redb's own value limit is 3 GiB).
pub const CHECKPOINT_SIZE_BYTES_MAX: usize = 1 << 30;

/// A record decoded and verified against its own hash.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedRecord {
    pub prev_hash: Hash,
    pub hash: Hash,
    pub entry: Entry,
}

/// The framing of a record, read without decoding or hashing the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// The chain hash of the record at `seq` whose postcard body is `body`.
pub fn entry_hash(prev_hash: &Hash, seq: u64, body: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(prev_hash);
    hasher.update(&seq.to_le_bytes());
    hasher.update(body);
    *hasher.finalize().as_bytes()
}

/// Why an entry may not be stored, if it may not. Checked before encode (assert) and after decode
/// (Corrupt): a pair assertion.
fn entry_invalid_reason(entry: &Entry) -> Option<&'static str> {
    if entry.seq == 0 {
        return Some("seq is 0; seqs start at 1");
    }
    if entry.method.is_empty() {
        return Some("method is empty");
    }
    None
}

/// Frames `entry` after the record whose hash is `prev_hash`. Returns the record and its hash, which the
/// caller passes as `prev_hash` for the next entry.
///
/// Panics if the entry is invalid (seq 0, empty method). Fails with [`StoreError::TooLarge`] if the
/// record would exceed [`ENTRY_SIZE_BYTES_MAX`].
pub fn encode_entry(prev_hash: &Hash, entry: &Entry) -> Result<(Vec<u8>, Hash), StoreError> {
    if let Some(reason) = entry_invalid_reason(entry) {
        panic!("encode_entry: entry {} is invalid: {reason}", entry.seq);
    }
    let mut record = Vec::with_capacity(RECORD_HEADER_SIZE_BYTES + 256);
    record.push(FORMAT_VERSION);
    record.extend_from_slice(prev_hash);
    record.extend_from_slice(&[0; 32]);
    // postcard fails only on sequences of unknown length or custom serializer errors; Entry has neither.
    let mut record = postcard::to_extend(entry, record).expect("an Entry always serializes");
    if record.len() > ENTRY_SIZE_BYTES_MAX {
        return Err(StoreError::TooLarge {
            what: "log record",
            size_bytes: record.len() as u64,
            size_bytes_max: ENTRY_SIZE_BYTES_MAX as u64,
        });
    }
    let hash = entry_hash(prev_hash, entry.seq, &record[RECORD_HEADER_SIZE_BYTES..]);
    record[33..RECORD_HEADER_SIZE_BYTES].copy_from_slice(&hash);
    Ok((record, hash))
}

/// Reads the framing of the record at `seq`: checks the length and version byte, not the hash.
pub fn record_header(seq: u64, bytes: &[u8]) -> Result<RecordHeader, StoreError> {
    if bytes.len() < RECORD_HEADER_SIZE_BYTES {
        let reason =
            format!("record of {} bytes is shorter than its {RECORD_HEADER_SIZE_BYTES}-byte header", bytes.len());
        return Err(StoreError::corrupt(seq, reason));
    }
    if bytes.len() > ENTRY_SIZE_BYTES_MAX {
        let reason = format!("record of {} bytes exceeds the limit of {ENTRY_SIZE_BYTES_MAX}", bytes.len());
        return Err(StoreError::corrupt(seq, reason));
    }
    if bytes[0] != FORMAT_VERSION {
        let reason = format!("record format version {} (this build reads {FORMAT_VERSION})", bytes[0]);
        return Err(StoreError::corrupt(seq, reason));
    }
    Ok(RecordHeader { prev_hash: hash_at(bytes, 1), hash: hash_at(bytes, 33) })
}

/// Decodes the record stored at `seq` and verifies it on its own: version, hash, a body with no trailing
/// bytes, `entry.seq == seq`, a valid entry. Linking to the previous record is the caller's check
/// ([`crate::store::Store::verify_chain`]).
pub fn decode_record(seq: u64, bytes: &[u8]) -> Result<DecodedRecord, StoreError> {
    let RecordHeader { prev_hash, hash } = check_record(seq, bytes)?;
    let entry = decode_body(seq, bytes)?;
    Ok(DecodedRecord { prev_hash, hash, entry })
}

/// The first half of [`decode_record`]: framing and hash, without decoding the body.
pub fn check_record(seq: u64, bytes: &[u8]) -> Result<RecordHeader, StoreError> {
    let header = record_header(seq, bytes)?;
    let body = &bytes[RECORD_HEADER_SIZE_BYTES..];
    if entry_hash(&header.prev_hash, seq, body) != header.hash {
        return Err(StoreError::corrupt(seq, "record hash mismatch"));
    }
    Ok(header)
}

/// The second half of [`decode_record`]: the body of a record whose framing and hash
/// [`check_record`] accepted.
pub fn decode_body(seq: u64, bytes: &[u8]) -> Result<Entry, StoreError> {
    let body = &bytes[RECORD_HEADER_SIZE_BYTES..];
    let (entry, rest): (Entry, &[u8]) = postcard::take_from_bytes(body)
        .map_err(|error| StoreError::corrupt(seq, format!("undecodable entry body: {error}")))?;
    if !rest.is_empty() {
        return Err(StoreError::corrupt(seq, format!("{} trailing bytes after the entry body", rest.len())));
    }
    if entry.seq != seq {
        return Err(StoreError::corrupt(seq, format!("record stored at seq {seq} holds entry {}", entry.seq)));
    }
    if let Some(reason) = entry_invalid_reason(&entry) {
        return Err(StoreError::corrupt(seq, format!("invalid entry: {reason}")));
    }
    Ok(entry)
}

/// Frames a checkpoint of `state` taken after the log record whose hash is `entry_hash`.
pub fn encode_checkpoint(entry_hash: &Hash, state: &[u8]) -> Result<Vec<u8>, StoreError> {
    let size_bytes = CHECKPOINT_HEADER_SIZE_BYTES + state.len();
    if size_bytes > CHECKPOINT_SIZE_BYTES_MAX {
        return Err(StoreError::TooLarge {
            what: "checkpoint",
            size_bytes: size_bytes as u64,
            size_bytes_max: CHECKPOINT_SIZE_BYTES_MAX as u64,
        });
    }
    let mut blob = Vec::with_capacity(size_bytes);
    blob.push(CHECKPOINT_FORMAT_VERSION);
    blob.extend_from_slice(entry_hash);
    blob.extend_from_slice(blake3::hash(state).as_bytes());
    blob.extend_from_slice(state);
    Ok(blob)
}

/// Reads the checkpoint stored at `seq`: checks version and state hash, returns the entry hash it names
/// (not yet compared with the log) and the state bytes.
pub fn decode_checkpoint(seq: u64, blob: &[u8]) -> Result<(Hash, &[u8]), StoreError> {
    let corrupt = |reason: String| StoreError::corrupt(seq, format!("checkpoint at seq {seq}: {reason}"));
    if blob.len() < CHECKPOINT_HEADER_SIZE_BYTES {
        return Err(corrupt(format!(
            "{} bytes is shorter than the {CHECKPOINT_HEADER_SIZE_BYTES}-byte header",
            blob.len()
        )));
    }
    if blob[0] != CHECKPOINT_FORMAT_VERSION {
        return Err(corrupt(format!("format version {} (this build reads {CHECKPOINT_FORMAT_VERSION})", blob[0])));
    }
    let state = &blob[CHECKPOINT_HEADER_SIZE_BYTES..];
    if *blake3::hash(state).as_bytes() != hash_at(blob, 33) {
        return Err(corrupt("state hash mismatch".to_string()));
    }
    Ok((hash_at(blob, 1), state))
}

fn hash_at(bytes: &[u8], offset: usize) -> Hash {
    let mut hash = [0; 32];
    hash.copy_from_slice(&bytes[offset..offset + 32]);
    hash
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::entry::{Actor, Change};
    use crate::value::Value;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            timestamp_us: 1_700_000_000_000_000 + seq as i64,
            actor: Actor::default(),
            method: "VM.set_name_label".into(),
            params: vec![Value::str("OpaqueRef:vm"), Value::str(format!("name {seq}"))],
            changes: vec![Change::Set {
                class: "VM".into(),
                reference: "OpaqueRef:vm".into(),
                field: "name_label".into(),
                value: Value::str(format!("name {seq}")),
            }],
        }
    }

    fn reason(error: StoreError) -> (u64, String) {
        match error {
            StoreError::Corrupt { seq, reason } => (seq, reason),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn record_round_trip_and_chain() {
        let (first, first_hash) = encode_entry(&GENESIS_HASH, &entry(1)).unwrap();
        let (second, second_hash) = encode_entry(&first_hash, &entry(2)).unwrap();
        assert_eq!(first[0], FORMAT_VERSION);
        let decoded = decode_record(1, &first).unwrap();
        assert_eq!(decoded, DecodedRecord { prev_hash: GENESIS_HASH, hash: first_hash, entry: entry(1) });
        let decoded = decode_record(2, &second).unwrap();
        assert_eq!(decoded.prev_hash, first_hash);
        assert_eq!(decoded.hash, second_hash);
        assert_eq!(record_header(2, &second).unwrap(), RecordHeader { prev_hash: first_hash, hash: second_hash });
        // Same entry, other predecessor: other hash.
        assert_ne!(encode_entry(&second_hash, &entry(2)).unwrap().1, second_hash);
    }

    #[test]
    fn record_checks_name_the_seq() {
        let (record, _) = encode_entry(&GENESIS_HASH, &entry(5)).unwrap();
        // Stored under another key: the hash covers the seq.
        assert_eq!(reason(decode_record(6, &record).unwrap_err()), (6, "record hash mismatch".into()));
        let mut versioned = record.clone();
        versioned[0] = 2;
        assert!(reason(decode_record(5, &versioned).unwrap_err()).1.contains("format version 2"));
        assert!(reason(decode_record(5, &record[..10]).unwrap_err()).1.contains("shorter"));
        // Trailing bytes with a hash recomputed over them are still refused.
        let mut trailing = record.clone();
        trailing.push(0);
        let hash = entry_hash(&GENESIS_HASH, 5, &trailing[RECORD_HEADER_SIZE_BYTES..]);
        trailing[33..65].copy_from_slice(&hash);
        assert!(reason(decode_record(5, &trailing).unwrap_err()).1.contains("trailing"));
    }

    #[test]
    fn record_size_bounded() {
        let mut big = entry(1);
        big.params = vec![Value::str("x".repeat(ENTRY_SIZE_BYTES_MAX))];
        assert!(matches!(encode_entry(&GENESIS_HASH, &big), Err(StoreError::TooLarge { .. })));
    }

    #[test]
    #[should_panic(expected = "seq is 0")]
    fn encode_asserts_valid_entry() {
        let _ = encode_entry(&GENESIS_HASH, &entry(0));
    }

    #[test]
    fn checkpoint_round_trip_and_corruption() {
        let blob = encode_checkpoint(&[7; 32], b"state bytes").unwrap();
        assert_eq!(decode_checkpoint(3, &blob).unwrap(), ([7; 32], &b"state bytes"[..]));
        let mut bad = blob.clone();
        *bad.last_mut().unwrap() ^= 0xff;
        let (seq, text) = reason(decode_checkpoint(3, &bad).unwrap_err());
        assert_eq!((seq, text.as_str()), (3, "checkpoint at seq 3: state hash mismatch"));
    }

    proptest! {
        /// Every single-byte change anywhere in a record is detected, and never panics.
        #[test]
        fn any_flipped_byte_is_detected(index in 0usize..10_000, mask in 1u8..=255) {
            let (mut record, _) = encode_entry(&[3; 32], &entry(9)).unwrap();
            let index = index % record.len();
            record[index] ^= mask;
            let (seq, _) = reason(decode_record(9, &record).unwrap_err());
            prop_assert_eq!(seq, 9);
        }
    }
}
