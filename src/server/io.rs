//! A byte-stream wrapper that fails a write the client has not let through for too long.
//!
//! hyper bounds reading the request head, and `http.rs` bounds reading the body, but nothing
//! bounds writing the reply: a client that stops reading (or vanished without a FIN) would hold
//! its connection slot until the kernel gives up on retransmissions, many minutes later. Only a
//! write that stays blocked counts, so a long-polling `event.from`, which writes nothing while it
//! waits, is not affected.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `T` with every write, flush and shutdown bounded by `stall_timeout` of no progress.
pub(super) struct WriteDeadline<T> {
    inner: T,
    stall_timeout: Duration,
    /// Running while the last write attempt returned `Pending`; cleared by any progress.
    stall: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    pub(super) fn new(inner: T, stall_timeout: Duration) -> Self {
        WriteDeadline { inner, stall_timeout, stall: None }
    }

    /// Passes a ready result through and resets the stall timer; on `Pending`, starts the timer
    /// if needed and turns its expiry into `TimedOut`.
    fn bound<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stall = None;
            return poll;
        }
        let stall_timeout = self.stall_timeout;
        let stall = self.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall_timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stall = None;
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "client stopped reading the reply")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.bound(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.bound(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.bound(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.bound(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn a_write_nobody_reads_times_out() {
        // A duplex pipe with a 16-byte buffer and nobody reading the other end.
        let (near, _far) = tokio::io::duplex(16);
        let mut guarded = WriteDeadline::new(near, Duration::from_millis(200));
        let err = guarded.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn progress_resets_the_timer() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut guarded = WriteDeadline::new(near, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            // Reads slowly, each gap shorter than the stall timeout but all of them longer.
            let mut chunk = [0u8; 16];
            while sink.len() < 64 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let n = tokio::io::AsyncReadExt::read(&mut far, &mut chunk).await.unwrap();
                sink.extend_from_slice(&chunk[..n]);
            }
            sink.len()
        });
        guarded.write_all(&[0u8; 64]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 64);
    }
}
