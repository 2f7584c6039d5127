//! TLS failures: each verification failure with its message, protocol version, ALPN, client
//! certificates, handshake timeouts, plain-text and garbage clients (the server goes on).

mod net_support;
mod tls_support;

use std::io::{Read, Write};

use asyncio::tls::{TlsContext, TlsVersion};
use asyncio::{
    BaseProtocol, ConnectOptions, Error, ErrorKind, EventLoop, ExtraInfo, Protocol, Server,
    ServerOptions,
};
use net_support::{loopback_server, run, wait_until, watchdog, Recorder};
use tls_support::{only, LeafKind, Pki};

async fn echo_server(lp: &EventLoop, ctx: TlsContext) -> (Server, u16) {
    let (server, port) = loopback_server(lp, Recorder::echo, ServerOptions::new().ssl(ctx)).await;
    (server, port)
}

/// Connects with `ctx` (checking `hostname`), writes a line and waits for its echo; returns
/// the error the connection failed with: at connect, or (TLS 1.3 client-certificate checks
/// happen after the client's handshake ends) in `connection_lost`.
async fn failure(lp: &EventLoop, port: u16, ctx: TlsContext, hostname: &str) -> Error {
    let client = Recorder::default();
    let c = client.clone();
    let options = ConnectOptions::new().ssl(ctx).server_hostname(hostname);
    match lp
        .create_connection(move || c, Some("127.0.0.1"), Some(port), options)
        .await
    {
        Err(e) => e,
        Ok((t, _)) => {
            t.write(b"ping").unwrap();
            wait_until("connection_lost", || client.lost()).await;
            let lost = client.seen.borrow().lost.clone().unwrap();
            lost.expect("the connection failed with an error")
        }
    }
}

/// Echo works from a good client: the server still serves after a failure.
async fn still_serves(lp: &EventLoop, port: u16, ctx: TlsContext) {
    let client = Recorder::default();
    let c = client.clone();
    let options = ConnectOptions::new().ssl(ctx).server_hostname("localhost");
    let (t, _) = lp
        .create_connection(move || c, Some("127.0.0.1"), Some(port), options)
        .await
        .unwrap();
    t.write(b"still here").unwrap();
    wait_until("the echo", || client.len() == 10).await;
    t.close();
}

fn assert_tls(err: &Error, needle: &str) {
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(
        err.to_string().contains(needle),
        "{err:?} should mention {needle:?}"
    );
}

#[test]
fn unknown_issuer() {
    watchdog(|| {
        run(|lp| async move {
            let (server_pki, other) = (Pki::new("server CA"), Pki::new("other CA"));
            let (server, port) = echo_server(&lp, server_pki.server()).await;
            let err = failure(&lp, port, other.client(), "localhost").await;
            assert_tls(&err, "certificate verify failed: unknown issuer");
            // The bundled Mozilla roots do not know the test CA either.
            let err = failure(
                &lp,
                port,
                TlsContext::default_client().unwrap(),
                "localhost",
            )
            .await;
            assert_tls(&err, "unknown issuer");
            still_serves(&lp, port, server_pki.client()).await;
            server.close();
        })
    });
}

#[test]
fn expired_certificate() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let leaf = pki.leaf(
                &["localhost"],
                LeafKind {
                    expired: true,
                    ..Default::default()
                },
            );
            let ctx = TlsContext::server()
                .load_cert_chain_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
                .unwrap()
                .build()
                .unwrap();
            let (server, port) = echo_server(&lp, ctx).await;
            let err = failure(&lp, port, pki.client(), "localhost").await;
            assert_tls(&err, "certificate verify failed: certificate has expired");
            server.close();
        })
    });
}

#[test]
fn hostname_mismatch_and_check_hostname_off() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let (server, port) = echo_server(&lp, pki.server()).await;
            let err = failure(&lp, port, pki.client(), "example.com").await;
            assert_tls(&err, "hostname mismatch");
            assert!(err.to_string().contains("example.com"), "{err}");
            // check_hostname off: the chain is still verified, the name is not.
            let lax = pki.client_with(|b| b.check_hostname(false));
            let client = Recorder::default();
            let c = client.clone();
            let options = ConnectOptions::new()
                .ssl(lax)
                .server_hostname("example.com");
            let (t, _) = lp
                .create_connection(move || c, Some("127.0.0.1"), Some(port), options)
                .await
                .unwrap();
            t.write(b"ok").unwrap();
            wait_until("the echo", || client.len() == 2).await;
            t.close();
            // ... but an unknown issuer still fails with check_hostname off.
            let other = Pki::new("other").client_with(|b| b.check_hostname(false));
            let err = failure(&lp, port, other, "localhost").await;
            assert_tls(&err, "unknown issuer");
            // Verification off, explicitly: anything goes.
            let none = TlsContext::client()
                .danger_disable_verification()
                .build()
                .unwrap();
            still_serves(&lp, port, none).await;
            server.close();
        })
    });
}

#[test]
fn protocol_version_mismatch() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let tls12_server = pki.server_with(|b| b.maximum_version(TlsVersion::Tls12));
            let (server, port) = echo_server(&lp, tls12_server).await;
            let err = failure(
                &lp,
                port,
                pki.client_with(only(TlsVersion::Tls13)),
                "localhost",
            )
            .await;
            assert_tls(&err, "protocol version");
            still_serves(&lp, port, pki.client()).await;
            server.close();
        })
    });
}

#[test]
fn alpn_negotiated_and_refused() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let server_ctx = pki.server_with(|b| b.alpn_protocols(&["h2", "http/1.1"]));
            let (server, port) = echo_server(&lp, server_ctx).await;
            let client = Recorder::default();
            let c = client.clone();
            let ctx = pki.client_with(|b| b.alpn_protocols(&["http/1.1", "spdy/1"]));
            let options = ConnectOptions::new().ssl(ctx).server_hostname("localhost");
            let (t, _) = lp
                .create_connection(move || c, Some("127.0.0.1"), Some(port), options)
                .await
                .unwrap();
            assert_eq!(
                t.get_extra_info("alpn_protocol"),
                Some(ExtraInfo::Text("http/1.1".into()))
            );
            assert_eq!(
                t.get_extra_info("server_hostname"),
                Some(ExtraInfo::Text("localhost".into()))
            );
            t.close();
            // No protocol in common: a handshake failure.
            let ctx = pki.client_with(|b| b.alpn_protocols(&["imap"]));
            let err = failure(&lp, port, ctx, "localhost").await;
            assert_tls(&err, "handshake failure");
            assert!(err.to_string().contains("ALPN"), "{err}");
            server.close();
        })
    });
}

#[test]
fn client_certificates_required() {
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        watchdog(move || {
            run(move |lp| async move {
                let pki = Pki::new("CA");
                let accepted = std::rc::Rc::new(std::cell::RefCell::new(Vec::<Recorder>::new()));
                let acc = accepted.clone();
                let (server, port) = loopback_server(
                    &lp,
                    move || {
                        let r = Recorder::echo();
                        acc.borrow_mut().push(r.clone());
                        r
                    },
                    ServerOptions::new().ssl(pki.server_requiring_client_certs()),
                )
                .await;
                // Without a certificate: refused, with a message that says why.
                let err = failure(&lp, port, pki.client_with(only(version)), "localhost").await;
                assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
                let msg = err.to_string();
                assert!(
                    msg.contains("client certificate") || msg.contains("handshake failure"),
                    "{msg}"
                );
                // A certificate from another CA: refused too.
                let stranger = pki.client_with_cert_from(&Pki::new("stranger"));
                let err = failure(&lp, port, stranger, "localhost").await;
                assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
                // With one: served, and the server sees it.
                let with_cert = pki.client_with_cert();
                let ctx = with_cert.clone();
                still_serves(&lp, port, ctx).await;
                wait_until("the accepted connection", || {
                    accepted
                        .borrow()
                        .iter()
                        .any(|r| r.seen.borrow().transport.is_some())
                })
                .await;
                let served = accepted
                    .borrow()
                    .iter()
                    .find(|r| r.seen.borrow().transport.is_some())
                    .cloned()
                    .unwrap();
                assert!(matches!(
                    served.transport().get_extra_info("peercert"),
                    Some(ExtraInfo::Bytes(_))
                ));
                server.close();
            })
        });
    }
}

/// An echo protocol that counts the live ones.
struct Tracked(Recorder, std::rc::Rc<std::cell::Cell<usize>>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.set(self.1.get() - 1);
    }
}
impl BaseProtocol for Tracked {}
impl Protocol for Tracked {
    fn connection_made(&mut self, transport: asyncio::Transport) {
        self.0.connection_made(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.0.data_received(data);
    }
}

/// A protocol that never answers.
struct Silent;
impl BaseProtocol for Silent {}
impl Protocol for Silent {}

#[test]
fn handshake_timeout_against_a_silent_server() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port) = loopback_server(&lp, || Silent, ServerOptions::new()).await;
            let options = ConnectOptions::new()
                .ssl(Pki::new("CA").client())
                .server_hostname("localhost")
                .ssl_handshake_timeout(0.2);
            let err = lp
                .create_connection(Recorder::default, Some("127.0.0.1"), Some(port), options)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
            assert!(err
                .to_string()
                .contains("SSL handshake is taking longer than 0.2 seconds"));
            server.close();
        })
    });
}

#[test]
fn silent_client_is_dropped_by_the_server_handshake_timeout() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let options = ServerOptions::new()
                .ssl(pki.server())
                .ssl_handshake_timeout(0.2);
            let (server, port) = loopback_server(&lp, Recorder::echo, options).await;
            // A plain client that says nothing: the server aborts it, which it sees as EOF.
            let silent = Recorder::default();
            let s = silent.clone();
            let _t = net_support::connect_tcp(&lp, port, s).await.unwrap();
            wait_until("the server to drop the silent client", || silent.lost()).await;
            assert_eq!(server.connection_count(), 0);
            still_serves(&lp, port, pki.client()).await;
            server.close();
        })
    });
}

#[test]
fn plain_text_and_garbage_clients_fail_alone() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            // Every protocol the server makes is dropped again: nothing leaks.
            let live = std::rc::Rc::new(std::cell::Cell::new(0usize));
            let l = live.clone();
            let (server, port) = loopback_server(
                &lp,
                move || {
                    l.set(l.get() + 1);
                    Tracked(Recorder::echo(), l.clone())
                },
                ServerOptions::new().ssl(pki.server()),
            )
            .await;
            // Each bad client runs on a thread with blocking sockets; the loop keeps serving.
            let bad = std::thread::spawn(move || {
                let mut outcomes = Vec::new();
                let payloads: [&[u8]; 3] = [
                    b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n",
                    &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
                    // A truncated ClientHello: a handshake record header and a few bytes.
                    &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc],
                ];
                for (i, p) in payloads.iter().enumerate() {
                    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                        .unwrap();
                    s.write_all(p).unwrap();
                    if i == 2 {
                        // Truncated: the client gives up half-way.
                        s.shutdown(std::net::Shutdown::Write).unwrap();
                    }
                    let mut buf = Vec::new();
                    // The server answers with at most an alert, then closes.
                    let r = s.read_to_end(&mut buf);
                    outcomes.push((r.is_ok() || r.is_err(), buf.len()));
                }
                outcomes
            });
            while !bad.is_finished() {
                asyncio::sleep(0.005).await.unwrap();
            }
            let outcomes = bad.join().unwrap();
            assert_eq!(outcomes.len(), 3);
            for (_, n) in outcomes {
                assert!(n < 64, "an alert at most, got {n} bytes");
            }
            wait_until("the bad connections to go", || {
                server.connection_count() == 0
            })
            .await;
            still_serves(&lp, port, pki.client()).await;
            wait_until("every protocol dropped", || live.get() == 0).await;
            server.close();
        })
    });
}

#[test]
fn option_errors() {
    run(|lp| async move {
        let pki = Pki::new("CA");
        let err = lp
            .create_connection(
                Recorder::default,
                Some("127.0.0.1"),
                Some(1),
                ConnectOptions::new().server_hostname("x"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "server_hostname is only meaningful with ssl"
        );
        let err = lp
            .create_connection(
                Recorder::default,
                Some("127.0.0.1"),
                Some(1),
                ConnectOptions::new().ssl(pki.server()),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let err = lp
            .create_connection(
                Recorder::default,
                Some("127.0.0.1"),
                Some(1),
                ConnectOptions::new()
                    .ssl(pki.client())
                    .ssl_handshake_timeout(-1.0),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let err = lp
            .create_server(
                Recorder::default,
                &["127.0.0.1"],
                Some(0),
                ServerOptions::new().ssl(pki.client()),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let err = lp
            .create_unix_connection_with(
                Recorder::default,
                Some(std::path::Path::new("/nonexistent")),
                ConnectOptions::new().ssl(pki.client()),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "You must set server_hostname when using ssl without a host"
        );
        let err = TlsContext::server().build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let err = TlsContext::client()
            .load_verify_locations_pem(b"not PEM")
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    });
}
