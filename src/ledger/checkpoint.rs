//! A checkpoint image streamed in parts: encoded on a thread of its own from a published
//! (immutable) state, handed over a part at a time, and stored by the committer a part per turn,
//! then sealed. Neither a whole image nor a copy of the state is ever held, and no single
//! transaction writes more than a part, so a large state's checkpoint neither stalls the group
//! commits nor doubles the process's memory.

use std::io;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

use crate::engine::snapshot;
use crate::engine::State;
use crate::store::{ImageSeal, Log, CHECKPOINT_PART_SIZE_BYTES};

/// Parts encoded ahead of the committer: the encoder waits beyond them.
const PARTS_IN_FLIGHT: usize = 4;

enum Piece {
    Part(Vec<u8>),
    Sealed(ImageSeal),
}

/// What [`ImageStream::store_next`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Progress {
    /// Nothing: the encoder has not made the next part yet.
    Waiting,
    /// A part was stored; more are to come.
    Stored,
    /// Every part is stored and the seal is durable.
    Sealed,
}

/// An image being encoded and stored. Dropping it abandons the checkpoint: the encoder stops at
/// its next part; the committer marks the parts stored so far for the sweep
/// (`Log::abandon_checkpoint`), or the next open finds them.
pub(super) struct ImageStream {
    pub seq: u64,
    next_index: u32,
    pieces: Receiver<Piece>,
}

impl ImageStream {
    /// Starts encoding `state` on a thread of its own.
    pub fn start(state: Arc<State>) -> io::Result<ImageStream> {
        let (parts, pieces) = mpsc::sync_channel(PARTS_IN_FLIGHT);
        let seq = state.seq;
        std::thread::Builder::new().name("xenledger-checkpoint".into()).spawn(move || {
            lower_priority();
            let mut out =
                PartWriter { part: Vec::new(), hasher: blake3::Hasher::new(), size_bytes: 0, parts: 0, to: parts };
            if snapshot::encode_to(&state, &mut out).is_ok() && out.send_part().is_ok() {
                let seal =
                    ImageSeal { size_bytes: out.size_bytes, parts: out.parts, hash: *out.hasher.finalize().as_bytes() };
                let _ = out.to.send(Piece::Sealed(seal));
            }
        })?;
        Ok(ImageStream { seq, next_index: 0, pieces })
    }

    /// Stores the next part, if the encoder has made it, or the seal once every part is stored.
    pub fn store_next(&mut self, log: &dyn Log) -> Result<Progress, String> {
        match self.pieces.try_recv() {
            Ok(Piece::Part(bytes)) => {
                log.put_checkpoint_part(self.seq, self.next_index, &bytes).map_err(|e| e.to_string())?;
                self.next_index += 1;
                Ok(Progress::Stored)
            }
            Ok(Piece::Sealed(seal)) => {
                debug_assert_eq!(seal.parts, self.next_index);
                log.seal_checkpoint(self.seq, &seal).map_err(|e| e.to_string())?;
                Ok(Progress::Sealed)
            }
            Err(TryRecvError::Empty) => Ok(Progress::Waiting),
            Err(TryRecvError::Disconnected) => Err("the encoding thread stopped".into()),
        }
    }
}

/// The encoder thread's nice value, the lowest. Encoding a large state is a few hundred
/// milliseconds of CPU; at the writers' priority it took a core from them for that long on a
/// 2-core machine, and the writes' p99 tripled while it ran (bench `scale`, encoding without
/// storing: p99 5.1-5.9 ms in checkpoint windows at nice 10, 4.5-4.8 ms at nice 19, against
/// 2.8-3.7 ms without).
const ENCODER_NICE: i32 = 19;

/// Lowers the calling thread's priority to [`ENCODER_NICE`] (on Linux the nice value is per
/// thread), so that the writers' work comes first and the image is made from what CPU is left.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), ENCODER_NICE) {
        tracing::debug!("checkpoint thread priority: {e}");
    }
}

/// The encoder's output: cuts the image into parts of [`CHECKPOINT_PART_SIZE_BYTES`], hashing
/// and counting as it goes, and sends each to the committer.
struct PartWriter {
    part: Vec<u8>,
    hasher: blake3::Hasher,
    size_bytes: u64,
    parts: u32,
    to: SyncSender<Piece>,
}

impl PartWriter {
    fn send_part(&mut self) -> io::Result<()> {
        if self.part.is_empty() {
            return Ok(());
        }
        let part = std::mem::take(&mut self.part);
        self.hasher.update(&part);
        self.size_bytes += part.len() as u64;
        self.parts += 1;
        self.to.send(Piece::Part(part)).map_err(|_| io::Error::other("the checkpoint was abandoned"))
    }
}

impl io::Write for PartWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = CHECKPOINT_PART_SIZE_BYTES - self.part.len();
        let taken = bytes.len().min(room);
        if self.part.capacity() == 0 {
            self.part.reserve_exact(CHECKPOINT_PART_SIZE_BYTES);
        }
        self.part.extend_from_slice(&bytes[..taken]);
        if self.part.len() == CHECKPOINT_PART_SIZE_BYTES {
            self.send_part()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{codec, MemoryLog};

    /// The parts, stored as they come and sealed, are the image `snapshot::encode` makes.
    #[test]
    fn a_streamed_image_is_the_encoded_image() {
        let mut state = State::new();
        state.seq = 1;
        state.users.insert(
            "root".into(),
            crate::engine::state::User {
                role: "pool-admin".into(),
                password_hash: "x".repeat(3 * CHECKPOINT_PART_SIZE_BYTES),
            },
        );
        let log = MemoryLog::new();
        let entry = crate::entry::Entry {
            seq: 1,
            timestamp_us: 0,
            actor: Default::default(),
            method: "m".into(),
            params: vec![],
            changes: vec![],
        };
        let (record, _) = codec::encode_entry(&crate::store::GENESIS_HASH, &entry).unwrap();
        log.append_batch(&[(1, record)]).unwrap();
        let image = snapshot::encode(&state);
        let mut stream = ImageStream::start(Arc::new(state)).unwrap();
        // The encoder cannot stall while its parts are drained, and its end is an error here.
        while stream.store_next(&log).unwrap() != Progress::Sealed {
            std::thread::yield_now();
        }
        let stored = log.latest_checkpoint().unwrap().unwrap();
        assert_eq!(stored.seq, 1);
        assert!(stored.state == image, "the stored image differs from the encoded one");
    }
}
