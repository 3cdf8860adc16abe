//! The clock seam: the only place the server reads the wall clock or waits for time to pass.
//!
//! [`SystemClock`] is the real one. [`VirtualClock`] is time that moves only when a test (or the
//! simulation) says so: its sleeps complete when [`VirtualClock::advance`] carries the clock past
//! their end, so no test waits for real time to pass and every timeout is reproducible. The
//! transport's own timeouts (`server`) are real time by nature and stay outside this seam.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A future a clock completes.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time, microseconds since the Unix epoch.
    fn now_us(&self) -> i64;

    /// Wall-clock time, whole seconds since the Unix epoch.
    fn now_secs(&self) -> i64 {
        self.now_us().div_euclid(1_000_000)
    }

    /// Completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The time `after` from now on `clock`, in microseconds since the epoch.
pub fn deadline_us(clock: &dyn Clock, after: Duration) -> i64 {
    clock.now_us().saturating_add(i64::try_from(after.as_micros()).unwrap_or(i64::MAX))
}

/// Waits for `event`, or until `deadline_us` passes on `clock`, whichever comes first. A parked
/// waiter (`event.from`, a wait for an object's turn) holds no thread.
pub async fn until<F: Future>(clock: &dyn Clock, deadline_us: i64, event: F) {
    let left_us = deadline_us.saturating_sub(clock.now_us()).max(0);
    tokio::select! {
        _ = event => {}
        () = clock.sleep(Duration::from_micros(left_us.unsigned_abs())) => {}
    }
}

/// The machine's clock and tokio's timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Time that moves only by [`VirtualClock::advance`].
#[derive(Debug)]
pub struct VirtualClock {
    now_us: watch::Sender<i64>,
}

impl VirtualClock {
    /// A clock reading `start_us` microseconds since the epoch.
    pub fn new(start_us: i64) -> VirtualClock {
        VirtualClock { now_us: watch::Sender::new(start_us) }
    }

    /// A clock at a fixed, realistic date (2026-01-01T00:00:00Z).
    pub fn at_2026() -> VirtualClock {
        VirtualClock::new(1_767_225_600_000_000)
    }

    /// Moves the clock forward, completing every sleep that ends by then.
    pub fn advance(&self, duration: Duration) {
        let step = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        self.now_us.send_modify(|now| *now = now.saturating_add(step));
    }
}

impl Clock for VirtualClock {
    fn now_us(&self) -> i64 {
        *self.now_us.borrow()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let end = self.now_us().saturating_add(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX));
        let mut now = self.now_us.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; if the clock is gone, time has stopped.
            let _ = now.wait_for(|t| *t >= end).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_sleeps_end_when_the_clock_is_advanced_past_them() {
        let clock = std::sync::Arc::new(VirtualClock::new(0));
        let sleeper = tokio::spawn(clock.sleep(Duration::from_secs(5)));
        clock.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper).await.expect("woken").unwrap();
        assert_eq!(clock.now_secs(), 5);
    }
}

/// A pace for background disk work (the parts of a checkpoint image): so many bytes a second,
/// on real time, like the transport's timeouts, since it only spreads the disk's load and decides
/// nothing a test or a replay could observe.
#[derive(Debug)]
pub struct Pace {
    bytes_per_s: u64,
    next: Option<std::time::Instant>,
}

impl Pace {
    pub fn new(bytes_per_s: u64) -> Pace {
        Pace { bytes_per_s: bytes_per_s.max(1), next: None }
    }

    /// Whether the bytes spent so far have had their time.
    pub fn ready(&self) -> bool {
        self.next.is_none_or(|next| std::time::Instant::now() >= next)
    }

    /// Counts `bytes` just written.
    pub fn spend(&mut self, bytes: u64) {
        let now = std::time::Instant::now();
        let from = self.next.filter(|next| *next > now).unwrap_or(now);
        self.next = Some(from + Duration::from_micros(bytes.saturating_mul(1_000_000) / self.bytes_per_s));
    }
}
