//! xenledger: a XenAPI-compatible management server on an event-sourced engine.
//!
//! Modules, lower ones never importing higher ones (`tests/tidy.rs` checks the order against
//! ARCHITECTURE.md's code map): `value`, `clock` and `entropy` (the seams for time and
//! randomness), `error`, `schema` (the datamodel), `auth` (passwords, roles, session keys) and `wire` (the XML-RPC and JSON-RPC codecs) →
//! `entry` (log records) → `engine` (pure: implicit and explicit messages, the fold) → `store` (the
//! only module that touches redb; the `Log` trait) → `datadir`, `vault` (the key that seals secret
//! values), `host` (the host seam) → `ledger` (the writer and group commit) → `node`
//! (sessions, RBAC, events, tasks, read/write routing) → `server` (HTTPS/HTTP/unix) → `rpc` →
//! `remote` → `xe` (the xe command line, a client of the API) → `cli`. See ARCHITECTURE.md for the request path and the invariants.

pub mod value;
pub mod error;
pub mod clock;
pub mod entropy;
pub mod schema;
pub mod auth;
pub mod entry;
pub mod engine;
pub mod store;
pub mod datadir;
pub mod vault;
pub mod host;
pub mod ledger;
pub mod node;
pub mod wire;
pub mod server;
pub mod rpc;
pub mod remote;
pub mod xe;
pub mod cli;
