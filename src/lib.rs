//! xenledger: a XenAPI-compatible management server on an event-sourced engine.
//!
//! Modules, lower ones never importing higher ones:
//! `value`, `error`, `schema` (the datamodel) → `entry` (log records) → `engine` (pure: execute and
//! fold) → `store` (the only module that touches redb) → `writer` (group commit) → `dispatch`
//! (sessions, RBAC, read/write routing) → `wire` (XML-RPC and JSON-RPC codecs) → `server` (HTTPS).
//! See ARCHITECTURE.md for the request path and the invariants.

pub mod value;
pub mod error;
pub mod clock;
pub mod entropy;
pub mod schema;
pub mod entry;
pub mod engine;
pub mod store;
pub mod datadir;
pub mod vault;
pub mod host;
pub mod ledger;
pub mod auth;
pub mod node;
pub mod wire;
pub mod server;
pub mod rpc;
pub mod remote;
pub mod cli;
