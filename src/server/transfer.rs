//! Requests that are not RPC calls: a `GET` or `PUT` on a path other than `/`, handed to the
//! handler with the body still unread ([`RequestBody`]) and answered with a body that may be
//! streamed ([`ResponseBody`]). xapi serves disk transfers this way (`/import_raw_vdi`,
//! `/export_raw_vdi`); this module knows nothing of them, only of bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::mpsc;

use super::Origin;

/// Longest a transfer waits for the next piece of a request body before it gives up.
pub const CHUNK_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMethod {
    Get,
    Head,
    Put,
}

/// One transfer request as it arrived.
pub struct TransferRequest {
    pub method: TransferMethod,
    pub path: String,
    /// The raw query string (without `?`), not decoded.
    pub query: String,
    /// Request headers in arrival order, names lower case.
    pub headers: Vec<(String, String)>,
    pub origin: Origin,
    pub body: RequestBody,
}

impl TransferRequest {
    /// The value of the first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// A request body, read a piece at a time.
pub struct RequestBody(Incoming);

impl RequestBody {
    pub(super) fn new(body: Incoming) -> RequestBody {
        RequestBody(body)
    }

    /// The body's length when the client declared one (`Content-Length`).
    pub fn declared_len(&self) -> Option<u64> {
        self.0.size_hint().exact()
    }

    /// The next piece of the body, `None` at its end. A client that sends nothing for
    /// [`CHUNK_READ_TIMEOUT`] gets `TimedOut`.
    pub async fn chunk(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            let frame = match tokio::time::timeout(CHUNK_READ_TIMEOUT, self.0.frame()).await {
                Err(_elapsed) => return Some(Err(io::Error::new(io::ErrorKind::TimedOut, "request body stalled"))),
                Ok(None) => return None,
                Ok(Some(Err(e))) => return Some(Err(io::Error::other(e))),
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    return Some(Ok(data));
                }
            }
        }
    }
}

/// The answer to a transfer request.
pub struct TransferResponse {
    pub status: u16,
    /// Extra headers (`Content-Type` among them).
    pub headers: Vec<(&'static str, String)>,
    pub body: ResponseBody,
}

pub enum ResponseBody {
    Bytes(Vec<u8>),
    /// Pieces sent as they come; `len` is sent as `Content-Length` when known. An error ends
    /// the response early (the client sees a short body).
    Stream {
        len: Option<u64>,
        pieces: mpsc::Receiver<io::Result<Bytes>>,
    },
}

impl From<Vec<u8>> for ResponseBody {
    fn from(bytes: Vec<u8>) -> ResponseBody {
        ResponseBody::Bytes(bytes)
    }
}

impl TransferResponse {
    /// A short HTML page, as xapi's `http_svr.ml` error responses.
    pub fn page(status: u16, title: &str, message: &str) -> TransferResponse {
        let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        TransferResponse {
            status,
            headers: vec![("content-type", "text/html".into())],
            body: ResponseBody::Bytes(
                format!("<html><body><h1>HTTP {status} {title}</h1>{escaped}</body></html>").into_bytes(),
            ),
        }
    }
}

/// A streamed response body: the pieces a channel delivers.
pub(super) struct ChannelBody {
    pub pieces: mpsc::Receiver<io::Result<Bytes>>,
    pub remaining: Option<u64>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.pieces.poll_recv(cx) {
            Poll::Ready(Some(Ok(data))) => {
                if let Some(left) = self.remaining.as_mut() {
                    *left = left.saturating_sub(data.len() as u64);
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
