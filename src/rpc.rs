//! The RPC front end: turns HTTP bodies into node calls and node replies into HTTP bodies.
//! Translation only; every decision is the node's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::node::transfer::{self, DiskRequest, TransferOutcome};
use crate::node::{Node, Origin, Reply, TaskHints};
use crate::server::{
    self, Protocol, ResponseBody, RpcHandler, RpcRequest, RpcResponse, TransferMethod, TransferRequest,
    TransferResponse,
};
use crate::value::Value;
use crate::wire::{jsonrpc, xmlrpc};

pub struct NodeHandler {
    pub node: Arc<Node>,
}

fn origin_of(origin: &server::Origin) -> Origin {
    match origin {
        server::Origin::Unix => Origin { unix: true, peer: "unix".into() },
        server::Origin::Tcp { peer, .. } => Origin { unix: false, peer: peer.to_string() },
    }
}

impl RpcHandler for NodeHandler {
    fn transfer(&self, req: TransferRequest) -> Pin<Box<dyn Future<Output = TransferResponse> + Send + '_>> {
        Box::pin(async move {
            if matches!(req.method, TransferMethod::Get | TransferMethod::Head) && req.path == "/" {
                return web_page();
            }
            match (req.method, req.path.trim_end_matches('/')) {
                (TransferMethod::Put, "/import_raw_vdi") => self.import_raw(req).await,
                (TransferMethod::Get | TransferMethod::Head, "/export_raw_vdi") => {
                    let disk = disk_request(&req);
                    http_reply(transfer::export_raw(&self.node, disk).await, "get_export_raw_vdi")
                }
                (TransferMethod::Get | TransferMethod::Head, "/metrics") => {
                    let req = disk_request(&req);
                    let connections = server::open_connections();
                    http_reply(crate::node::metrics::serve(&self.node, req, connections).await, "xenledger_metrics")
                }
                (TransferMethod::Get | TransferMethod::Head, "/xenledger/backup") => {
                    let req = disk_request(&req);
                    http_reply(crate::node::backup::backup(&self.node, req).await, "xenledger_backup")
                }
                _ => TransferResponse::page(404, "not found", "The page does not exist."),
            }
        })
    }

    fn handle(&self, req: RpcRequest) -> Pin<Box<dyn Future<Output = RpcResponse> + Send + '_>> {
        Box::pin(async move {
            let origin = origin_of(&req.origin);
            let hints = TaskHints::from_headers(&req.headers);
            match req.protocol {
                Protocol::XmlRpc => self.xmlrpc(&req.body, &origin, &hints).await,
                Protocol::JsonRpc => self.jsonrpc(&req.body, &origin, &hints).await,
            }
        })
    }
}

impl NodeHandler {
    /// The body is pumped into a channel as it arrives, so the node reads it at its own pace.
    async fn import_raw(&self, req: TransferRequest) -> TransferResponse {
        let disk = disk_request(&req);
        let declared = req.body.declared_len();
        let (sender, pieces) = tokio::sync::mpsc::channel(8);
        let mut body = req.body;
        let pump = tokio::spawn(async move {
            while let Some(piece) = body.chunk().await {
                let failed = piece.is_err();
                if sender.send(piece).await.is_err() || failed {
                    break;
                }
            }
        });
        let outcome = transfer::import_raw(&self.node, disk, pieces, declared).await;
        pump.abort();
        http_reply(outcome, "put_import_raw_vdi")
    }

    async fn xmlrpc(&self, body: &[u8], origin: &Origin, hints: &TaskHints) -> RpcResponse {
        let request = match xmlrpc::decode_call(body) {
            Ok(r) => r,
            Err(e) => return malformed(&e.to_string()),
        };
        let body = match self.node.call_with(&request.method, request.params, origin, hints).await {
            Reply::Rpc(Ok(value)) if is_large(&value) => streamed(move |emit| {
                xmlrpc::encode_response_pieces(&value, PIECE_BYTES, emit);
            }),
            Reply::Rpc(result) => xmlrpc::encode_response(&result).into(),
            Reply::Bare(value) => xmlrpc::encode_bare(&value).into(),
        };
        RpcResponse { status: 200, content_type: "text/xml", body }
    }

    async fn jsonrpc(&self, body: &[u8], origin: &Origin, hints: &TaskHints) -> RpcResponse {
        let call = match jsonrpc::decode_call(body) {
            Ok(r) => r,
            Err(e) => return malformed(&e.to_string()),
        };
        let result = match self.node.call_with(&call.request.method, call.request.params, origin, hints).await {
            Reply::Rpc(result) => result,
            Reply::Bare(value) => Ok(value),
        };
        let body = match result {
            Ok(value) if is_large(&value) => streamed(move |emit| {
                jsonrpc::encode_response_pieces(call.version, &call.id, &value, PIECE_BYTES, emit);
            }),
            result => jsonrpc::encode_response(call.version, &call.id, &result).into(),
        };
        RpcResponse { status: 200, content_type: "application/json", body }
    }
}

/// A reply of at least this many top-level entries (a map of records, a set) is encoded in
/// pieces while it is sent, instead of whole first: bench `scale`, `VM.get_all_records` of
/// 10,000 VMs is a 77 MB XML-RPC body, and building it whole (with the copies a growing buffer
/// makes) held twice that at once.
const STREAMED_ENTRIES_MIN: usize = 1024;
/// The size of a streamed reply's pieces.
const PIECE_BYTES: usize = 256 << 10;
/// Pieces encoded ahead of the connection: the encoder waits beyond them.
const PIECES_IN_FLIGHT: usize = 4;

fn is_large(value: &Value) -> bool {
    match value {
        Value::Map(entries) => entries.len() >= STREAMED_ENTRIES_MIN,
        Value::Set(items) => items.len() >= STREAMED_ENTRIES_MIN,
        _ => false,
    }
}

/// A body whose pieces `encode` makes on a blocking thread, each sent as soon as it is made; a
/// connection that goes away stops the encoding at the next piece.
fn streamed(encode: impl FnOnce(&mut dyn FnMut(String) -> bool) + Send + 'static) -> ResponseBody {
    let (to, pieces) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        encode(&mut |piece| to.blocking_send(Ok(bytes::Bytes::from(piece))).is_ok());
    });
    ResponseBody::Stream { len: None, pieces }
}

/// Transport-level failures get HTTP 500 with an HTML body, as xapi's `response_internal_error`.
fn malformed(reason: &str) -> RpcResponse {
    let escaped = reason.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    RpcResponse {
        status: 500,
        content_type: "text/html",
        body: format!("<html><body><h1>HTTP 500 internal server error</h1>{escaped}</body></html>").into_bytes().into(),
    }
}

/// The page at `GET /` (xapi serves its web client there): it logs in and follows the pool,
/// hosts, VMs, SRs and tasks through `event.from` over JSON-RPC. HTTPS and the local socket only
/// (the server refuses plain HTTP, as xapi's `website_https_only`).
fn web_page() -> TransferResponse {
    const PAGE: &str = include_str!("../web/index.html");
    TransferResponse {
        status: 200,
        headers: vec![
            ("content-type", "text/html; charset=utf-8".into()),
            (
                "content-security-policy",
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'".into(),
            ),
            ("x-frame-options", "DENY".into()),
        ],
        body: ResponseBody::Bytes(PAGE.as_bytes().to_vec()),
    }
}

/// Parameters (cookies first, then the query, as xapi's `lookup_param_of_req`) and credentials.
fn disk_request(req: &TransferRequest) -> DiskRequest {
    let mut params: Vec<(String, String)> = Vec::new();
    for cookie in req.headers.iter().filter(|(k, _)| k == "cookie") {
        for pair in cookie.1.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                params.push((k.to_string(), percent_decode(v)));
            }
        }
    }
    for pair in req.query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.push((percent_decode(k), percent_decode(v)));
    }
    let basic = req.header("authorization").and_then(|h| h.strip_prefix("Basic ")).and_then(|b| {
        let decoded = base64_decode(b.trim())?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_string(), password.to_string()))
    });
    DiskRequest { origin: origin_of(&req.origin), params, basic }
}

/// `%XX` escapes and `+` (a space) in a query component.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A transfer's outcome in HTTP, with xapi's statuses and pages (`http_svr.ml`).
fn http_reply(outcome: TransferOutcome, realm: &str) -> TransferResponse {
    match outcome {
        TransferOutcome::Unauthorised => {
            let mut page = TransferResponse::page(401, "unauthorised", "Please check your credentials and retry.");
            page.headers.push(("www-authenticate", format!("Basic realm=\"{realm}\"")));
            page
        }
        TransferOutcome::Forbidden(error) => {
            let message = format!("Access to the requested resource is forbidden. {}", error.to_wire().join(" "));
            TransferResponse::page(403, "forbidden", &message)
        }
        TransferOutcome::Failed { status, task, error } => {
            let title = match status {
                400 => "bad request",
                404 => "not found",
                _ => "internal server error",
            };
            let mut page = TransferResponse::page(status, title, &error.to_wire().join(" "));
            page.headers.extend(task.map(|t| ("task-id", t)));
            page
        }
        TransferOutcome::Imported { task } => TransferResponse {
            status: 200,
            headers: vec![("task-id", task), ("content-type", "application/octet-stream".into())],
            body: ResponseBody::Bytes(Vec::new()),
        },
        TransferOutcome::Page { content_type, body } => TransferResponse {
            status: 200,
            headers: vec![("content-type", content_type.into())],
            body: ResponseBody::Bytes(body),
        },
        TransferOutcome::Download { len, filename, pieces } => TransferResponse {
            status: 200,
            headers: vec![
                ("content-type", "application/octet-stream".into()),
                ("content-disposition", format!("attachment; filename=\"{filename}\"")),
            ],
            body: ResponseBody::Stream { len: Some(len), pieces },
        },
        TransferOutcome::Exporting { task, len, filename, pieces } => TransferResponse {
            status: 200,
            headers: vec![
                ("task-id", task),
                ("content-type", "application/octet-stream".into()),
                ("content-disposition", format!("attachment; filename=\"{filename}\"")),
            ],
            body: ResponseBody::Stream { len: Some(len), pieces },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_basic_credentials_decode() {
        assert_eq!(percent_decode("OpaqueRef%3Aab+c%2"), "OpaqueRef:ab c%2");
        assert_eq!(base64_decode("cm9vdDpzM2NyZXQ=").unwrap(), b"root:s3cret");
        assert_eq!(base64_decode("*"), None);
    }
}
