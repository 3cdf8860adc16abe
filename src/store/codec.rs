//! The stable, versioned encoding of log records and checkpoints. Pure: no redb, no I/O.
//!
//! A log record is `[FORMAT_VERSION u8][prev_hash 32][hash 32][postcard(Entry)]` with
//! `hash = blake3(prev_hash ‖ seq.to_le_bytes() ‖ postcard body)`. The seq is the table key, not part of
//! the framing, but it is hashed, and the decoded entry must carry the same seq.
//!
//! A checkpoint is a seal `[CHECKPOINT_FORMAT_VERSION u8][entry_hash 32][blake3(state) 32][size u64]
//! [parts u32]` (little-endian), where `entry_hash` is the hash of the log record the checkpoint was
//! taken after, and the state image stored beside it in `parts` pieces of at most
//! [`CHECKPOINT_PART_SIZE_BYTES`], numbered from 0, whose concatenation is `size` bytes hashing to
//! the seal's hash. Parts let a large image be written a piece per group commit instead of in one
//! long transaction. A seal of version 1 (data dirs from before parts) holds the whole image after
//! its first 65 bytes. The state bytes are opaque here; their owner encodes them.
//!
//! Every check on the decode side returns [`StoreError::Corrupt`] naming the seq rather than panicking:
//! the bytes come from disk. The encode side asserts, because a bad entry there is a programmer error.

use crate::entry::Entry;
use crate::store::StoreError;

/// A blake3 digest.
pub type Hash = [u8; 32];

/// The version byte in front of every log record this build writes and the only one it reads.
pub const FORMAT_VERSION: u8 = 1;
/// The version byte in front of every checkpoint seal this build writes: the image in parts.
pub const CHECKPOINT_FORMAT_VERSION: u8 = 2;
/// Version 1: the image inline after the entry and state hashes. Read, never written.
const CHECKPOINT_FORMAT_WHOLE: u8 = 1;
/// The `prev_hash` of seq 1.
pub const GENESIS_HASH: Hash = [0; 32];
/// Version byte, prev_hash, hash.
pub const RECORD_HEADER_SIZE_BYTES: usize = 1 + 32 + 32;
/// A seal: version byte, entry hash, state hash, image size, part count.
pub const CHECKPOINT_HEADER_SIZE_BYTES: usize = 1 + 32 + 32 + 8 + 4;
/// The largest part of a checkpoint image: what one group commit carries of an image being stored.
pub const CHECKPOINT_PART_SIZE_BYTES: usize = 256 << 10;
/// The largest stored log record, framing included. One call's changes fit in far less; the bound keeps
/// a runaway call from writing a record that every replay must then load whole.
pub const ENTRY_SIZE_BYTES_MAX: usize = 4 << 20;
/// The largest checkpoint image.
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

/// What a checkpoint's seal says of its image: size, part count and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSeal {
    pub size_bytes: u64,
    pub parts: u32,
    pub hash: Hash,
}

impl ImageSeal {
    /// The seal of `image` cut into parts of [`CHECKPOINT_PART_SIZE_BYTES`] (see [`image_parts`]).
    pub fn of(image: &[u8]) -> ImageSeal {
        ImageSeal {
            size_bytes: image.len() as u64,
            parts: image_parts(image).count() as u32,
            hash: *blake3::hash(image).as_bytes(),
        }
    }
}

/// `image` cut into the parts a checkpoint stores.
pub fn image_parts(image: &[u8]) -> impl Iterator<Item = &[u8]> {
    image.chunks(CHECKPOINT_PART_SIZE_BYTES)
}

/// Frames the seal of a checkpoint taken after the log record whose hash is `entry_hash`.
pub fn encode_checkpoint(entry_hash: &Hash, seal: &ImageSeal) -> Result<Vec<u8>, StoreError> {
    if seal.size_bytes > CHECKPOINT_SIZE_BYTES_MAX as u64 {
        return Err(StoreError::TooLarge {
            what: "checkpoint",
            size_bytes: seal.size_bytes,
            size_bytes_max: CHECKPOINT_SIZE_BYTES_MAX as u64,
        });
    }
    let mut blob = Vec::with_capacity(CHECKPOINT_HEADER_SIZE_BYTES);
    blob.push(CHECKPOINT_FORMAT_VERSION);
    blob.extend_from_slice(entry_hash);
    blob.extend_from_slice(&seal.hash);
    blob.extend_from_slice(&seal.size_bytes.to_le_bytes());
    blob.extend_from_slice(&seal.parts.to_le_bytes());
    Ok(blob)
}

/// What [`decode_checkpoint`] calls with a visitor of the stored parts `(index, bytes)`, in order.
pub type PartVisitor<'a> = dyn FnMut(u32, &[u8]) -> Result<(), StoreError> + 'a;

/// Reads the checkpoint stored at `seq` from its seal `blob` and its parts (which `each_part`
/// hands to the visitor it is given, in index order): checks version, part count, size and state
/// hash; returns the entry hash it names (not yet compared with the log) and the state bytes.
pub fn decode_checkpoint(
    seq: u64,
    blob: &[u8],
    each_part: impl FnOnce(&mut PartVisitor<'_>) -> Result<(), StoreError>,
) -> Result<(Hash, Vec<u8>), StoreError> {
    let corrupt = |reason: String| StoreError::corrupt(seq, format!("checkpoint at seq {seq}: {reason}"));
    let version = blob.first().copied().unwrap_or(CHECKPOINT_FORMAT_VERSION);
    let header_size = match version {
        CHECKPOINT_FORMAT_WHOLE => 1 + 32 + 32,
        CHECKPOINT_FORMAT_VERSION => CHECKPOINT_HEADER_SIZE_BYTES,
        other => return Err(corrupt(format!("format version {other} (this build reads {CHECKPOINT_FORMAT_VERSION})"))),
    };
    if blob.len() < header_size {
        return Err(corrupt(format!("{} bytes is shorter than the {header_size}-byte header", blob.len())));
    }
    let state = if version == CHECKPOINT_FORMAT_WHOLE {
        blob[header_size..].to_vec()
    } else {
        if blob.len() != header_size {
            return Err(corrupt(format!("a {}-byte seal, expected {header_size}", blob.len())));
        }
        let size_bytes = u64::from_le_bytes(blob[65..73].try_into().expect("8 bytes"));
        let parts = u32::from_le_bytes(blob[73..77].try_into().expect("4 bytes"));
        if size_bytes > CHECKPOINT_SIZE_BYTES_MAX as u64 {
            return Err(corrupt(format!("an image of {size_bytes} bytes is over the bound")));
        }
        let mut state = Vec::with_capacity(size_bytes as usize);
        let mut next = 0u32;
        each_part(&mut |index, bytes| {
            if index != next || index >= parts {
                return Err(corrupt(format!("part {index} found where part {next} of {parts} was expected")));
            }
            next += 1;
            state.extend_from_slice(bytes);
            Ok(())
        })?;
        if next != parts {
            return Err(corrupt(format!("{next} of its {parts} parts are stored")));
        }
        if state.len() as u64 != size_bytes {
            return Err(corrupt(format!("its parts hold {} bytes, the seal says {size_bytes}", state.len())));
        }
        state
    };
    if *blake3::hash(&state).as_bytes() != hash_at(blob, 33) {
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

    /// Decodes a seal with `parts` as the stored parts.
    fn decode(seq: u64, blob: &[u8], parts: &[(u32, Vec<u8>)]) -> Result<(Hash, Vec<u8>), StoreError> {
        decode_checkpoint(seq, blob, |visit| parts.iter().try_for_each(|(i, bytes)| visit(*i, bytes)))
    }

    #[test]
    fn checkpoint_round_trip_and_corruption() {
        let image: Vec<u8> = (0..CHECKPOINT_PART_SIZE_BYTES * 2 + 10).map(|i| i as u8).collect();
        let parts: Vec<(u32, Vec<u8>)> = image_parts(&image).enumerate().map(|(i, p)| (i as u32, p.to_vec())).collect();
        assert_eq!(parts.len(), 3);
        let blob = encode_checkpoint(&[7; 32], &ImageSeal::of(&image)).unwrap();
        assert_eq!(blob.len(), CHECKPOINT_HEADER_SIZE_BYTES);
        assert_eq!(decode(3, &blob, &parts).unwrap(), ([7; 32], image.clone()));

        let mut flipped = parts.clone();
        flipped[1].1[5] ^= 0xff;
        let (seq, text) = reason(decode(3, &blob, &flipped).unwrap_err());
        assert_eq!((seq, text.as_str()), (3, "checkpoint at seq 3: state hash mismatch"));
        let text = reason(decode(3, &blob, &parts[..2]).unwrap_err()).1;
        assert_eq!(text, "checkpoint at seq 3: 2 of its 3 parts are stored");
        let text = reason(decode(3, &blob, &[parts[0].clone(), parts[2].clone()]).unwrap_err()).1;
        assert_eq!(text, "checkpoint at seq 3: part 2 found where part 1 of 3 was expected");
        let mut short = parts.clone();
        short[2].1.pop();
        let text = reason(decode(3, &blob, &short).unwrap_err()).1;
        assert!(text.contains("parts hold"), "{text}");
    }

    /// A data dir written before parts holds the image inside the seal (version 1).
    #[test]
    fn whole_checkpoints_of_version_1_are_read() {
        let mut blob = vec![1u8];
        blob.extend_from_slice(&[7; 32]);
        blob.extend_from_slice(blake3::hash(b"state bytes").as_bytes());
        blob.extend_from_slice(b"state bytes");
        assert_eq!(decode(3, &blob, &[]).unwrap(), ([7; 32], b"state bytes".to_vec()));
        *blob.last_mut().unwrap() ^= 0xff;
        assert_eq!(reason(decode(3, &blob, &[]).unwrap_err()).1, "checkpoint at seq 3: state hash mismatch");
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
