//! Which connections of a listener sit idle between requests, and for how long, so that at the
//! connection limit the longest-idle keep-alive connection can be closed to admit a new client
//! (nginx's `reusable connections`): clients that only hold connections open cannot lock others
//! out. A connection in the middle of a request (an `event.from` waiting included) is never chosen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// The connections of one listener.
#[derive(Default)]
pub(super) struct IdleConnections {
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Tracked>>,
}

struct Tracked {
    /// When the connection last became idle; `None` while a request is in progress.
    idle_since: Option<Instant>,
    close: Arc<Notify>,
}

/// One connection's registration: removed when dropped.
pub(super) struct Registration {
    id: u64,
    connections: Arc<IdleConnections>,
    /// Notified when the connection is chosen for closing.
    pub close: Arc<Notify>,
}

/// Marks its connection busy while it lives (one request in progress).
pub(super) struct Busy {
    id: u64,
    connections: Arc<IdleConnections>,
}

impl IdleConnections {
    /// Registers a new connection, idle from now until its first request.
    pub fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        self.lock().insert(id, Tracked { idle_since: Some(Instant::now()), close: close.clone() });
        Registration { id, connections: self.clone(), close }
    }

    /// Asks the connection idle the longest to close; false if none is idle.
    pub fn close_longest_idle(&self) -> bool {
        let mut connections = self.lock();
        let chosen =
            connections.iter_mut().filter_map(|(id, t)| t.idle_since.map(|since| (since, *id))).min().map(|(_, id)| id);
        match chosen.and_then(|id| connections.get_mut(&id)) {
            Some(tracked) => {
                // Chosen once: it is no longer a candidate while it closes.
                tracked.idle_since = None;
                // `notify_one` keeps a permit, so the close is not lost if the connection is
                // not waiting at this instant.
                tracked.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Tracked>> {
        self.connections.lock().expect("idle connections lock")
    }

    fn set_idle(&self, id: u64, idle: bool) {
        if let Some(tracked) = self.lock().get_mut(&id) {
            tracked.idle_since = idle.then(Instant::now);
        }
    }
}

impl Registration {
    /// A cheap handle for the request service, which outlives borrows of the registration.
    pub fn handle(&self) -> BusyHandle {
        BusyHandle { id: self.id, connections: self.connections.clone() }
    }
}

/// What the per-request service holds to mark its connection busy.
#[derive(Clone)]
pub(super) struct BusyHandle {
    id: u64,
    connections: Arc<IdleConnections>,
}

impl BusyHandle {
    pub fn busy(&self) -> Busy {
        self.connections.set_idle(self.id, false);
        Busy { id: self.id, connections: self.connections.clone() }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connections.set_idle(self.id, true);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_idle_connection_is_chosen_and_busy_ones_never() {
        let connections = Arc::new(IdleConnections::default());
        let first = connections.register();
        let second = connections.register();
        let third = connections.register();
        let _busy = first.handle().busy();
        assert!(connections.close_longest_idle());
        // `second` became idle before `third`: it is chosen, and only once.
        assert!(tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(10), second.close.notified()).await.is_ok()
        }));
        assert!(connections.close_longest_idle());
        assert!(!connections.close_longest_idle(), "the busy connection is never chosen");
        drop(third);
        assert_eq!(connections.lock().len(), 2);
    }
}
