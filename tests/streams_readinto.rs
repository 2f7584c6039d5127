//! `StreamReader::readinto`: reads into the caller's buffer (partial reads, EOF, errors,
//! cancellation, the limit's back-pressure), and `futures::io::AsyncRead` on top of it.

#[path = "net_support/mod.rs"]
mod net_support;

use std::io::Write;

use asyncio::streams::{open_connection, open_connection_with, StreamReader, StreamWriter};
use asyncio::{ConnectOptions, ErrorKind};
use futures::FutureExt;
use net_support::{run, spin, wait_until, watchdog};

/// Streams over one end of a Unix socket pair (asyncio's `sock=`), and the other end.
async fn socket_streams() -> (StreamReader, StreamWriter, std::os::unix::net::UnixStream) {
    let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let (reader, writer) = open_connection_with(
        None,
        None,
        asyncio::streams::DEFAULT_LIMIT,
        ConnectOptions::new().sock(ours),
    )
    .await
    .unwrap();
    (reader, writer, peer)
}

#[test]
fn partial_reads_then_eof_is_zero() {
    watchdog(|| {
        run(|lp| async move {
            let reader = StreamReader::with_limit(&lp, 1024).unwrap();
            reader.feed_data(b"hello ");
            reader.feed_data(b"world");
            let mut small = [0u8; 4];
            assert_eq!(reader.readinto(&mut small).await.unwrap(), 4);
            assert_eq!(&small, b"hell");
            // An empty buffer reads nothing and consumes nothing.
            assert_eq!(reader.readinto(&mut []).await.unwrap(), 0);
            assert_eq!(reader.buffered(), 7);
            // A larger buffer gets what is buffered, not more.
            let mut big = [0u8; 100];
            assert_eq!(reader.readinto(&mut big).await.unwrap(), 7);
            assert_eq!(&big[..7], b"o world");
            reader.feed_data(b"tail");
            reader.feed_eof();
            assert!(!reader.at_eof());
            assert_eq!(reader.readinto(&mut big).await.unwrap(), 4);
            assert_eq!(&big[..4], b"tail");
            assert!(reader.at_eof());
            assert_eq!(reader.readinto(&mut big).await.unwrap(), 0);
            assert_eq!(reader.readinto(&mut big).await.unwrap(), 0);
        })
    });
}

#[test]
fn waits_for_data_and_a_dropped_read_consumes_nothing() {
    watchdog(|| {
        run(|lp| async move {
            let reader = std::rc::Rc::new(StreamReader::with_limit(&lp, 1024).unwrap());
            // Cancelled while waiting: nothing is consumed or written.
            let mut buf = [9u8; 8];
            assert!(reader.readinto(&mut buf).now_or_never().is_none());
            assert_eq!(buf, [9u8; 8]);
            // A waiting reader is woken by data.
            let r2 = reader.clone();
            let task = lp
                .create_task(async move {
                    let mut buf = [0u8; 8];
                    let n = r2.readinto(&mut buf).await.unwrap();
                    buf[..n].to_vec()
                })
                .unwrap();
            spin(3).await;
            assert!(!task.done(), "readinto waits while the buffer is empty");
            reader.feed_data(b"abc");
            assert_eq!(task.await.unwrap(), b"abc");
            assert_eq!(reader.buffered(), 0);
        })
    });
}

#[test]
fn the_connection_error_is_reported() {
    watchdog(|| {
        run(|_lp| async move {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let (mut reader, _writer) = open_connection("127.0.0.1", port).await.unwrap();
            let (peer, _) = listener.accept().unwrap();
            let sock = socket2::Socket::from(peer);
            sock.set_linger(Some(std::time::Duration::ZERO)).unwrap();
            drop(sock); // RST
            let mut buf = [0u8; 16];
            let err = reader.readinto(&mut buf).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io);
            assert_eq!(
                err.io_error_kind(),
                Some(std::io::ErrorKind::ConnectionReset)
            );
            // Reported again, even for an empty buffer (as `read(0)` does).
            let again = reader.readinto(&mut []).await.unwrap_err();
            assert_eq!(again.kind(), ErrorKind::Io);
            // The AsyncRead side gives the same error as an io::Error.
            let io = futures::io::AsyncReadExt::read(&mut reader, &mut buf)
                .await
                .unwrap_err();
            assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
        })
    });
}

/// The peer sends far more than twice the limit: the transport pauses, and small `readinto`
/// calls that bring the buffer back under the limit resume it, so every byte arrives. (Were it
/// never resumed, the loop would wait forever and the watchdog would fail the test.)
#[test]
fn draining_under_the_limit_resumes_a_paused_transport() {
    watchdog(|| {
        run(|_lp| async move {
            const TOTAL: usize = 4 << 20;
            const LIMIT: usize = 1024;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let (reader, _writer) =
                open_connection_with(Some("127.0.0.1"), Some(port), LIMIT, ConnectOptions::new())
                    .await
                    .unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            let sender = std::thread::spawn(move || {
                let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
                peer.write_all(&data).unwrap();
            });
            let transport = reader.transport().unwrap();
            wait_until("transport paused", || !transport.is_reading()).await;
            assert!(reader.buffered() > 2 * LIMIT);
            let mut buf = [0u8; 300];
            let mut got = 0usize;
            let mut resumed = false;
            loop {
                let n = reader.readinto(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                assert!(buf[..n]
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == ((got + i) % 251) as u8));
                got += n;
                if reader.buffered() <= LIMIT && !transport.is_closing() {
                    // asyncio resumes as soon as the buffer is back at or under the limit,
                    // not only when a read finds it empty.
                    assert!(
                        transport.is_reading(),
                        "resumed at {} bytes",
                        reader.buffered()
                    );
                    resumed = true;
                }
            }
            assert!(resumed, "readinto resumed the paused transport");
            assert_eq!(got, TOTAL);
            sender.join().unwrap();
        })
    });
}

/// On a socket, `readinto` with an empty buffer reads the socket straight into the caller's
/// buffer, and the other reads go through the stream's buffer: mixed, in any order, with the
/// peer's writes cut at odd sizes, every byte arrives once and in order.
#[test]
fn socket_reads_mix_the_direct_and_buffered_paths_in_order() {
    watchdog(|| {
        run(|_lp| async move {
            const TOTAL: usize = 3 << 20;
            let (reader, _writer, mut peer) = socket_streams().await;
            let sender = std::thread::spawn(move || {
                let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
                let mut at = 0;
                let mut cut = 1usize;
                while at < TOTAL {
                    cut = (cut * 7 + 13) % 70_000 + 1;
                    let end = (at + cut).min(TOTAL);
                    peer.write_all(&data[at..end]).unwrap();
                    at = end;
                }
            });
            let mut got = Vec::with_capacity(TOTAL);
            let mut big = vec![0u8; 64 * 1024];
            let mut small = [0u8; 7];
            let mut step = 0usize;
            loop {
                step += 1;
                let chunk = match step % 4 {
                    0 => {
                        let n = reader.readinto(&mut big).await.unwrap();
                        big[..n].to_vec()
                    }
                    1 => {
                        let n = reader.readinto(&mut small).await.unwrap();
                        small[..n].to_vec()
                    }
                    2 => reader.read(1000).await.unwrap(),
                    _ => match reader.readexactly(3).await {
                        Ok(v) => v,
                        Err(e) => asyncio::streams::IncompleteReadError::of(&e)
                            .map(|i| i.partial.clone())
                            .expect("only EOF cuts readexactly short"),
                    },
                };
                if chunk.is_empty() && reader.at_eof() {
                    break;
                }
                got.extend_from_slice(&chunk);
            }
            sender.join().unwrap();
            assert_eq!(got.len(), TOTAL);
            assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        })
    });
}

/// Once the transport's protocol is replaced (`set_protocol`), the new protocol receives the
/// data: a stream reader waiting with an empty buffer does not read the socket past it.
#[test]
fn after_set_protocol_the_reader_leaves_the_socket_to_the_new_protocol() {
    watchdog(|| {
        run(|_lp| async move {
            let (reader, _writer, mut peer) = socket_streams().await;
            let transport = reader.transport().unwrap();
            let recorder = net_support::Recorder::default();
            transport.set_protocol(std::rc::Rc::new(std::cell::RefCell::new(recorder.clone())));
            peer.write_all(b"hello").unwrap();
            // The bytes are in the socket: a reader allowed to read it would take them now.
            let mut buf = [0u8; 16];
            assert!(reader.readinto(&mut buf).now_or_never().is_none());
            wait_until("the new protocol got the bytes", || recorder.len() == 5).await;
            assert_eq!(recorder.seen.borrow().data, b"hello");
            assert_eq!(reader.buffered(), 0);
        })
    });
}

/// A reset met by a `readinto` that reads the socket itself is the read's error at once, as
/// the transport's own read reports it (and CPython), never a clean EOF first: the kernel
/// reports `ECONNRESET` once and then EOF, so a transport read queued in the same iteration
/// must not turn it into `eof_received`.
#[test]
fn a_reset_met_by_a_direct_read_is_an_error_not_eof() {
    watchdog(|| {
        run(|lp| async move {
            let (reader, writer, peer) = socket_streams().await;
            // Bytes the peer never reads: closing it then resets the connection.
            writer.write(b"never read").unwrap();
            let reader = std::rc::Rc::new(reader);
            let r2 = reader.clone();
            let task = lp
                .create_task(async move {
                    let mut buf = [0u8; 64];
                    let first = r2.readinto(&mut buf).await;
                    let second = r2.readinto(&mut buf).await;
                    (first, second)
                })
                .unwrap();
            spin(3).await;
            assert!(!task.done(), "the read waits for data");
            drop(peer);
            let (first, second) = task.await.unwrap();
            for (n, got) in [first, second].into_iter().enumerate() {
                let err = got.expect_err("a reset, not EOF");
                assert_eq!(
                    err.io_error_kind(),
                    Some(std::io::ErrorKind::ConnectionReset),
                    "read {n}: {err}"
                );
            }
        })
    });
}

/// A small `readinto` on a socket reads what the socket holds through the loop's read
/// buffer: it returns what fits and the stream keeps the rest, in order, then EOF.
#[test]
fn a_small_read_of_the_socket_buffers_the_rest() {
    watchdog(|| {
        run(|_lp| async move {
            let (reader, _writer, mut peer) = socket_streams().await;
            peer.write_all(b"hello world").unwrap();
            let mut buf = [0u8; 3];
            assert_eq!(reader.readinto(&mut buf).await.unwrap(), 3);
            assert_eq!(&buf, b"hel");
            assert_eq!(reader.buffered(), 8, "the rest of what the socket held");
            drop(peer);
            let mut rest = Vec::new();
            loop {
                let n = reader.readinto(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&buf[..n]);
            }
            assert_eq!(rest, b"lo world");
            assert!(reader.at_eof());
        })
    });
}

/// What a small `readinto` buffers counts against the limit: past twice the limit the
/// transport pauses, and reading on resumes it until every byte has arrived.
#[test]
fn a_small_read_past_twice_the_limit_pauses_the_transport() {
    watchdog(|| {
        run(|_lp| async move {
            const LIMIT: usize = 16;
            let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
            let (reader, _writer) =
                open_connection_with(None, None, LIMIT, ConnectOptions::new().sock(ours))
                    .await
                    .unwrap();
            let data: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
            peer.write_all(&data).unwrap();
            let transport = reader.transport().unwrap();
            let mut buf = [0u8; 3];
            assert_eq!(reader.readinto(&mut buf).await.unwrap(), 3);
            assert_eq!(reader.buffered(), 997);
            assert!(!transport.is_reading(), "paused past twice the limit");
            let mut got = buf.to_vec();
            drop(peer);
            loop {
                let n = reader.readinto(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, data);
        })
    });
}

/// A read that does not fill its buffer proves the socket empty, so the next read waits for
/// readiness without asking the kernel again. Data that comes after it must still wake that
/// read: written while the reader waits, and written between two reads, for small reads
/// (through the loop's read buffer) and large ones (straight into the caller's buffer).
#[test]
fn data_after_a_short_read_wakes_the_next_read() {
    watchdog(|| {
        run(|lp| async move {
            let (reader, _writer, peer) = socket_streams().await;
            let reader = std::rc::Rc::new(reader);
            let peer = std::rc::Rc::new(std::cell::RefCell::new(peer));
            for size in [5usize, 64 * 1024] {
                for round in 0..20u8 {
                    let msg = [round; 4];
                    if round % 2 == 0 {
                        // The reader waits first (the fd is known empty), then data comes.
                        let r2 = reader.clone();
                        let task = lp
                            .create_task(async move {
                                let mut buf = vec![0u8; size];
                                let n = r2.readinto(&mut buf).await.unwrap();
                                buf[..n].to_vec()
                            })
                            .unwrap();
                        spin(2).await;
                        assert!(!task.done());
                        peer.borrow_mut().write_all(&msg).unwrap();
                        assert_eq!(task.await.unwrap(), msg);
                    } else {
                        // Data comes right after the last short read, before the next one.
                        peer.borrow_mut().write_all(&msg).unwrap();
                        let mut buf = vec![0u8; size];
                        let n = reader.readinto(&mut buf).await.unwrap();
                        assert_eq!(&buf[..n], &msg);
                    }
                    assert_eq!(reader.buffered(), 0);
                }
            }
        })
    });
}

/// Sends `data` on `sock` with one descriptor attached (`SCM_RIGHTS`).
fn send_with_fd(sock: &std::os::unix::net::UnixStream, data: &[u8], fd: std::os::fd::RawFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: `CMSG_SPACE` is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    // SAFETY: `msg` points at `iov` and `control`, both alive for the call; the control
    // buffer is `CMSG_SPACE` bytes for one `i32`, so the first header and its data fit.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
        libc::sendmsg(sock.as_raw_fd(), &msg, 0)
    };
    assert_eq!(sent, data.len() as isize);
}

/// A Unix socket's read stops short at a segment that carried descriptors, with bytes still
/// queued: a short read that does not mean the socket is empty. The bytes after it still
/// arrive (the level-triggered registration reports the socket again), for small reads and
/// large ones.
#[test]
fn a_short_read_at_a_kernel_boundary_loses_nothing() {
    use std::os::fd::AsRawFd;
    watchdog(|| {
        run(|_lp| async move {
            let (reader, _writer, mut peer) = socket_streams().await;
            let passed = std::fs::File::open("/dev/null").unwrap();
            for size in [5usize, 64 * 1024] {
                send_with_fd(&peer, b"abc", passed.as_raw_fd());
                peer.write_all(b"def").unwrap();
                let mut buf = vec![0u8; size];
                let mut got = Vec::new();
                while got.len() < 6 {
                    let n = reader.readinto(&mut buf).await.unwrap();
                    assert!(n > 0);
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(got, b"abcdef");
            }
        })
    });
}

/// Counts its polls and never completes.
struct CountPolls(std::rc::Rc<std::cell::Cell<u32>>);

impl std::future::Future for CountPolls {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.0.set(self.0.get() + 1);
        std::task::Poll::Pending
    }
}

/// A small read that waited, then buffers the rest of what it read, does not wake its own
/// task again for nothing: the task's next await is polled once.
#[test]
fn a_small_read_that_buffers_the_rest_does_not_wake_its_task_again() {
    watchdog(|| {
        run(|lp| async move {
            let (reader, _writer, mut peer) = socket_streams().await;
            let polls = std::rc::Rc::new(std::cell::Cell::new(0));
            let p2 = polls.clone();
            let task = lp
                .create_task(async move {
                    let mut buf = [0u8; 3];
                    assert_eq!(reader.readinto(&mut buf).await.unwrap(), 3);
                    CountPolls(p2).await;
                })
                .unwrap();
            spin(3).await;
            peer.write_all(b"hello world").unwrap();
            spin(10).await;
            assert_eq!(polls.get(), 1);
            task.cancel();
        })
    });
}
