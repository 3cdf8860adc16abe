//! `GET /metrics`: the server's figures in the Prometheus (OpenMetrics) text format, encoded by
//! the `prometheus-client` crate.
//!
//! Counted as calls happen: calls by method and outcome (`success` or the error code), and call
//! latency histograms by method (known datamodel methods only, so a client cannot grow the label
//! set). Read from the node at each scrape: log entries (the last position) and the database's
//! bytes, the checkpoint's age, sessions, parked `event.from`/`event.next` waiters, tasks by
//! status, open connections.
//!
//! Restricted as xapi restricts its statistics (`/host_rrds`, `/rrd_updates`: permission
//! `http/get_host_rrds`, every role from read-only up): a session, HTTP Basic checked against the
//! local users without making a session (a scraper every 15 s would otherwise log two entries a
//! scrape), or the local socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::transfer::{DiskRequest, TransferOutcome};
use super::Node;
use crate::auth;
use crate::error::ApiError;
use crate::schema::generated::{class, field as f};

/// The permission xapi checks for host statistics.
pub const PERMISSION: &str = "http/get_host_rrds";
/// What a scrape answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The figures counted as calls happen, and the gauges set at each scrape.
pub struct Metrics {
    registry: Registry,
    calls: Family<Labels, Counter>,
    latency: HistogramFamily,
    log_entries: Gauge,
    log_bytes: Gauge,
    checkpoint_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    sessions: Gauge,
    waiters: Gauge,
    tasks: Family<Labels, Gauge>,
    connections: Gauge,
    /// `event.from`/`event.next` calls parked now.
    pub parked: Arc<AtomicI64>,
    /// The success counter and latency histogram of each known method as called (`Async.` and
    /// `Class_message` forms included), taken from the families once, so that counting a call
    /// allocates nothing: every call passes here.
    known: RwLock<HashMap<String, MethodFigures>>,
}

/// One method's handles into [`Metrics::calls`] and [`Metrics::latency`] (clones share the
/// family's figures).
#[derive(Clone)]
struct MethodFigures {
    successes: Counter,
    latency: Histogram,
}

/// Whether `method` (`Async.` or not) is a message of the datamodel: only those get a label of
/// their own.
fn is_known(method: &str) -> bool {
    crate::schema::schema().lookup(method.strip_prefix("Async.").unwrap_or(method)).is_some()
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~26 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("xenledger");
        let calls = Family::<Labels, Counter>::default();
        registry.register("calls", "XenAPI calls by method and outcome", calls.clone());
        let latency = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register("call_seconds", "XenAPI call latency by method", latency.clone());
        let log_entries = Gauge::default();
        registry.register("log_entries", "Entries in the log (its last position)", log_entries.clone());
        let log_bytes = Gauge::default();
        registry.register("log_bytes", "Size of the log's database file", log_bytes.clone());
        let checkpoint_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "checkpoint_age_seconds",
            "Time since the newest checkpoint was stored (since open if none was this run)",
            checkpoint_age.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions", "Open sessions", sessions.clone());
        let waiters = Gauge::default();
        registry.register("event_waiters", "event.from and event.next calls parked", waiters.clone());
        let tasks = Family::<Labels, Gauge>::default();
        registry.register("tasks", "Tasks by status", tasks.clone());
        let connections = Gauge::default();
        registry.register("connections", "Open client connections", connections.clone());
        Metrics {
            registry,
            calls,
            latency,
            log_entries,
            log_bytes,
            checkpoint_age,
            sessions,
            waiters,
            tasks,
            connections,
            parked: Arc::default(),
            known: RwLock::default(),
        }
    }
}

impl Metrics {
    /// Counts one call of `method` (a datamodel method, `Async.` included, or "unknown").
    pub fn record_call(&self, method: &str, outcome: Result<(), &ApiError>, seconds: f64) {
        if outcome.is_ok() {
            let known = self.known.read().expect("metrics lock").get(method).cloned();
            if let Some(figures) = known.or_else(|| self.learn(method)) {
                figures.successes.inc();
                figures.latency.observe(seconds);
                return;
            }
        }
        let method = match is_known(method) {
            true => method.to_string(),
            false => "unknown".to_string(),
        };
        let outcome = match outcome {
            Ok(()) => "success".to_string(),
            Err(e) => e.code.clone(),
        };
        self.calls.get_or_create(&vec![("method", method.clone()), ("outcome", outcome)]).inc();
        self.latency.get_or_create(&vec![("method", method)]).observe(seconds);
    }

    /// The figures of a known `method`, remembered for its next calls; `None` for a method the
    /// datamodel does not have (never remembered, so a client cannot grow the map).
    fn learn(&self, method: &str) -> Option<MethodFigures> {
        if !is_known(method) {
            return None;
        }
        let labels = vec![("method", method.to_string()), ("outcome", "success".to_string())];
        let figures = MethodFigures {
            successes: self.calls.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&vec![("method", method.to_string())]).clone(),
        };
        self.known.write().expect("metrics lock").insert(method.to_string(), figures.clone());
        Some(figures)
    }

    /// The text of a scrape, with the gauges read from `node` now.
    fn scrape(&self, node: &Node, connections: usize) -> String {
        let state = node.ledger.snapshot();
        self.log_entries.set(state.seq as i64);
        let log_bytes = node
            .ledger
            .dir()
            .and_then(|dir| std::fs::metadata(crate::store::database_path(dir)).ok())
            .map_or(0, |m| m.len() as i64);
        self.log_bytes.set(log_bytes);
        let stats = node.ledger.checkpoint_stats();
        let since_us = match stats.last_at_us.load(Ordering::Relaxed) {
            0 => node.opened_at_us,
            at => at,
        };
        self.checkpoint_age.set((node.ledger.clock().now_us() - since_us).max(0) as f64 / 1e6);
        self.sessions.set(state.table(class::SESSION.0).objects.len() as i64);
        self.waiters.set(self.parked.load(Ordering::Relaxed));
        self.tasks.clear();
        for object in state.table(class::TASK.0).objects.values() {
            let status = object.fields[f::task::STATUS.index].as_str().unwrap_or("").to_string();
            self.tasks.get_or_create(&vec![("status", status)]).inc();
        }
        self.connections.set(connections as i64);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Counts a parked waiter while it lives.
pub struct Parked(Arc<AtomicI64>);

impl Parked {
    pub fn new(node: &Node) -> Parked {
        node.metrics.parked.fetch_add(1, Ordering::Relaxed);
        Parked(node.metrics.parked.clone())
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `GET /metrics`; `connections` is what the transport has open (the adapter knows it).
pub async fn serve(node: &Arc<Node>, req: DiskRequest, connections: usize) -> TransferOutcome {
    let role = if req.origin.unix {
        "pool-admin".to_string()
    } else if let Some(session) = req.param("session_id") {
        match node.sessions.check(&node.ledger.snapshot(), session) {
            Ok(caller) => caller.role,
            Err(_) => return TransferOutcome::Unauthorised,
        }
    } else if let Some((user, password)) = &req.basic {
        let account = node.ledger.snapshot().users.get(user).cloned();
        let (user, password) = (user.clone(), password.clone());
        let checked = tokio::task::spawn_blocking(move || {
            account.filter(|a| auth::verify_password(&password, &a.password_hash)).map(|a| a.role)
        })
        .await;
        match checked {
            Ok(Some(role)) => role,
            _ => {
                tracing::info!(%user, "metrics: Basic credentials refused");
                return TransferOutcome::Unauthorised;
            }
        }
    } else {
        return TransferOutcome::Unauthorised;
    };
    let roles = auth::roles_at_least("read-only");
    if !roles.contains(&role.as_str()) {
        return TransferOutcome::Forbidden(super::permission_denied(PERMISSION, &roles));
    }
    TransferOutcome::Page { content_type: CONTENT_TYPE, body: node.metrics.scrape(node, connections).into_bytes() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scraped(metrics: &Metrics) -> String {
        let mut text = String::new();
        encode(&mut text, &metrics.registry).expect("encode");
        text
    }

    #[test]
    fn calls_are_counted_by_method_as_called_and_outcome_and_unknown_methods_share_one_label() {
        let metrics = Metrics::default();
        for method in ["VM.get_record", "VM.get_record", "VM_get_record", "Async.VM.clone", "no.such_method"] {
            metrics.record_call(method, Ok(()), 0.001);
        }
        metrics.record_call("VM.get_record", Err(&ApiError::handle_invalid("VM", "OpaqueRef:x")), 0.001);
        metrics.record_call("made.up", Ok(()), 0.001);
        let text = scraped(&metrics);
        let line = |labels: &str| {
            let prefix = format!("xenledger_calls_total{{{labels}}} ");
            text.lines().find_map(|l| l.strip_prefix(&prefix)).map(str::to_string)
        };
        assert_eq!(line(r#"method="VM.get_record",outcome="success""#).as_deref(), Some("2"), "{text}");
        assert_eq!(line(r#"method="VM_get_record",outcome="success""#).as_deref(), Some("1"));
        assert_eq!(line(r#"method="Async.VM.clone",outcome="success""#).as_deref(), Some("1"));
        assert_eq!(line(r#"method="VM.get_record",outcome="HANDLE_INVALID""#).as_deref(), Some("1"));
        assert_eq!(line(r#"method="unknown",outcome="success""#).as_deref(), Some("2"));
        assert!(text.contains(r#"xenledger_call_seconds_count{method="VM.get_record"} 3"#), "{text}");
        assert_eq!(metrics.known.read().unwrap().len(), 3, "only methods of the datamodel are remembered");
    }
}
