//! The RPC front end: turns HTTP bodies into node calls and node replies into HTTP bodies.
//! Translation only; every decision is the node's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::node::{Node, Origin, Reply, TaskHints};
use crate::server::{self, Protocol, RpcHandler, RpcRequest, RpcResponse};
use crate::wire::{jsonrpc, xmlrpc};

pub struct NodeHandler {
    pub node: Arc<Node>,
}

impl RpcHandler for NodeHandler {
    fn handle(&self, req: RpcRequest) -> Pin<Box<dyn Future<Output = RpcResponse> + Send + '_>> {
        Box::pin(async move {
            let origin = match &req.origin {
                server::Origin::Unix => Origin { unix: true, peer: "unix".into() },
                server::Origin::Tcp { peer, .. } => Origin { unix: false, peer: peer.to_string() },
            };
            let hints = TaskHints::from_headers(&req.headers);
            match req.protocol {
                Protocol::XmlRpc => self.xmlrpc(&req.body, &origin, &hints).await,
                Protocol::JsonRpc => self.jsonrpc(&req.body, &origin, &hints).await,
            }
        })
    }
}

impl NodeHandler {
    async fn xmlrpc(&self, body: &[u8], origin: &Origin, hints: &TaskHints) -> RpcResponse {
        let request = match xmlrpc::decode_call(body) {
            Ok(r) => r,
            Err(e) => return malformed(&e.to_string()),
        };
        let body = match self.node.call_with(&request.method, request.params, origin, hints).await {
            Reply::Rpc(result) => xmlrpc::encode_response(&result),
            Reply::Bare(value) => xmlrpc::encode_bare(&value),
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
        RpcResponse {
            status: 200,
            content_type: "application/json",
            body: jsonrpc::encode_response(call.version, &call.id, &result),
        }
    }
}

/// Transport-level failures get HTTP 500 with an HTML body, as xapi's `response_internal_error`.
fn malformed(reason: &str) -> RpcResponse {
    let escaped = reason.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    RpcResponse {
        status: 500,
        content_type: "text/html",
        body: format!("<html><body><h1>HTTP 500 internal server error</h1>{escaped}</body></html>").into_bytes(),
    }
}
