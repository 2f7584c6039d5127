//! A `Process`'s streams on the fast paths: the stdout reader reads the pipe itself when its
//! buffer is empty (and the pipe's readiness wakes it instead of copying), the stdin writer
//! keeps its sent bytes until an append needs the room, and the pidfd watcher watches a
//! duplicate of the transport's pidfd. Bytes keep their order whichever path they take, a
//! paused pipe is not read past, a reader that gives up waiting loses nothing, and no
//! descriptor is left behind. The tests take turns (one lock), so the descriptor count is
//! not disturbed by another test. Every test is bounded by the watchdog.

mod subprocess_support;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use asyncio::subprocess::{create_subprocess_exec, Stdio};
use subprocess_support::{cat_options, open_fds, run, serial, spawn_cat, NO_ARGS};

/// Polls `fut` once, from inside a task.
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// A pattern with no short period, so a byte out of place shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn bytes_through_cat_keep_their_order_on_every_read_and_write_path() {
    serial(|| {
        run(async {
            let data = pattern(4 << 20);
            let (cat, stdin, stdout) = spawn_cat().await;
            let to_write = data.clone();
            // Chunks of many sizes, drained only now and then: writes land on a buffer whose
            // front was partly sent.
            let write = async move {
                let sizes = [1, 100, 70_000, 300_000, 4096, 65_536, 1_000_000, 17];
                let (mut at, mut i) = (0, 0);
                while at < to_write.len() {
                    let n = sizes[i % sizes.len()].min(to_write.len() - at);
                    stdin.write(&to_write[at..at + n]).unwrap();
                    at += n;
                    i += 1;
                    if i % 3 == 0 {
                        stdin.drain().await.unwrap();
                    } else {
                        asyncio::sleep(0.0).await.unwrap();
                    }
                }
                stdin.drain().await.unwrap();
                stdin.close();
            };
            // readinto (straight from the pipe when nothing is buffered), read(n) (from the
            // buffer the transport fills), and pauses that let the transport read first.
            let read = async move {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 100_000];
                let mut i = 0usize;
                loop {
                    let chunk = if i % 2 == 0 {
                        let want = [1, 4096, 65_536, 100_000][i / 2 % 4];
                        let n = stdout.readinto(&mut buf[..want]).await.unwrap();
                        buf[..n].to_vec()
                    } else {
                        stdout.read([3, 70_000, 1 << 20][i / 2 % 3]).await.unwrap()
                    };
                    if chunk.is_empty() {
                        break;
                    }
                    got.extend_from_slice(&chunk);
                    if i % 5 == 0 {
                        for _ in 0..3 {
                            asyncio::sleep(0.0).await.unwrap();
                        }
                    }
                    i += 1;
                }
                got
            };
            let ((), got) = futures::future::join(write, read).await;
            assert_eq!(got.len(), data.len());
            assert!(got == data, "bytes out of order");
            assert_eq!(cat.wait().await, 0);
        });
    });
}

#[test]
fn a_paused_stdout_pipe_is_not_read_past_and_a_reader_that_gives_up_loses_nothing() {
    serial(|| {
        run(async {
            let script = "read line; printf hello; read line; printf world";
            let mut child = create_subprocess_exec("sh", ["-c", script], cat_options())
                .await
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let stdout = child.stdout.take().unwrap();
            let mut buf = [0u8; 64];

            // A reader that finds the pipe empty and is then dropped: the child's output
            // still reaches the next read.
            {
                let mut first = Box::pin(stdout.readinto(&mut buf));
                assert!(matches!(poll_once(first.as_mut()).await, Poll::Pending));
            }
            stdin.write(b"go\n").unwrap();
            stdin.drain().await.unwrap();
            let mut got = Vec::new();
            while got.len() < 5 {
                got.extend(stdout.read(5 - got.len()).await.unwrap());
            }
            assert_eq!(got, b"hello");

            // Paused by the user: the reader does not read the pipe behind the pause.
            let pipe = stdout.transport().unwrap();
            pipe.pause_reading();
            stdin.write(b"go\n").unwrap();
            stdin.close();
            assert_eq!(child.wait().await, 0); // "world" is in the pipe
            {
                let mut paused = Box::pin(stdout.readinto(&mut buf));
                assert!(matches!(poll_once(paused.as_mut()).await, Poll::Pending));
            }
            pipe.resume_reading();
            let mut rest = Vec::new();
            loop {
                let n = stdout.readinto(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&buf[..n]);
            }
            assert_eq!(rest, b"world");
        });
    });
}

#[test]
fn finished_children_leave_no_descriptor_behind() {
    serial(|| {
        run(async {
            let count = open_fds;
            let piped = || cat_options().stderr(Stdio::Pipe);
            // Warm up: the policy's watcher and anything created once.
            let p = create_subprocess_exec("true", NO_ARGS, piped())
                .await
                .unwrap();
            p.wait().await;
            drop(p);
            for _ in 0..5 {
                asyncio::sleep(0.0).await.unwrap();
            }
            let before = count();
            for _ in 0..20 {
                let mut p = create_subprocess_exec("true", NO_ARGS, piped())
                    .await
                    .unwrap();
                let (out, err) = p.communicate(None).await.unwrap();
                assert_eq!((out.unwrap(), err.unwrap()), (vec![], vec![]));
                assert_eq!(p.wait().await, 0);
            }
            for _ in 0..5 {
                asyncio::sleep(0.0).await.unwrap();
            }
            assert_eq!(count(), before, "descriptors leaked");
        });
    });
}
