//! One HTTP request in, one HTTP response out: routing, the body limit and the fixed pages.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::transfer::{ChannelBody, RequestBody, ResponseBody, TransferMethod, TransferRequest, TransferResponse};
use super::{Origin, Protocol, RpcHandler, RpcRequest, RpcResponse, BODY_READ_TIMEOUT, BODY_SIZE_BYTES_MAX};

pub(super) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

const INDEX_PAGE: &str = "xenledger: a XenAPI-compatible management server.\n\
    Talk to it with XML-RPC (POST /) or JSON-RPC (POST /jsonrpc).\n";

/// Routes one request. Never fails: every problem becomes an HTTP response.
pub(super) async fn respond(req: Request<Incoming>, origin: Origin, handler: Arc<dyn RpcHandler>) -> Response<Body> {
    match *req.method() {
        Method::POST => rpc(req, origin, handler.as_ref()).await,
        Method::OPTIONS => preflight(),
        // xapi's `website_https_only`: its web page is not served over plain HTTP (403);
        // the local socket and HTTPS get it.
        Method::GET | Method::HEAD if req.uri().path() == "/" && matches!(origin, Origin::Tcp { tls: false, .. }) => {
            error_page(StatusCode::FORBIDDEN, "Access to the requested resource is forbidden.")
        }
        // The handler's page, else a short text one.
        Method::GET | Method::HEAD if req.uri().path() == "/" => {
            let method = if req.method() == Method::HEAD { TransferMethod::Head } else { TransferMethod::Get };
            let page = transfer(req, method, origin, handler.as_ref()).await;
            if page.status() == StatusCode::NOT_FOUND {
                index()
            } else {
                page
            }
        }
        Method::GET => transfer(req, TransferMethod::Get, origin, handler.as_ref()).await,
        Method::HEAD => transfer(req, TransferMethod::Head, origin, handler.as_ref()).await,
        Method::PUT => transfer(req, TransferMethod::Put, origin, handler.as_ref()).await,
        _ => {
            let mut response =
                error_page(StatusCode::METHOD_NOT_ALLOWED, "Only POST (RPC), PUT, OPTIONS and GET are served.");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST, PUT, OPTIONS"));
            response
        }
    }
}

/// A `GET` or `PUT` other than `GET /`: the handler's, with the body unread.
async fn transfer(
    req: Request<Incoming>,
    method: TransferMethod,
    origin: Origin,
    handler: &dyn RpcHandler,
) -> Response<Body> {
    if unsupported_coding(&req) {
        return error_page(StatusCode::NOT_IMPLEMENTED, "The request's transfer coding is not supported.");
    }
    let (parts, body) = req.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let request = TransferRequest {
        method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        origin,
        body: RequestBody::new(body),
    };
    let reply = handler.transfer(request).await;
    transfer_response(reply)
}

fn transfer_response(reply: TransferResponse) -> Response<Body> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(body_of(reply.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    response
}

/// The codec for a POST path. Like xapi's router this matches a plain string prefix, so
/// `/jsonrpc`, `/jsonrpc/x` and `/jsonrpcx` are all JSON-RPC. Leading slashes are collapsed
/// first, unlike xapi, for the Go SDK's `//jsonrpc`.
pub(super) fn protocol_for_path(path: &str) -> Protocol {
    if path.trim_start_matches('/').starts_with("jsonrpc") {
        Protocol::JsonRpc
    } else {
        Protocol::XmlRpc
    }
}

/// A `Transfer-Encoding` other than `chunked` alone: RFC 9112 §6.1 says 501.
fn unsupported_coding(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .any(|v| v.to_str().map_or(true, |v| v.split(',').map(str::trim).any(|c| !c.eq_ignore_ascii_case("chunked"))))
}

async fn rpc(req: Request<Incoming>, origin: Origin, handler: &dyn RpcHandler) -> Response<Body> {
    if unsupported_coding(&req) {
        return error_page(StatusCode::NOT_IMPLEMENTED, "The request's transfer coding is not supported.");
    }
    let close = req
        .headers()
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let protocol = protocol_for_path(req.uri().path());
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, read_body(req.into_body())).await {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => {
            tracing::warn!(?origin, "request body over {BODY_SIZE_BYTES_MAX} bytes refused");
            return error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The request body exceeds {BODY_SIZE_BYTES_MAX} bytes."),
            );
        }
        Ok(Err(BodyError::Read(error))) => {
            tracing::debug!(?origin, %error, "request body unreadable");
            return error_page(StatusCode::BAD_REQUEST, "The request body could not be read.");
        }
        Err(_elapsed) => {
            tracing::debug!(?origin, "request body not received in time");
            return error_page(StatusCode::REQUEST_TIMEOUT, "Timed out waiting for the request body.");
        }
    };
    let reply = handler.handle(RpcRequest { protocol, body, origin, headers }).await;
    let mut response = rpc_response(reply);
    if !close {
        // As xapi's replies say it.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    response
}

enum BodyError {
    TooLarge,
    Read(hyper::Error),
}

/// Reads the whole body, refusing it before reading anything if its `Content-Length` is over
/// the limit, and as soon as the running total is for a chunked body.
async fn read_body(mut body: Incoming) -> Result<Bytes, BodyError> {
    // The lower bound is the Content-Length when there is one, and 0 for a chunked body.
    let size_bytes_min = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    if size_bytes_min > BODY_SIZE_BYTES_MAX {
        return Err(BodyError::TooLarge);
    }
    let mut buffer = BytesMut::with_capacity(size_bytes_min);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > BODY_SIZE_BYTES_MAX {
                return Err(BodyError::TooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

fn body_of(body: ResponseBody) -> Body {
    match body {
        ResponseBody::Bytes(bytes) => full(bytes),
        ResponseBody::Stream { len, pieces } => ChannelBody { pieces, remaining: len }.boxed_unsync(),
    }
}

fn rpc_response(reply: RpcResponse) -> Response<Body> {
    let status = StatusCode::from_u16(reply.status).unwrap_or_else(|_| {
        tracing::error!(status = reply.status, "handler returned an invalid HTTP status");
        StatusCode::INTERNAL_SERVER_ERROR
    });
    let mut response = Response::new(body_of(reply.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(reply.content_type).unwrap_or_else(|_| {
        tracing::error!(reply.content_type, "handler returned an invalid content type");
        HeaderValue::from_static("application/octet-stream")
    });
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("X-Requested-With"));
    response
}

fn preflight() -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("X-Requested-With, Content-Type"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    response
}

fn index() -> Response<Body> {
    let mut response = Response::new(full(Bytes::from_static(INDEX_PAGE.as_bytes())));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// A short HTML error page in xapi's style (`response_error_html`). The connection is closed
/// after it, because part of the request may still be unread.
fn error_page(status: StatusCode, message: &str) -> Response<Body> {
    let title = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
    let html = format!("<html><body><h1>HTTP {} {title}</h1>{message}</body></html>", status.as_u16());
    let mut response = Response::new(full(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_follows_xapi_longest_prefix() {
        for path in ["/", "/RPC2", "/xmlrpc", "/json", "/anything", "/json-rpc", "/x/jsonrpc"] {
            assert_eq!(protocol_for_path(path), Protocol::XmlRpc, "{path}");
        }
        for path in ["/jsonrpc", "/jsonrpc/", "/jsonrpc/x", "/jsonrpcx", "//jsonrpc"] {
            assert_eq!(protocol_for_path(path), Protocol::JsonRpc, "{path}");
        }
    }

    #[test]
    fn error_page_closes_the_connection() {
        let response = error_page(StatusCode::INTERNAL_SERVER_ERROR, "too large");
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html");
    }
}
