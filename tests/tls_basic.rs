//! TLS connections and servers: echo over TLS 1.2 and 1.3, extra info, ALPN, BufferedProtocol,
//! streams, close vs abort.

mod net_support;
mod tls_support;

use asyncio::tls::TlsVersion;
use asyncio::{ConnectOptions, ExtraInfo, ServerOptions};
use net_support::{loopback_server, port_of, run, wait_until, watchdog, Recorder};
use tls_support::{only, Pki};

fn text(s: &str) -> Option<ExtraInfo> {
    Some(ExtraInfo::Text(s.to_owned()))
}

fn echo_over(version: TlsVersion, name: &'static str) {
    watchdog(move || {
        run(|lp| async move {
            let pki = Pki::new("test CA");
            let (server, port) =
                loopback_server(&lp, Recorder::echo, ServerOptions::new().ssl(pki.server())).await;
            let client = Recorder::default();
            let c = client.clone();
            // server_hostname defaults to the host: the certificate names 127.0.0.1 too.
            let options = ConnectOptions::new().ssl(pki.client_with(only(version)));
            let (t, _) = lp
                .create_connection(move || c, Some("127.0.0.1"), Some(port), options)
                .await
                .unwrap();
            assert!(
                client.transport().ptr_eq(&t),
                "connection_made got the TLS transport"
            );
            t.write(b"hello ").unwrap();
            t.writelines([&b"over "[..], b"TLS"]).unwrap();
            wait_until("the echo", || client.len() == 14).await;
            assert_eq!(client.seen.borrow().data, b"hello over TLS");
            assert_eq!(t.get_extra_info("tls_version"), text(name));
            assert!(
                matches!(t.get_extra_info("cipher"), Some(ExtraInfo::Text(c)) if !c.is_empty())
            );
            assert!(
                matches!(t.get_extra_info("peercert"), Some(ExtraInfo::Bytes(der)) if der.len() > 100)
            );
            assert_eq!(t.get_extra_info("compression"), None);
            assert_eq!(t.get_extra_info("alpn_protocol"), None);
            assert_eq!(t.get_extra_info("server_hostname"), text("127.0.0.1"));
            // The socket's keys come through.
            assert!(
                matches!(t.get_extra_info("peername"), Some(ExtraInfo::Address(a)) if a.as_inet().unwrap().port() == port)
            );
            assert!(matches!(t.get_extra_info("socket"), Some(ExtraInfo::Fd(_))));
            assert!(!t.can_write_eof());
            assert!(t.is_reading());
            t.close();
            assert!(t.is_closing());
            wait_until("connection_lost", || client.lost()).await;
            assert!(client.seen.borrow().lost.as_ref().unwrap().is_none());
            assert_eq!(client.seen.borrow().lost_calls, 1);
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn echo_over_tls13() {
    echo_over(TlsVersion::Tls13, "TLSv1.3");
}

#[test]
fn echo_over_tls12() {
    echo_over(TlsVersion::Tls12, "TLSv1.2");
}

/// A stream server that upgrades on "STARTTLS\n" (answering "OK\n") and then echoes lines.
/// Writes back every line `reader` gives until EOF.
async fn echo_lines(
    reader: asyncio::streams::StreamReader,
    writer: asyncio::streams::StreamWriter,
) {
    loop {
        let line = reader.readline().await.unwrap();
        if line.is_empty() {
            break;
        }
        writer.write(&line).unwrap();
        writer.drain().await.unwrap();
    }
}

async fn starttls_stream_server(pki: &Pki) -> (asyncio::Server, u16) {
    let ctx = pki.server();
    net_support::loopback_stream_server(move |reader, writer| {
        let ctx = ctx.clone();
        async move {
            // Upgraded through one clone, echoed through another: both speak TLS.
            let echo = writer.clone();
            assert_eq!(reader.readline().await.unwrap(), b"STARTTLS\n");
            writer.write(b"OK\n").unwrap();
            writer.start_tls(&ctx, None).await.unwrap();
            assert!(matches!(
                echo.get_extra_info("tls_version"),
                Some(ExtraInfo::Text(_))
            ));
            echo_lines(reader, echo).await;
        }
    })
    .await
}

#[test]
fn start_tls_client_protocol_against_stream_server() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let (server, port) = starttls_stream_server(&pki).await;
            let client = Recorder::default();
            let c = client.clone();
            let (plain, proto) = lp
                .create_connection(
                    move || c,
                    Some("127.0.0.1"),
                    Some(port),
                    ConnectOptions::new(),
                )
                .await
                .unwrap();
            plain.write(b"STARTTLS\n").unwrap();
            wait_until("OK", || client.len() == 3).await;
            let tls = lp
                .start_tls(&plain, proto, &pki.client(), false, Some("localhost"))
                .await
                .unwrap();
            assert!(!tls.ptr_eq(&plain));
            assert_eq!(tls.get_extra_info("server_hostname"), text("localhost"));
            tls.write(b"secret line\n").unwrap();
            wait_until("the echo", || client.len() == 15).await;
            assert_eq!(client.seen.borrow().data, b"OK\nsecret line\n");
            // No second connection_made: the protocol still holds the plain transport.
            assert!(client.transport().ptr_eq(&plain));
            tls.close();
            wait_until("connection_lost", || client.lost()).await;
            assert!(client.seen.borrow().lost.as_ref().unwrap().is_none());
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn start_tls_server_protocol_against_stream_client() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let accepted = std::rc::Rc::new(std::cell::RefCell::new(Vec::<Recorder>::new()));
            let acc = accepted.clone();
            let (server, port) = loopback_server(
                &lp,
                move || {
                    let r = Recorder::default();
                    acc.borrow_mut().push(r.clone());
                    r
                },
                ServerOptions::new(),
            )
            .await;
            let (reader, writer) = asyncio::streams::open_connection("127.0.0.1", port)
                .await
                .unwrap();
            writer.write(b"STARTTLS\n").unwrap();
            wait_until("STARTTLS", || {
                accepted.borrow().first().is_some_and(|r| r.len() == 9)
            })
            .await;
            // The server side upgrades in a task while the client does in this one.
            let rec = accepted.borrow()[0].clone();
            let plain = rec.transport();
            let echo = std::rc::Rc::new(std::cell::RefCell::new(Recorder {
                echo: false,
                ..rec.clone()
            }));
            let (lp2, ctx) = (lp.clone(), pki.server());
            let upgraded = lp
                .create_task(async move {
                    let t = lp2.start_tls(&plain, echo, &ctx, true, None).await.unwrap();
                    // Answer in plaintext terms over TLS.
                    t.write(b"welcome\n").unwrap();
                    t
                })
                .unwrap();
            writer
                .start_tls(&pki.client(), Some("localhost"))
                .await
                .unwrap();
            let server_tls = upgraded.await.unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"welcome\n");
            writer.write(b"over tls\n").unwrap();
            wait_until("the line", || rec.len() == 9 + 9).await;
            assert_eq!(&rec.seen.borrow().data[9..], b"over tls\n");
            assert!(matches!(
                server_tls.get_extra_info("cipher"),
                Some(ExtraInfo::Text(_))
            ));
            // The client closes: the server sees EOF (close_notify), then connection_lost.
            writer.close();
            wait_until("connection_lost", || rec.lost()).await;
            assert_eq!(rec.seen.borrow().eof, 1);
            server.close();
        })
    });
}

/// A buffered protocol with a small buffer, recording what arrives.
struct SmallBuffers {
    buf: [u8; 7],
    got: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
}

impl asyncio::BaseProtocol for SmallBuffers {}

impl asyncio::BufferedProtocol for SmallBuffers {
    fn get_buffer(&mut self, _size_hint: usize) -> &mut [u8] {
        &mut self.buf
    }
    fn buffer_updated(&mut self, nbytes: usize) {
        self.got.borrow_mut().extend_from_slice(&self.buf[..nbytes]);
    }
}

#[test]
fn buffered_protocol_over_tls() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let (server, port) =
                loopback_server(&lp, Recorder::echo, ServerOptions::new().ssl(pki.server())).await;
            let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let g = got.clone();
            let options = ConnectOptions::new()
                .ssl(pki.client())
                .server_hostname("localhost");
            let (t, _) = lp
                .create_connection_buffered(
                    move || SmallBuffers {
                        buf: [0; 7],
                        got: g,
                    },
                    Some("127.0.0.1"),
                    Some(port),
                    options,
                )
                .await
                .unwrap();
            let msg: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
            t.write(&msg).unwrap();
            wait_until("the echo", || got.borrow().len() == msg.len()).await;
            assert_eq!(*got.borrow(), msg);
            t.abort();
            server.close();
        })
    });
}

#[test]
fn streams_over_tls_tcp_and_unix() {
    watchdog(|| {
        run(|_lp| async move {
            let pki = Pki::new("CA");
            let dir = net_support::TempDir::new("tls-unix");
            let path = dir.join("sock");
            let tcp = asyncio::streams::start_server_with(
                echo_lines,
                &["127.0.0.1"],
                Some(0),
                1 << 16,
                ServerOptions::new().ssl(pki.server()),
            )
            .await
            .unwrap();
            let unix = asyncio::streams::start_unix_server_with(
                echo_lines,
                &path,
                1 << 16,
                ServerOptions::new().ssl(pki.server()),
            )
            .await
            .unwrap();
            let port = port_of(&tcp);
            let tcp_pair = asyncio::streams::open_connection_with(
                Some("localhost"),
                Some(port),
                1 << 16,
                ConnectOptions::new()
                    .ssl(pki.client())
                    .family(libc::AF_INET),
            )
            .await
            .unwrap();
            let unix_pair = asyncio::streams::open_unix_connection_with_options(
                &path,
                1 << 16,
                ConnectOptions::new()
                    .ssl(pki.client())
                    .server_hostname("localhost"),
            )
            .await
            .unwrap();
            for (reader, writer) in [&tcp_pair, &unix_pair] {
                writer.write(b"one\ntwo\n").unwrap();
                assert_eq!(reader.readline().await.unwrap(), b"one\n");
                assert_eq!(reader.readline().await.unwrap(), b"two\n");
                assert!(matches!(
                    writer.get_extra_info("peercert"),
                    Some(ExtraInfo::Bytes(_))
                ));
            }
            drop(tcp_pair);
            drop(unix_pair);
            tcp.close();
            unix.close();
            tcp.wait_closed().await.unwrap();
            unix.wait_closed().await.unwrap();
        })
    });
}

/// `futures::io::AsyncWrite` on a TLS stream: the writer has no direct path to the socket
/// (the TLS layer encrypts), so `poll_write` hands the bytes to the layer; large writes still
/// arrive whole and in order, with flow control.
#[test]
fn async_write_over_tls() {
    use futures::io::AsyncWriteExt;
    const LEN: usize = 3 << 20;
    let data: Vec<u8> = (0..LEN).map(|i| (i * 7 + i / 251) as u8).collect();
    watchdog(move || {
        run(move |_lp| async move {
            let pki = Pki::new("CA");
            let expected = data.clone();
            let server = asyncio::streams::start_server_with(
                move |reader: asyncio::streams::StreamReader,
                      mut writer: asyncio::streams::StreamWriter| {
                    let expected = expected.clone();
                    async move {
                        let got = reader.readexactly(LEN).await.unwrap();
                        let answer: &[u8] = if got == expected { b"same" } else { b"diff" };
                        writer.write_all(answer).await.unwrap();
                        writer.flush().await.unwrap();
                    }
                },
                &["127.0.0.1"],
                Some(0),
                1 << 16,
                ServerOptions::new().ssl(pki.server()),
            )
            .await
            .unwrap();
            let (reader, mut writer) = asyncio::streams::open_connection_with(
                Some("localhost"),
                Some(port_of(&server)),
                1 << 16,
                ConnectOptions::new()
                    .ssl(pki.client())
                    .family(libc::AF_INET),
            )
            .await
            .unwrap();
            for chunk in data.chunks(256 << 10) {
                writer.write_all(chunk).await.unwrap();
                assert!(writer.transport().get_write_buffer_size() <= 1 << 20);
            }
            writer.flush().await.unwrap();
            assert_eq!(reader.readexactly(4).await.unwrap(), b"same");
            drop((reader, writer));
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn transport_contract_over_tls() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let (server, port) =
                loopback_server(&lp, Recorder::echo, ServerOptions::new().ssl(pki.server())).await;
            let client = Recorder::default();
            let c = client.clone();
            let options = ConnectOptions::new()
                .ssl(pki.client())
                .server_hostname("localhost");
            let (t, _) = lp
                .create_connection(move || c, Some("127.0.0.1"), Some(port), options)
                .await
                .unwrap();
            // Water marks.
            t.set_write_buffer_limits(Some(100), None).unwrap();
            assert_eq!(t.get_write_buffer_limits(), (25, 100));
            assert!(t.set_write_buffer_limits(Some(1), Some(2)).is_err());
            assert_eq!(t.get_write_buffer_size(), 0);
            // Paused reading: the echo waits until resumed.
            t.pause_reading();
            assert!(!t.is_reading());
            t.write(b"while paused").unwrap();
            net_support::spin(50).await;
            assert_eq!(client.len(), 0, "no data while paused");
            t.resume_reading();
            assert!(t.is_reading());
            wait_until("the echo after resume", || client.len() == 12).await;
            // set_protocol: later data goes to the new protocol.
            assert!(t.get_protocol().is_some());
            let second = Recorder::default();
            t.set_protocol(std::rc::Rc::new(std::cell::RefCell::new(second.clone())));
            t.write(b"to the second").unwrap();
            wait_until("the second protocol's data", || second.len() == 13).await;
            assert_eq!(client.len(), 12);
            assert!(format!("{t:?}").starts_with("TlsTransport"), "{t:?}");
            t.close();
            // Writes after close are dropped.
            t.write(b"ignored").unwrap();
            wait_until("connection_lost", || second.lost()).await;
            assert!(
                !client.lost(),
                "the replaced protocol gets no connection_lost"
            );
            assert!(t.get_protocol().is_none());
            server.close();
        })
    });
}
