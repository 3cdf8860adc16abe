//! `GET /xenledger/backup`: an online, consistent copy of the data dir's log, so that an auditor
//! runs `xenledger-replay` without stopping the server (redb locks the live file for its one
//! writer; a second process cannot open it, and redb's multi-process modes cost every commit a
//! second flush). The copy is one read snapshot of the store written to a new database file in the
//! data dir, opened, unlinked and streamed: a `xenledger.redb` for any directory `xenledger-replay`
//! is pointed at.
//!
//! Credentials as for the disk transfers (`session_id`, HTTP Basic, the local socket). The copy
//! holds the whole history, so it needs what xapi asks for its database dump
//! (`/pool/xmldbdump`, permission `http/get_pool_xml_db_sync`): pool-admin. Secrets in the copy
//! are sealed under the data dir's key, which is not in it; sessions are stored by digest.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::transfer::{authenticate, end_temporary, DiskRequest, TransferOutcome};
use super::Node;
use crate::auth;
use crate::error::ApiError;

/// The permission xapi checks for its database dump.
pub const PERMISSION: &str = "http/get_pool_xml_db_sync";
/// Bytes per streamed piece.
const PIECE_BYTES: usize = 1 << 20;

pub async fn backup(node: &Arc<Node>, req: DiskRequest) -> TransferOutcome {
    let (caller, temporary) = match authenticate(node, &req).await {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    let roles = auth::roles_at_least("pool-admin");
    if !caller.superuser && !roles.contains(&caller.role.as_str()) {
        end_temporary(node, &caller, temporary).await;
        return TransferOutcome::Forbidden(super::permission_denied(PERMISSION, &roles));
    }
    let copied = match node.ledger.dir() {
        None => Err(ApiError::internal("this server keeps its log in memory: there is no file to copy")),
        Some(dir) => {
            let (ledger_store, dir) = (node.ledger.store().clone(), dir.to_path_buf());
            let made = tokio::task::spawn_blocking(move || -> Result<(std::fs::File, u64), String> {
                let mut nonce = [0u8; 8];
                crate::entropy::fill(&mut nonce);
                let path = dir.join(format!("backup-{}.redb.partial", u64::from_le_bytes(nonce)));
                let copied = ledger_store.backup_to(&path).map_err(|e| e.to_string());
                // Opened, then unlinked: nothing is left behind, however the download ends.
                let file = copied.and_then(|seq| {
                    std::fs::File::open(&path).map(|f| (f, seq)).map_err(|e| format!("{}: {e}", path.display()))
                });
                let _ = std::fs::remove_file(&path);
                file
            });
            match made.await {
                Ok(Ok(made)) => Ok(made),
                Ok(Err(e)) => Err(ApiError::internal(e)),
                Err(e) => Err(ApiError::internal(e.to_string())),
            }
        }
    };
    end_temporary(node, &caller, temporary).await;
    let (file, seq) = match copied {
        Ok(made) => made,
        Err(error) => {
            tracing::warn!("backup: {error}");
            return TransferOutcome::Failed { status: 500, task: None, error };
        }
    };
    tracing::info!(user = %caller.user, seq, "backup of the log served");
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (sender, pieces) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut offset = 0u64;
        while offset < len {
            let mut buf = vec![0u8; (len - offset).min(PIECE_BYTES as u64) as usize];
            if let Err(e) = file.read_exact_at(&mut buf, offset) {
                let _ = sender.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                return;
            }
            offset += buf.len() as u64;
            if sender.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return;
            }
        }
    });
    TransferOutcome::Download { len, filename: format!("xenledger-{seq}.redb"), pieces }
}
