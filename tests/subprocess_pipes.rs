//! A `Process`'s stdin through `futures::io::AsyncWrite`: with nothing buffered, `poll_write`
//! writes from the caller's buffer straight to the pipe (no copy into the transport's write
//! buffer) and waits for writability when the pipe is full. Bytes keep their order when
//! `write()` and `write_all` from two clones mix, a dropped `write_all` loses nothing it had
//! reported written, a reader that goes away is `BrokenPipe`; and the `pipesize` option.
//! Every test is bounded by the watchdog; they take turns (one lock).

mod subprocess_support;

use std::cell::RefCell;
use std::future::Future;
use std::io::ErrorKind as IoKind;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use asyncio::streams::{StreamReader, StreamWriter};
use asyncio::subprocess::{create_subprocess_exec, Stdio, SubprocessOptions};
use futures::io::{AsyncWrite, AsyncWriteExt};
use subprocess_support::{cat_options, open_fds, run, serial, spawn_cat, NO_ARGS};

/// A pattern with no short period, so a byte out of place shows.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 7 + i / 251 + seed * 13) as u8)
        .collect()
}

/// Polls `fut` once, from inside a task.
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Reads `reader` to EOF in `chunk`-byte reads, yielding to the loop after each when `slow`.
async fn read_all(reader: StreamReader, chunk: usize, slow: bool) -> Vec<u8> {
    let mut buf = vec![0u8; chunk];
    let mut got = Vec::new();
    loop {
        let n = reader.readinto(&mut buf).await.unwrap();
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..n]);
        if slow {
            asyncio::sleep(0.0).await.unwrap();
        }
    }
}

/// An `AsyncWrite` that records, in `log`, the bytes its writer reported written, in the
/// order the writer took them.
struct Logged {
    writer: StreamWriter,
    log: Rc<RefCell<Vec<u8>>>,
}

impl AsyncWrite for Logged {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.writer).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.log.borrow_mut().extend_from_slice(&buf[..n]);
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_close(cx)
    }
}

#[test]
fn async_write_sends_from_the_callers_buffer_without_copying() {
    serial(|| {
        run(async {
            let data = pattern(1 << 20, 0);
            let (cat, mut stdin, stdout) = spawn_cat().await;
            // Nobody reads yet: the pipe takes what fits and the rest stays with the caller.
            let first =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut stdin).poll_write(cx, &data)))
                    .await;
            let n = match first {
                Poll::Ready(Ok(n)) => n,
                other => panic!("first poll_write: {other:?}"),
            };
            assert!(n > 0 && n < data.len(), "the pipe took {n} bytes");
            assert_eq!(stdin.transport().get_write_buffer_size(), 0);
            // The pipe is full: the next write waits, holding nothing.
            let again = std::future::poll_fn(|cx| {
                Poll::Ready(Pin::new(&mut stdin).poll_write(cx, &data[n..]))
            })
            .await;
            assert!(again.is_pending(), "{again:?}");
            assert_eq!(stdin.transport().get_write_buffer_size(), 0);
            let rest = data[n..].to_vec();
            let write = async move {
                stdin.write_all(&rest).await.unwrap();
                AsyncWriteExt::close(&mut stdin).await.unwrap();
            };
            let ((), got) = futures::future::join(write, read_all(stdout, 64 << 10, false)).await;
            assert!(got == data, "the bytes came back changed");
            assert_eq!(cat.wait().await, 0);
        });
    });
}

#[test]
fn write_and_write_all_from_two_clones_keep_their_order() {
    serial(|| {
        run(async {
            let (cat, stdin, stdout) = spawn_cat().await;
            let log = Rc::new(RefCell::new(Vec::new()));
            // One clone writes with write() (some of it buffered), sizes that leave the buffer
            // partly sent, draining now and then.
            let buffered = {
                let (w, log) = (stdin.clone(), log.clone());
                async move {
                    let sizes = [1, 100_000, 70_000, 300_000, 17, 65_536];
                    for (i, size) in sizes.iter().cycle().take(24).enumerate() {
                        let chunk = pattern(*size, i);
                        log.borrow_mut().extend_from_slice(&chunk);
                        w.write(&chunk).unwrap();
                        if i % 2 == 0 {
                            w.drain().await.unwrap();
                        } else {
                            asyncio::sleep(0.0).await.unwrap();
                        }
                    }
                }
            };
            // The other writes with write_all (straight from its buffer when nothing waits).
            let direct = {
                let mut w = Logged {
                    writer: stdin.clone(),
                    log: log.clone(),
                };
                async move {
                    for i in 0..12 {
                        w.write_all(&pattern(200_000 + i * 1000, 100 + i))
                            .await
                            .unwrap();
                        asyncio::sleep(0.0).await.unwrap();
                    }
                }
            };
            let writers = async move {
                futures::future::join(buffered, direct).await;
                stdin.drain().await.unwrap();
                stdin.close();
            };
            let ((), got) = futures::future::join(writers, read_all(stdout, 64 << 10, true)).await;
            let expected = log.take();
            assert_eq!(got.len(), expected.len());
            assert!(got == expected, "the bytes came back out of order");
            assert_eq!(cat.wait().await, 0);
        });
    });
}

#[test]
fn large_write_all_into_a_slow_cat() {
    serial(|| {
        run(async {
            let data = pattern(8 << 20, 1);
            let (cat, mut stdin, stdout) = spawn_cat().await;
            let to_write = data.clone();
            let write = async move {
                for chunk in to_write.chunks(256 << 10) {
                    stdin.write_all(chunk).await.unwrap();
                    assert_eq!(stdin.transport().get_write_buffer_size(), 0);
                }
                stdin.flush().await.unwrap();
                AsyncWriteExt::close(&mut stdin).await.unwrap();
            };
            let ((), got) = futures::future::join(write, read_all(stdout, 4096, true)).await;
            assert_eq!(got.len(), data.len());
            assert!(got == data, "the bytes came back changed");
            assert_eq!(cat.wait().await, 0);
        });
    });
}

#[test]
fn a_dropped_write_all_loses_nothing_it_reported_written() {
    serial(|| {
        run(async {
            let (cat, stdin, stdout) = spawn_cat().await;
            let log = Rc::new(RefCell::new(Vec::new()));
            let mut w = Logged {
                writer: stdin.clone(),
                log: log.clone(),
            };
            let big = pattern(4 << 20, 2);
            {
                // Nobody reads: the write fills the pipes and waits; then it is dropped.
                let mut fut = w.write_all(&big);
                let mut fut = Pin::new(&mut fut);
                for _ in 0..3 {
                    // 4 MiB cannot fit in the pipes.
                    assert!(poll_once(fut.as_mut()).await.is_pending());
                    asyncio::sleep(0.0).await.unwrap();
                }
            }
            let sent = log.borrow().len();
            assert!(
                sent > 0 && sent < big.len(),
                "{sent} bytes reported written"
            );
            stdin.write(b"tail").unwrap();
            stdin.close();
            let got = read_all(stdout, 64 << 10, false).await;
            let mut expected = big[..sent].to_vec();
            expected.extend_from_slice(b"tail");
            assert_eq!(got.len(), expected.len());
            assert!(got == expected, "the bytes came back changed");
            assert_eq!(cat.wait().await, 0);
        });
    });
}

#[test]
fn write_all_to_a_child_that_stops_reading_is_broken_pipe() {
    serial(|| {
        run(async {
            let options = SubprocessOptions::new()
                .stdin(Stdio::Pipe)
                .stdout(Stdio::DevNull);
            // The reader takes 100,000 bytes and leaves while a 4 MiB write_all waits.
            let mut head = create_subprocess_exec("head", ["-c", "100000"], options)
                .await
                .unwrap();
            let mut stdin = head.stdin.take().unwrap();
            let err = stdin.write_all(&pattern(4 << 20, 3)).await.unwrap_err();
            assert_eq!(err.kind(), IoKind::BrokenPipe, "{err}");
            assert_eq!(head.wait().await, 0);

            // A reader already gone: the first write fails too.
            let options = SubprocessOptions::new().stdin(Stdio::Pipe);
            let mut gone = create_subprocess_exec("true", NO_ARGS, options)
                .await
                .unwrap();
            let mut stdin = gone.stdin.take().unwrap();
            assert_eq!(gone.wait().await, 0);
            let err = stdin.write_all(b"anyone?").await.unwrap_err();
            assert_eq!(err.kind(), IoKind::BrokenPipe, "{err}");
        });
    });
}

/// The descriptor of a pipe transport (`get_extra_info("pipe")`).
fn pipe_fd(info: Option<asyncio::ExtraInfo>) -> std::os::fd::BorrowedFd<'static> {
    match info {
        // SAFETY: the fd belongs to a transport that outlives every use in the test.
        Some(asyncio::ExtraInfo::Fd(fd)) => unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        other => panic!("no pipe: {other:?}"),
    }
}

#[test]
fn pipesize_sets_the_size_of_every_pipe_it_creates() {
    serial(|| {
        run(async {
            let size = |fd| rustix::pipe::fcntl_getpipe_size(fd).unwrap();
            let options = cat_options().stderr(Stdio::Pipe).pipesize(256 << 10);
            let mut cat = create_subprocess_exec("cat", NO_ARGS, options)
                .await
                .unwrap();
            let stdin = cat.stdin.take().unwrap();
            let stdout = cat.stdout.take().unwrap();
            let stderr = cat.stderr.take().unwrap();
            assert_eq!(size(pipe_fd(stdin.get_extra_info("pipe"))), 256 << 10);
            let out = stdout.transport().unwrap();
            let err = stderr.transport().unwrap();
            assert_eq!(size(pipe_fd(out.get_extra_info("pipe"))), 256 << 10);
            assert_eq!(size(pipe_fd(err.get_extra_info("pipe"))), 256 << 10);
            // The bigger pipe takes a bigger write at once.
            let mut w = stdin.clone();
            let data = pattern(1 << 20, 4);
            let n = match std::future::poll_fn(|cx| {
                Poll::Ready(Pin::new(&mut w).poll_write(cx, &data))
            })
            .await
            {
                Poll::Ready(Ok(n)) => n,
                other => panic!("{other:?}"),
            };
            assert!(n > 64 << 10, "the pipe took {n}");
            drop(w);
            stdin.close();
            let got = read_all(stdout, 64 << 10, false).await;
            assert!(got == data[..n], "the bytes came back changed");
            assert_eq!(cat.wait().await, 0);

            // Without the option: the kernel's default.
            let mut cat = create_subprocess_exec("cat", NO_ARGS, cat_options())
                .await
                .unwrap();
            let stdin = cat.stdin.take().unwrap();
            assert_eq!(size(pipe_fd(stdin.get_extra_info("pipe"))), 64 << 10);
            stdin.close();
            assert_eq!(cat.wait().await, 0);
        });
    });
}

#[test]
fn a_pipesize_the_kernel_refuses_is_the_spawn_error() {
    serial(|| {
        run(async {
            let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let count = open_fds;
            let before = count();
            // Far beyond any size the kernel grants (EPERM unprivileged, else ENOMEM or
            // EINVAL past what an unsigned int of pages holds).
            let options = cat_options().pipesize(max.max(1 << 20) << 12);
            let err = create_subprocess_exec("cat", NO_ARGS, options)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), asyncio::ErrorKind::Io, "{err}");
            assert_eq!(count(), before, "descriptors left behind");
        });
    });
}
