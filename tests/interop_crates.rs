//! What the "Using other crates" chapter claims, one test per claim: futures-io crates
//! (async-tungstenite itself among them) and smol-rs crates run on this loop unchanged; crates that need tokio's reactor (tokio's `net` and
//! `time`) do not, and run through `async_compat::Compat`; tokio's `sync` needs no reactor.

#[path = "net_support/mod.rs"]
mod net_support;

use std::time::Duration;

use asyncio::streams::{start_server, Stream, StreamReader, StreamWriter};
use asyncio::ErrorKind;
use futures::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use net_support::{port_of, run, wait_until, watchdog};

async fn echo(reader: StreamReader, writer: StreamWriter) {
    let _ = futures::io::copy(reader, &mut { writer }).await;
}

/// futures-io: `BufReader` and `lines()` from the `futures` crate work on a `Stream`.
#[test]
fn futures_io_adapters_run_on_a_stream() {
    watchdog(|| {
        run(|_lp| async move {
            let server = start_server(echo, "127.0.0.1", 0).await.unwrap();
            let stream = Stream::connect("127.0.0.1", port_of(&server))
                .await
                .unwrap();
            let (reader, mut writer) = stream.into_split();
            writer.write_all(b"one\ntwo\n").await.unwrap();
            AsyncWriteExt::close(&mut writer).await.unwrap(); // the EOF
            let lines: Vec<String> =
                futures::StreamExt::collect::<Vec<_>>(BufReader::new(reader).lines())
                    .await
                    .into_iter()
                    .map(Result::unwrap)
                    .collect();
            assert_eq!(lines, ["one", "two"]);
            server.close();
        });
    });
}

/// async-tungstenite (its futures-io flavour, no tokio feature) runs unmodified on `Stream`s:
/// a WebSocket server and client on this one loop over loopback, through the opening
/// handshake, text and binary messages both ways, and the closing handshake.
#[test]
fn async_tungstenite_server_and_client_run_on_streams() {
    use async_tungstenite::tungstenite::Message;
    use futures::StreamExt;
    use std::cell::Cell;
    use std::rc::Rc;

    watchdog(|| {
        run(|_lp| async move {
            // The server echoes every data message; after the client's Close (which tungstenite
            // answers on the next poll) the stream ends. It reports how it ended: a panic in a
            // handler would only reach the loop's exception handler.
            let ended: Rc<Cell<Option<bool>>> = Rc::default();
            let server_ended = ended.clone();
            let server = start_server(
                move |reader: StreamReader, writer: StreamWriter| {
                    let ended = server_ended.clone();
                    async move {
                        let stream = Stream::from_parts(reader, writer);
                        let Ok(mut ws) = async_tungstenite::accept_async(stream).await else {
                            return ended.set(Some(false));
                        };
                        let mut saw_close = false;
                        while let Some(msg) = ws.next().await {
                            match msg {
                                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                                    if ws.send(m).await.is_err() {
                                        break;
                                    }
                                }
                                Ok(Message::Close(_)) => saw_close = true,
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                        ended.set(Some(saw_close));
                    }
                },
                "127.0.0.1",
                0,
            )
            .await
            .unwrap();
            let port = port_of(&server);
            let stream = Stream::connect("127.0.0.1", port).await.unwrap();
            let url = format!("ws://127.0.0.1:{port}/chat");
            let (mut ws, response) = async_tungstenite::client_async(url, stream).await.unwrap();
            assert_eq!(response.status().as_u16(), 101, "Switching Protocols");

            ws.send(Message::text("hello")).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
            let bytes = vec![0u8, 1, 2, 254, 255];
            ws.send(Message::binary(bytes.clone())).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(bytes));
            // A message larger than one read, to cross several polls.
            let big = "x".repeat(200_000);
            ws.send(Message::text(big.clone())).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(big));

            ws.close(None).await.unwrap();
            // The server's answer to our close, then the end of the stream.
            assert!(matches!(ws.next().await, Some(Ok(Message::Close(_)))));
            assert!(ws.next().await.is_none());
            wait_until("the server's end", || ended.get().is_some()).await;
            assert_eq!(
                ended.get(),
                Some(true),
                "the server saw the closing handshake"
            );
            server.close();
            server.wait_closed().await.unwrap();
        });
    });
}

/// smol-rs: async-channel, async-lock and async-io's `Timer` run unmodified.
#[test]
fn smol_crates_run_unmodified() {
    watchdog(|| {
        run(|lp| async move {
            let (tx, rx) = smol::channel::bounded::<u32>(2);
            let producer = lp
                .create_task(async move {
                    for i in 0..10 {
                        tx.send(i).await.unwrap();
                    }
                })
                .unwrap();
            let mut sum = 0;
            while let Ok(v) = rx.recv().await {
                sum += v;
            }
            producer.await.unwrap();
            assert_eq!(sum, 45);
            let m = smol::lock::Mutex::new(1);
            *m.lock().await += 1;
            assert_eq!(*m.lock().await, 2);
            // async-io's reactor thread wakes this loop's task.
            smol::Timer::after(Duration::from_millis(1)).await;
        });
    });
}

/// tokio's `sync` needs no reactor: its channels run unmodified.
#[test]
fn tokio_sync_runs_unmodified() {
    watchdog(|| {
        run(|lp| async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
            lp.create_task(async move {
                for i in 0..3 {
                    tx.send(i).await.unwrap();
                }
            })
            .unwrap();
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            assert_eq!(got, [0, 1, 2]);
        });
    });
}

/// tokio's `net` and `time` need tokio's reactor: on this loop they panic (the task fails
/// with `Panicked`, naming the missing runtime).
#[test]
fn tokio_reactor_crates_fail_without_an_adapter() {
    watchdog(|| {
        run(|lp| async move {
            let t = lp
                .create_task(async { tokio::time::sleep(Duration::from_millis(1)).await })
                .unwrap();
            let err = t.await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Panicked);
            assert!(err.to_string().contains("Tokio"), "{err}");
            let t = lp
                .create_task(async { tokio::net::TcpStream::connect("127.0.0.1:9").await })
                .unwrap();
            let err = t.await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Panicked);
            assert!(err.to_string().contains("Tokio"), "{err}");
        });
    });
}

/// async-compat's `Compat` runs them: it enters a tokio runtime of its own around each poll.
#[test]
fn async_compat_runs_tokio_reactor_crates() {
    watchdog(|| {
        run(|_lp| async move {
            // Build tokio's futures inside the wrapped future: `tokio::time::sleep` looks for
            // the runtime when it is created, not when polled.
            async_compat::Compat::new(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
            })
            .await;
            let server = start_server(echo, "127.0.0.1", 0).await.unwrap();
            let port = port_of(&server);
            let echoed = async_compat::Compat::new(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                s.write_all(b"via tokio").await?;
                s.shutdown().await?;
                let mut back = Vec::new();
                s.read_to_end(&mut back).await?;
                Ok::<_, std::io::Error>(back)
            })
            .await
            .unwrap();
            assert_eq!(echoed, b"via tokio");
            server.close();
        });
    });
}
