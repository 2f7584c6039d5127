//! Streams over loopback TCP and Unix sockets: echo, readline / readexactly / readuntil /
//! at_eof, limit overruns, drain with a slow reader, `futures::io::copy`, writer drop.

#[path = "net_support/mod.rs"]
mod net_support;

use std::cell::RefCell;
use std::rc::Rc;

use asyncio::streams::{
    open_connection, open_connection_with, open_unix_connection, start_server, start_server_with,
    start_unix_server, IncompleteReadError, LimitOverrunError, StreamReader, StreamWriter,
};
use asyncio::{Address, ConnectOptions, ErrorKind, EventLoop, ServerOptions};
use net_support::{loopback_stream_server, port_of, run, spin, wait_until, watchdog, TempDir};

async fn echo_lines(reader: StreamReader, writer: StreamWriter) {
    loop {
        match reader.readline().await {
            Ok(line) if !line.is_empty() => {
                writer.write(&line).unwrap();
                if writer.drain().await.is_err() {
                    break;
                }
            }
            _ => break,
        }
    }
}

#[test]
fn echo_lines_over_tcp() {
    watchdog(|| {
        run(|_lp| async move {
            let server = start_server(echo_lines, "127.0.0.1", 0).await.unwrap();
            let (reader, writer) = open_connection("127.0.0.1", port_of(&server))
                .await
                .unwrap();
            for i in 0..10 {
                let line = format!("line {i}\n");
                writer.write(line.as_bytes()).unwrap();
                writer.drain().await.unwrap();
                assert_eq!(reader.readline().await.unwrap(), line.as_bytes());
            }
            writer.writelines([&b"a\n"[..], b"b\n"]).unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"a\n");
            assert_eq!(reader.readline().await.unwrap(), b"b\n");
            assert!(writer.can_write_eof());
            writer.write_eof();
            // The server's task ends at EOF and drops its writer: the connection closes.
            assert_eq!(reader.read(100).await.unwrap(), b"");
            assert!(reader.at_eof());
            assert!(matches!(
                writer.get_extra_info("peername"),
                Some(asyncio::ExtraInfo::Address(Address::Inet(_)))
            ));
            writer.close();
            assert!(writer.is_closing());
            writer.wait_closed().await.unwrap();
            // drain after the connection is lost reports it.
            let err = writer.drain().await.unwrap_err();
            assert_eq!(
                err.io_error_kind(),
                Some(std::io::ErrorKind::ConnectionReset)
            );
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn echo_over_unix_socket() {
    watchdog(|| {
        let dir = TempDir::new("streams");
        let p2 = dir.join("echo.sock");
        run(|_lp| async move {
            let server = start_unix_server(echo_lines, &p2).await.unwrap();
            let (reader, writer) = open_unix_connection(&p2).await.unwrap();
            writer.write(b"over unix\n").unwrap();
            writer.drain().await.unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"over unix\n");
            drop(writer);
            assert_eq!(reader.read_to_eof().await.unwrap(), b"");
            server.close();
            server.wait_closed().await.unwrap();
        });
    });
}

/// A server that writes `payload` and closes; returns the port.
async fn serve_bytes(payload: &'static [u8]) -> (asyncio::Server, u16) {
    loopback_stream_server(move |_r: StreamReader, w: StreamWriter| async move {
        w.write(payload).unwrap();
        w.close();
    })
    .await
}

#[test]
fn read_helpers_and_eof() {
    watchdog(|| {
        run(|_lp| async move {
            let (server, port) = serve_bytes(b"hello\nworld--end--tail12345").await;
            let (reader, _writer) = open_connection("127.0.0.1", port).await.unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"hello\n");
            assert_eq!(reader.readuntil(b"--end--").await.unwrap(), b"world--end--");
            assert_eq!(reader.readexactly(4).await.unwrap(), b"tail");
            assert_eq!(reader.readexactly(0).await.unwrap(), b"");
            let err = reader.readexactly(10).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IncompleteRead);
            let detail = IncompleteReadError::of(&err).unwrap();
            assert_eq!(detail.partial, b"12345");
            assert_eq!(detail.expected, Some(10));
            assert_eq!(
                err.to_string(),
                "5 bytes read on a total of 10 expected bytes"
            );
            assert!(reader.at_eof());
            assert_eq!(reader.readline().await.unwrap(), b"");
            let err = reader.readuntil(b"x").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IncompleteRead);
            assert_eq!(IncompleteReadError::of(&err).unwrap().expected, None);
            let err = reader.readuntil(b"").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            server.close();
        })
    });
}

#[test]
fn readline_returns_partial_last_line() {
    watchdog(|| {
        run(|_lp| async move {
            let (server, port) = serve_bytes(b"one\ntwo").await;
            let (reader, _writer) = open_connection("127.0.0.1", port).await.unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"one\n");
            assert_eq!(reader.readline().await.unwrap(), b"two");
            assert_eq!(reader.readline().await.unwrap(), b"");
            assert!(reader.at_eof());
            server.close();
        })
    });
}

#[test]
fn limit_overrun_errors() {
    watchdog(|| {
        run(|lp| async move {
            // readuntil: separator found past the limit; the data stays buffered.
            let reader = StreamReader::with_limit(&lp, 4).unwrap();
            reader.feed_data(b"0123456789\nrest\n");
            let err = reader.readuntil(b"\n").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::LimitOverrun);
            assert_eq!(
                err.to_string(),
                "Separator is found, but chunk is longer than limit"
            );
            assert_eq!(LimitOverrunError::of(&err).unwrap().consumed, 10);
            assert_eq!(reader.buffered(), 16);
            // readline discards the long line and raises.
            let err = reader.readline().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::LimitOverrun);
            assert_eq!(reader.readline().await.unwrap(), b"rest\n");

            // Separator not found and the buffer exceeds the limit.
            let reader = StreamReader::with_limit(&lp, 4).unwrap();
            reader.feed_data(b"abcdefgh");
            let err = reader.readuntil(b"\n").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::LimitOverrun);
            assert_eq!(
                err.to_string(),
                "Separator is not found, and chunk exceed the limit"
            );
            assert_eq!(reader.buffered(), 8);
            let err = reader.readline().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::LimitOverrun);
            assert_eq!(reader.buffered(), 0);

            assert_eq!(
                StreamReader::with_limit(&lp, 0).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
        })
    });
}

#[test]
fn over_the_wire_limit_overrun() {
    watchdog(|| {
        run(|_lp| async move {
            static LONG: [u8; 300] = [b'x'; 300];
            let (server, port) = serve_bytes(&LONG).await;
            let (reader, _writer) =
                open_connection_with(Some("127.0.0.1"), Some(port), 100, ConnectOptions::new())
                    .await
                    .unwrap();
            assert_eq!(reader.limit(), 100);
            let err = reader.readline().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::LimitOverrun);
            // The rest is still readable.
            let rest = reader.read_to_eof().await.unwrap();
            assert!(rest.len() < 300);
            server.close();
        })
    });
}

/// A slow reader: the server reads nothing until `go` is set. The client's drain waits while
/// its transport is paused, and returns once the server reads and the buffer drains. The
/// server's reader pauses its transport when its buffer passes 2 x limit.
#[test]
fn drain_waits_for_a_slow_reader() {
    watchdog(|| {
        run(|lp| async move {
            const TOTAL: usize = 64 * 1024 * 1024;
            let go = lp.create_future::<()>();
            let got: Rc<std::cell::Cell<bool>> = Rc::default();
            let received = Rc::new(RefCell::new(0usize));
            let (go2, got2, rec2) = (go.clone(), got.clone(), received.clone());
            let server = start_server(
                move |reader: StreamReader, writer: StreamWriter| {
                    let (go, got, rec) = (go2.clone(), got2.clone(), rec2.clone());
                    async move {
                        got.set(true);
                        // Keep an observable handle on the reader's transport.
                        let transport = reader.transport().unwrap();
                        go.await.unwrap();
                        assert!(!transport.is_reading(), "reader paused its transport");
                        while *rec.borrow() < TOTAL {
                            let chunk = reader.read(1 << 20).await.unwrap();
                            assert!(!chunk.is_empty());
                            *rec.borrow_mut() += chunk.len();
                        }
                        drop(writer);
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
            let data = vec![7u8; TOTAL];
            writer.write(&data).unwrap();
            let (_, high) = writer.transport().get_write_buffer_limits();
            assert!(writer.transport().get_write_buffer_size() > high);
            let w = Rc::new(writer);
            let w2 = w.clone();
            let drain = lp.create_task(async move { w2.drain().await }).unwrap();
            wait_until("server connected", || got.get()).await;
            spin(20).await;
            assert!(!drain.done(), "drain waits while the protocol is paused");
            go.set_result(()).unwrap();
            drain.await.unwrap().unwrap();
            let (low, _) = w.transport().get_write_buffer_limits();
            assert!(w.transport().get_write_buffer_size() <= low);
            wait_until("all received", || *received.borrow() == TOTAL).await;
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn futures_io_copy_echo() {
    watchdog(|| {
        run(|_lp| async move {
            let server = start_server_with(
                |mut reader: StreamReader, mut writer: StreamWriter| async move {
                    futures::io::copy(&mut reader, &mut writer).await.unwrap();
                },
                &["127.0.0.1"],
                Some(0),
                1024,
                ServerOptions::new(),
            )
            .await
            .unwrap();
            let (reader, mut writer) = open_connection("127.0.0.1", port_of(&server))
                .await
                .unwrap();
            let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
            let mut src = futures::io::Cursor::new(data.clone());
            let n = futures::io::copy(&mut src, &mut writer).await.unwrap();
            assert_eq!(n, data.len() as u64);
            futures::io::AsyncWriteExt::close(&mut writer)
                .await
                .unwrap();
            let mut back = Vec::new();
            let mut reader = reader;
            futures::io::AsyncReadExt::read_to_end(&mut reader, &mut back)
                .await
                .unwrap();
            assert_eq!(back.len(), data.len());
            assert!(back == data);
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn a_panicking_client_callback_is_reported_and_closes() {
    watchdog(|| {
        run(|lp| async move {
            let reported = Rc::new(RefCell::new(Vec::<String>::new()));
            let r2 = reported.clone();
            lp.set_exception_handler(Some(Rc::new(
                move |_lp: &EventLoop, ctx: &asyncio::ExceptionContext| {
                    r2.borrow_mut().push(ctx.message.clone());
                },
            )));
            let server = start_server(
                |_r: StreamReader, _w: StreamWriter| async move {
                    panic!("boom");
                },
                "127.0.0.1",
                0,
            )
            .await
            .unwrap();
            let (reader, _writer) = open_connection("127.0.0.1", port_of(&server))
                .await
                .unwrap();
            assert_eq!(reader.read_to_eof().await.unwrap(), b"");
            wait_until("reported", || !reported.borrow().is_empty()).await;
            assert_eq!(
                reported.borrow()[0],
                "Unhandled exception in client_connected_cb"
            );
            server.close();
        })
    });
}

#[test]
fn no_running_loop_is_an_error() {
    let lp = EventLoop::new().unwrap();
    let err = futures::executor::block_on(open_connection("127.0.0.1", 1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoRunningLoop);
    lp.close().unwrap();
}

#[test]
fn readuntil_any_returns_the_shortest_data_ending_in_a_separator() {
    watchdog(|| {
        run(|lp| async move {
            let reader = StreamReader::with_limit(&lp, 64).unwrap();
            reader.feed_data(b"aaZbXYZ|line\r\nnext\n");
            // "Z" ends before "XYZ" does.
            assert_eq!(reader.readuntil_any(&[b"XYZ", b"Z"]).await.unwrap(), b"aaZ");
            assert_eq!(
                reader.readuntil_any(&[b"XYZ", b"Z"]).await.unwrap(),
                b"bXYZ"
            );
            assert_eq!(reader.readuntil_any(&[b"|"]).await.unwrap(), b"|");
            // "\r\n" and "\n" end at the same place: the data ends with the longer one.
            assert_eq!(
                reader.readuntil_any(&[b"\n", b"\r\n"]).await.unwrap(),
                b"line\r\n"
            );
            // A separator split across feeds is still found.
            let lp2 = lp.clone();
            let r2 = Rc::new(StreamReader::with_limit(&lp, 64).unwrap());
            let feeder = r2.clone();
            lp2.call_soon(move || feeder.feed_data(b"ab<e")).unwrap();
            let feeder = r2.clone();
            lp2.call_later(0.001, move || feeder.feed_data(b"nd>tail"))
                .unwrap();
            assert_eq!(
                r2.readuntil_any(&[b"<end>", b"!"]).await.unwrap(),
                b"ab<end>"
            );
            assert_eq!(
                reader.readuntil_any(&[]).await.unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
            assert_eq!(
                reader.readuntil_any(&[b"x", b""]).await.unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
            assert_eq!(reader.readuntil(b"\n").await.unwrap(), b"next\n");
        })
    });
}
