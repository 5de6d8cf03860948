//! Writes of one HTTP/2 connection gathered into few TLS records and system calls.
//!
//! `h2` runs each connection on its own task, which encodes the frames of every
//! stream that is ready and flushes them. With many pushes in flight, the
//! senders' tasks hand it requests one by one, so it woke for nearly each and
//! wrote each in a TLS record and a `writev` of its own (measured: 0.7 `writev`
//! per APNs request, a quarter of the sender's CPU in the kernel's TCP path).
//! [`Coalescing`] holds what the connection writes and, the first time it is
//! asked to flush, lets the other tasks run once before writing it all out:
//! every request handed over meanwhile goes in the same record and call. The
//! cost is one turn of the scheduler, microseconds, before a request leaves.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Held bytes beyond which a write first passes the held ones on, so that the
/// buffer stays bounded whatever the writer does.
const HIGH_WATER: usize = 64 * 1024;

/// An [`AsyncWrite`] that holds writes until a flush and defers the first
/// flush of each batch by one turn of the scheduler; reads pass through.
pub(crate) struct Coalescing<T> {
    io: T,
    held: Vec<u8>,
    /// How much of `held` has gone to `io`.
    written: usize,
    /// The current batch's flush was deferred once already.
    deferred: bool,
}

impl<T> Coalescing<T> {
    pub(crate) fn new(io: T) -> Self {
        Self { io, held: Vec::new(), written: 0, deferred: false }
    }
}

impl<T: AsyncWrite + Unpin> Coalescing<T> {
    /// Writes out everything held.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.held.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.held[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.held.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalescing<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.len() >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        let mut taken = 0;
        for slice in data {
            this.held.extend_from_slice(slice);
            taken += slice.len();
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.held.is_empty() && !this.deferred {
            // Woken at once: the scheduler runs the task again after the others
            // that are ready (tokio requeues a task woken while it ran at the back).
            this.deferred = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        ready!(this.poll_drain(cx))?;
        this.deferred = false;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalescing<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

#[cfg(test)]
#[path = "coalesce_tests.rs"]
mod tests;
