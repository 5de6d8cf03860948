use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::{Coalescing, HIGH_WATER};

/// A writer that keeps every write it was given apart, and how often it was flushed.
#[derive(Default)]
struct Recorder {
    writes: Vec<Vec<u8>>,
    flushes: usize,
    shut: bool,
}

impl AsyncWrite for Recorder {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().writes.push(data.to_vec());
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().flushes += 1;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().shut = true;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Recorder {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        buf.put_slice(b"answer");
        Poll::Ready(Ok(()))
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn writes_are_held_until_a_flush_and_then_go_out_in_one_write() {
    let mut io = Coalescing::new(Recorder::default());
    for frame in [&b"HEADERS"[..], b"DATA", b"HEADERS DATA"] {
        io.write_all(frame).await.unwrap();
    }
    assert!(io.io.writes.is_empty(), "nothing written before the flush");
    io.flush().await.unwrap();
    assert_eq!(io.io.writes, vec![b"HEADERSDATAHEADERS DATA".to_vec()]);
    assert_eq!(io.io.flushes, 1);
}

#[test]
fn the_first_flush_of_a_batch_yields_once_then_writes_everything_held() {
    let wakes = Arc::new(Wakes::default());
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut io = Coalescing::new(Recorder::default());
    assert!(Pin::new(&mut io).poll_write(&mut cx, b"one").is_ready());
    assert!(Pin::new(&mut io).poll_flush(&mut cx).is_pending(), "the first flush lets the others run");
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "and asks to run again at once");
    // What another task handed over meanwhile goes out with it.
    assert!(Pin::new(&mut io).poll_write(&mut cx, b"two").is_ready());
    assert!(matches!(Pin::new(&mut io).poll_flush(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(io.io.writes, vec![b"onetwo".to_vec()]);
    // A flush with nothing held neither yields nor writes; the next batch yields again.
    assert!(matches!(Pin::new(&mut io).poll_flush(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(io.io.writes.len(), 1);
    assert!(Pin::new(&mut io).poll_write(&mut cx, b"three").is_ready());
    assert!(Pin::new(&mut io).poll_flush(&mut cx).is_pending());
    assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn what_is_held_stays_bounded_whatever_the_writer_does() {
    let mut io = Coalescing::new(Recorder::default());
    let chunk = vec![7_u8; 1000];
    for _ in 0..(3 * HIGH_WATER / chunk.len()) {
        io.write_all(&chunk).await.unwrap();
        assert!(io.held.len() < HIGH_WATER + chunk.len());
    }
    assert!(io.io.writes.len() >= 2, "passed on without a flush once full");
    io.flush().await.unwrap();
    assert_eq!(io.io.writes.iter().map(Vec::len).sum::<usize>(), 3 * HIGH_WATER / chunk.len() * chunk.len());
}

#[tokio::test]
async fn a_shutdown_writes_out_what_is_held_first_and_reads_pass_through() {
    let mut io = Coalescing::new(Recorder::default());
    io.write_all(b"GOAWAY").await.unwrap();
    io.shutdown().await.unwrap();
    assert_eq!(io.io.writes, vec![b"GOAWAY".to_vec()]);
    assert!(io.io.shut);
    let mut read = [0_u8; 6];
    io.read_exact(&mut read).await.unwrap();
    assert_eq!(&read, b"answer");
}
