//! The hand-over from the writer to the committer. The writer executes jobs as they arrive and
//! adds each drained lot to the one batch waiting here; the committer, whenever it is free, takes
//! everything waiting as one group commit. So a commit carries every job executed while the
//! previous one was on the disk, and the writer waits for the committer only when a whole
//! [`BATCH_JOBS_MAX`] is already waiting.
//!
//! Before, the writer handed over each drained lot by a rendezvous and then waited for the
//! committer: two half-full batches alternated, so a commit carried about half the callers
//! (bench `engine-writes`, 64 clients, on a disk whose fsync took 1.5 ms: 25.6 jobs per commit,
//! 14.5k writes/s).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::{Batch, BATCH_JOBS_MAX};

#[derive(Default)]
pub(super) struct Handover {
    slot: Mutex<Slot>,
    /// Signalled when a batch is put or the writer closes.
    filled: Condvar,
    /// Signalled when the committer takes the waiting batch.
    taken: Condvar,
}

#[derive(Default)]
struct Slot {
    waiting: Option<Batch>,
    closed: bool,
}

/// What [`Handover::take`] found.
pub(super) enum Taken {
    Batch(Batch),
    /// Nothing within the wait.
    Idle,
    /// The writer is gone and nothing is waiting.
    Closed,
}

impl Handover {
    /// Adds `batch` (executed after whatever is waiting) to the waiting batch; blocks while a
    /// full one waits.
    pub(super) fn put(&self, batch: Batch) {
        let mut slot = self.lock();
        while slot.waiting.as_ref().is_some_and(|b| b.replies.len() >= BATCH_JOBS_MAX) {
            slot = self.taken.wait(slot).expect("handover lock");
        }
        let superseded = match &mut slot.waiting {
            Some(waiting) => Some(waiting.append(batch)),
            None => {
                slot.waiting = Some(batch);
                None
            }
        };
        drop(slot);
        self.filled.notify_one();
        // An earlier state dropped outside the lock: it may free the last copies of objects.
        drop(superseded);
    }

    /// No batch will follow; the committer ends once it has taken what waits.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.filled.notify_one();
    }

    /// Takes the waiting batch, waiting up to `wait` for one.
    pub(super) fn take(&self, wait: Duration) -> Taken {
        let mut slot = self.lock();
        if slot.waiting.is_none() && !slot.closed {
            slot = self.filled.wait_timeout(slot, wait).expect("handover lock").0;
        }
        match slot.waiting.take() {
            Some(batch) => {
                drop(slot);
                self.taken.notify_one();
                Taken::Batch(batch)
            }
            None if slot.closed => Taken::Closed,
            None => Taken::Idle,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().expect("handover lock")
    }
}

/// Closes the hand-over when dropped, so that a writer that panics still ends the committer.
pub(super) struct CloseOnDrop<'a>(pub(super) &'a Handover);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::State;
    use crate::value::Value;

    fn batch(seqs: &[u64], stop: bool) -> Batch {
        let mut state = State::new();
        state.seq = seqs.last().copied().unwrap_or(0);
        Batch {
            records: seqs.iter().map(|&seq| (seq, vec![seq as u8])).collect(),
            replies: Vec::new(),
            state: Arc::new(state),
            checkpoints: Vec::new(),
            stop,
        }
    }

    #[test]
    fn the_committer_takes_everything_put_since_it_last_took() {
        let handover = Handover::default();
        assert!(matches!(handover.take(Duration::from_millis(1)), Taken::Idle));
        handover.put(batch(&[1, 2], false));
        handover.put(batch(&[3], false));
        let Taken::Batch(taken) = handover.take(Duration::ZERO) else { panic!("a batch waits") };
        assert_eq!(taken.records.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(taken.state.seq, 3, "the batch ends in the state after its last job");
        assert!(!taken.stop);
        assert!(matches!(handover.take(Duration::from_millis(1)), Taken::Idle));
    }

    #[test]
    fn a_stop_is_kept_and_the_writers_exit_ends_the_committer_after_the_last_batch() {
        let handover = Handover::default();
        handover.put(batch(&[1], false));
        handover.put(batch(&[], true));
        // How the writer closes on its way out, a panic's included.
        drop(CloseOnDrop(&handover));
        let Taken::Batch(taken) = handover.take(Duration::ZERO) else { panic!("a batch waits") };
        assert!(taken.stop);
        assert_eq!(taken.state.seq, 0, "the last lot's state, even an empty one");
        assert!(matches!(handover.take(Duration::from_secs(60)), Taken::Closed));
    }

    #[test]
    fn the_writer_waits_while_a_full_batch_waits() {
        let handover = Arc::new(Handover::default());
        let mut full = batch(&[1], false);
        full.replies = (0..BATCH_JOBS_MAX).map(|_| (tokio::sync::oneshot::channel().0, Ok((Value::Null, 1)))).collect();
        handover.put(full);
        let writer = {
            let handover = handover.clone();
            std::thread::spawn(move || handover.put(batch(&[2], false)))
        };
        let Taken::Batch(first) = handover.take(Duration::ZERO) else { panic!("the full batch waits") };
        assert_eq!(first.records.len(), 1, "the later lot was not added to a full batch");
        writer.join().expect("the writer put its lot once the full batch was taken");
        let Taken::Batch(second) = handover.take(Duration::from_secs(60)) else { panic!("the later lot waits") };
        assert_eq!(second.records[0].0, 2);
    }
}
