//! A `StreamWriter` shared by several tasks of one loop, as asyncio programs do: clones write
//! through one transport in the order the writes were made, concurrent `drain`s all wait while
//! writing is paused and are all woken together (asyncio's `_drain_waiters`), `close` through
//! one clone is seen by the others, and only the last clone's drop closes the connection.

#[path = "net_support/mod.rs"]
mod net_support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use asyncio::streams::{open_connection, start_server, StreamReader, StreamWriter};
use asyncio::ErrorKind;
use net_support::{loopback_stream_server, port_of, run, spin, wait_until, watchdog};

/// A server that reads each connection to EOF and publishes what it got.
async fn collecting_server(got: Rc<RefCell<Option<Vec<u8>>>>) -> (asyncio::Server, u16) {
    loopback_stream_server(move |reader: StreamReader, writer: StreamWriter| {
        let got = got.clone();
        async move {
            let _open = writer; // dropping it would close the connection
            let all = reader.read_to_eof().await.unwrap();
            *got.borrow_mut() = Some(all);
        }
    })
    .await
}

#[test]
fn clones_written_from_several_tasks_keep_every_write_whole_and_in_order() {
    watchdog(|| {
        run(|lp| async move {
            let got = Rc::default();
            let (server, port) = collecting_server(Rc::clone(&got)).await;
            let (_reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
            let sent = Rc::new(RefCell::new(Vec::<u8>::new()));
            let tasks: Vec<_> = (0..3)
                .map(|t| {
                    let (writer, sent) = (writer.clone(), sent.clone());
                    lp.create_task(async move {
                        for n in 0..50 {
                            let line = format!("task {t} line {n}\n");
                            writer.write(line.as_bytes()).unwrap();
                            sent.borrow_mut().extend_from_slice(line.as_bytes());
                            writer.drain().await.unwrap();
                            asyncio::sleep(0.0).await.unwrap(); // let the others in
                        }
                    })
                    .unwrap()
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            writer.close();
            writer.wait_closed().await.unwrap();
            wait_until("the server read to EOF", || got.borrow().is_some()).await;
            let received = got.borrow_mut().take().unwrap();
            assert_eq!(
                received,
                *sent.borrow(),
                "the bytes, in the order they were written"
            );
            let text = String::from_utf8(received).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 150);
            // The tasks did interleave (each yielded after every line).
            assert_ne!(lines[1], "task 0 line 1");
            server.close();
        })
    });
}

/// The server reads nothing until `go`: the client's buffer passes the high-water mark, three
/// tasks drain through three clones, none returns while paused, all return once the buffer is
/// back under the low-water mark.
#[test]
fn concurrent_drains_through_clones_all_wait_and_all_wake() {
    watchdog(|| {
        run(|lp| async move {
            const TOTAL: usize = 32 * 1024 * 1024;
            let go = lp.create_future::<()>();
            let connected: Rc<Cell<bool>> = Rc::default();
            let received = Rc::new(Cell::new(0usize));
            let (go2, conn2, rec2) = (go.clone(), connected.clone(), received.clone());
            let server = start_server(
                move |reader: StreamReader, writer: StreamWriter| {
                    let (go, connected, rec) = (go2.clone(), conn2.clone(), rec2.clone());
                    async move {
                        let _open = writer;
                        connected.set(true);
                        go.await.unwrap();
                        while rec.get() < TOTAL {
                            let chunk = reader.read(1 << 20).await.unwrap();
                            assert!(!chunk.is_empty());
                            rec.set(rec.get() + chunk.len());
                        }
                    }
                },
                "127.0.0.1",
                0,
            )
            .await
            .unwrap();
            let (_reader, writer) = open_connection("127.0.0.1", port_of(&server))
                .await
                .unwrap();
            wait_until("server connected", || connected.get()).await;
            writer.write(&vec![7u8; TOTAL]).unwrap();
            let (low, high) = writer.transport().get_write_buffer_limits();
            assert!(writer.transport().get_write_buffer_size() > high);
            let done = Rc::new(Cell::new(0usize));
            let drains: Vec<_> = (0..3)
                .map(|_| {
                    let (w, done) = (writer.clone(), done.clone());
                    lp.create_task(async move {
                        w.drain().await.unwrap();
                        done.set(done.get() + 1);
                        // Woken under the low-water mark.
                        w.transport().get_write_buffer_size()
                    })
                    .unwrap()
                })
                .collect();
            spin(20).await;
            assert_eq!(done.get(), 0, "every drain waits while writing is paused");
            go.set_result(()).unwrap();
            for d in drains {
                assert!(d.await.unwrap() <= low);
            }
            assert_eq!(done.get(), 3);
            wait_until("all received", || received.get() == TOTAL).await;
            server.close();
        })
    });
}

#[test]
fn close_through_one_clone_is_seen_by_the_others() {
    watchdog(|| {
        run(|_lp| async move {
            let got = Rc::default();
            let (server, port) = collecting_server(Rc::clone(&got)).await;
            let (_reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
            let other = writer.clone();
            assert!(other.ptr_eq(&writer));
            writer.write(b"before close").unwrap();
            writer.close();
            assert!(other.is_closing());
            let err = other.drain().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io);
            assert_eq!(
                err.io_error_kind(),
                Some(std::io::ErrorKind::ConnectionReset)
            );
            other.wait_closed().await.unwrap();
            wait_until("the server read to EOF", || got.borrow().is_some()).await;
            assert_eq!(got.borrow().as_deref(), Some(&b"before close"[..]));
            server.close();
        })
    });
}

#[test]
fn only_the_last_clone_dropped_closes_the_connection() {
    watchdog(|| {
        run(|_lp| async move {
            let got = Rc::default();
            let (server, port) = collecting_server(Rc::clone(&got)).await;
            let (_reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
            let other = writer.clone();
            writer.write(b"one").unwrap();
            drop(writer);
            assert!(!other.is_closing(), "a clone's drop does not close");
            other.write(b" two").unwrap();
            other.drain().await.unwrap();
            spin(5).await;
            assert!(got.borrow().is_none());
            drop(other); // the last one closes, after the buffered data
            wait_until("the server read to EOF", || got.borrow().is_some()).await;
            assert_eq!(got.borrow().as_deref(), Some(&b"one two"[..]));
            server.close();
        })
    });
}
