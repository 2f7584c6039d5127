//! Interoperability with tokio-rustls, both ways in the same test (their server and our
//! client; our server and their client), and close vs abort as the peer sees it: close sends
//! close_notify (their read ends cleanly), abort does not (their read fails with
//! `UnexpectedEof`).

mod net_support;
mod tls_support;

use std::io::ErrorKind as IoKind;
use std::sync::mpsc;

use asyncio::{BaseProtocol, ConnectOptions, Protocol, ServerOptions, Transport};
use net_support::{loopback_server, run, wait_until, watchdog, Recorder};
use tls_support::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a tokio-rustls peer's read loop ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Read returned 0 after close_notify.
    CloseNotify,
    /// The connection ended without close_notify.
    Ragged,
    Other(String),
}

fn end_of(r: std::io::Result<usize>) -> Option<End> {
    match r {
        Ok(0) => Some(End::CloseNotify),
        Ok(_) => None,
        Err(e) if e.kind() == IoKind::UnexpectedEof => Some(End::Ragged),
        Err(e) => Some(End::Other(e.to_string())),
    }
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Lets the loop run until `thread` has finished, then joins it.
async fn join<T>(thread: std::thread::JoinHandle<T>) -> T {
    while !thread.is_finished() {
        asyncio::sleep(0.002).await.unwrap();
    }
    thread.join().unwrap()
}

/// Closes or aborts its transport when told so ("close" / "abort"); echoes anything else.
struct Obedient(Option<Transport>);
impl BaseProtocol for Obedient {}
impl Protocol for Obedient {
    fn connection_made(&mut self, transport: Transport) {
        self.0 = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        let t = self.0.as_ref().unwrap();
        match data {
            b"close" => t.close(),
            b"abort" => t.abort(),
            _ => t.write(data).unwrap(),
        }
    }
}

#[test]
fn tokio_rustls_both_ways() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("interop CA");

            // 1. Their server, our client: echo, then our close (close_notify) and our abort.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let config = pki.server().server_config().unwrap();
            let (tx, rx) = mpsc::channel::<End>();
            let theirs = std::thread::spawn(move || {
                tokio_rt().block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    for _ in 0..2 {
                        let (tcp, _) = listener.accept().await.unwrap();
                        let mut tls = acceptor.accept(tcp).await.unwrap();
                        let mut buf = [0u8; 1024];
                        let end = loop {
                            match tls.read(&mut buf).await {
                                Ok(n) if n > 0 => tls.write_all(&buf[..n]).await.unwrap(),
                                other => break end_of(other).unwrap(),
                            }
                        };
                        if end == End::CloseNotify {
                            // Answer with our close_notify, as a well-behaved peer does.
                            let _ = tls.shutdown().await;
                        }
                        tx.send(end).unwrap();
                    }
                })
            });
            for (how, expected) in [("close", End::CloseNotify), ("abort", End::Ragged)] {
                let client = Recorder::default();
                let c = client.clone();
                let options = ConnectOptions::new()
                    .ssl(pki.client())
                    .server_hostname("localhost");
                let (t, _) = lp
                    .create_connection(move || c, Some("127.0.0.1"), Some(port), options)
                    .await
                    .unwrap();
                t.write(b"hello tokio").unwrap();
                wait_until("their echo", || client.len() == 11).await;
                assert_eq!(client.seen.borrow().data, b"hello tokio");
                if how == "close" {
                    t.close();
                } else {
                    t.abort();
                }
                wait_until("connection_lost", || client.lost()).await;
                let seen = loop {
                    if let Ok(end) = rx.try_recv() {
                        break end;
                    }
                    asyncio::sleep(0.002).await.unwrap();
                };
                assert_eq!(seen, expected, "after our {how}");
            }
            join(theirs).await;

            // 2. Our server, their client: echo, then our close and our abort as they see them.
            let (server, port) = loopback_server(
                &lp,
                || Obedient(None),
                ServerOptions::new().ssl(pki.server()),
            )
            .await;
            let config = pki.client().client_config().unwrap();
            let theirs = std::thread::spawn(move || {
                tokio_rt().block_on(async move {
                    let connector = tokio_rustls::TlsConnector::from(config);
                    let mut ends = Vec::new();
                    for how in [&b"close"[..], b"abort"] {
                        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                            .await
                            .unwrap();
                        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                        let mut tls = connector.connect(name, tcp).await.unwrap();
                        tls.write_all(b"echo me").await.unwrap();
                        let mut buf = [0u8; 7];
                        tls.read_exact(&mut buf).await.unwrap();
                        assert_eq!(&buf, b"echo me");
                        tls.write_all(how).await.unwrap();
                        let mut rest = [0u8; 16];
                        let end = end_of(tls.read(&mut rest).await).unwrap();
                        ends.push(end);
                    }
                    ends
                })
            });
            let ends = join(theirs).await;
            assert_eq!(ends, [End::CloseNotify, End::Ragged]);
            wait_until("the connections to go", || server.connection_count() == 0).await;
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}
