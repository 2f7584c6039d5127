//! Stream transports over TCP and Unix sockets: exchange, close, abort, EOF, flow control,
//! pause_reading, errors.

mod net_support;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use asyncio::{
    Address, ConnectOptions, ErrorKind, EventLoop, ExtraInfo, Server, ServerOptions, Transport,
};
use net_support::{connect_tcp, port_of, run, spin, wait_until, watchdog, Recorder, TempDir};

type Accepted = Rc<RefCell<Vec<Recorder>>>;

/// A TCP server on 127.0.0.1 whose protocols are `make()` clones, recorded in the list.
async fn tcp_server(lp: &EventLoop, make: Recorder) -> (Server, u16, Accepted) {
    let accepted: Accepted = Rc::default();
    let acc = accepted.clone();
    let server = lp
        .create_server(
            move || {
                let r = Recorder {
                    seen: Rc::default(),
                    ..make.clone()
                };
                acc.borrow_mut().push(r.clone());
                r
            },
            &["127.0.0.1"],
            Some(0),
            ServerOptions::new().backlog(512),
        )
        .await
        .unwrap();
    let port = port_of(&server);
    (server, port, accepted)
}

async fn connect(lp: &EventLoop, port: u16, proto: Recorder) -> Transport {
    connect_tcp(lp, port, proto).await.unwrap()
}

/// Whether `TCP_NODELAY` is set on a transport's socket.
fn nodelay(t: &Transport) -> bool {
    use std::os::fd::BorrowedFd;
    let fd = t.fd().expect("open transport");
    // SAFETY: the transport owns `fd` and stays open for the duration of this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    socket2::SockRef::from(&fd).tcp_nodelay().unwrap()
}

/// asyncio's socket transports set `TCP_NODELAY` on TCP sockets: connected, accepted, and
/// given as `sock=` (the family comes from the local address; Unix sockets have no such option).
#[test]
fn tcp_transports_set_nodelay_on_every_path() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port, accepted) = tcp_server(&lp, Recorder::default()).await;
            let client = connect(&lp, port, Recorder::default()).await;
            assert!(nodelay(&client), "create_connection");
            wait_until("accepted", || {
                accepted
                    .borrow()
                    .first()
                    .is_some_and(|r| r.seen.borrow().transport.is_some())
            })
            .await;
            let srv = accepted.borrow()[0].transport();
            assert!(nodelay(&srv), "accepted by create_server");
            // A connected socket handed over with `sock=`, nodelay off at first.
            let sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            sock.set_nodelay(false).unwrap();
            let (t, _) = lp
                .create_connection(
                    Recorder::default,
                    None,
                    None,
                    ConnectOptions::new().sock(sock),
                )
                .await
                .unwrap();
            assert!(nodelay(&t), "sock=");
            for t in [client, srv, t] {
                t.close();
            }
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn tcp_connect_exchange_close() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port, accepted) = tcp_server(&lp, Recorder::echo()).await;
            let client = Recorder::default();
            let t = connect(&lp, port, client.clone()).await;
            assert!(client.seen.borrow().transport.as_ref().unwrap().ptr_eq(&t));
            let peer = t.peername().unwrap().as_inet().unwrap();
            assert_eq!(peer, SocketAddr::from(([127, 0, 0, 1], port)));
            assert!(matches!(
                t.get_extra_info("sockname"),
                Some(ExtraInfo::Address(_))
            ));
            assert!(matches!(t.get_extra_info("socket"), Some(ExtraInfo::Fd(fd)) if fd >= 0));
            assert_eq!(t.get_extra_info("nonsense"), None);
            t.write(b"hello ").unwrap();
            t.writelines([&b"wor"[..], b"ld"]).unwrap();
            wait_until("echo", || client.len() == 11).await;
            assert_eq!(client.seen.borrow().data, b"hello world");
            assert!(!t.is_closing());
            t.close();
            assert!(t.is_closing());
            t.close(); // idempotent
            wait_until("client lost", || client.lost()).await;
            assert!(client.seen.borrow().lost.as_ref().unwrap().is_none());
            assert_eq!(client.seen.borrow().lost_calls, 1);
            assert_eq!(t.fd(), None);
            // The server side sees EOF, returns false, and closes.
            let srv = accepted.borrow()[0].clone();
            wait_until("server lost", || srv.lost()).await;
            assert_eq!(srv.seen.borrow().eof, 1);
            assert_eq!(server.connection_count(), 0);
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn unix_connect_exchange_and_socket_file_removed() {
    watchdog(|| {
        let dir = TempDir::new("net");
        let p2 = dir.join("echo.sock");
        run(|lp| async move {
            let server = lp
                .create_unix_server(Recorder::echo, Some(&p2), ServerOptions::new())
                .await
                .unwrap();
            assert!(p2.exists());
            assert_eq!(
                server.sockets()[0].address,
                Some(Address::Unix(Some(p2.clone())))
            );
            let client = Recorder::default();
            let c2 = client.clone();
            let (t, _) = lp
                .create_unix_connection(move || c2, Some(&p2), None)
                .await
                .unwrap();
            t.write(b"over unix").unwrap();
            wait_until("echo", || client.len() == 9).await;
            assert_eq!(client.seen.borrow().data, b"over unix");
            server.close();
            assert!(!p2.exists(), "the socket file is removed on close");
            // The accepted connection outlives the listening socket.
            t.write(b"!").unwrap();
            wait_until("echo after close", || client.len() == 10).await;
            t.close();
            server.wait_closed().await.unwrap();
            // A stale socket file (a listener that went away) is replaced by a new server.
            let stale = std::os::unix::net::UnixListener::bind(&p2).unwrap();
            drop(stale);
            assert!(p2.exists());
            let s2 = lp
                .create_unix_server(Recorder::echo, Some(&p2), ServerOptions::new())
                .await
                .unwrap();
            s2.close();
            assert!(!p2.exists());
            s2.wait_closed().await.unwrap();
        });
        std::fs::remove_dir_all(dir.path()).unwrap();
    });
}

#[test]
fn connection_refused_is_an_io_error() {
    watchdog(|| {
        run(|lp| async move {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            drop(listener);
            let err = connect_tcp(&lp, port, Recorder::default())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io);
            assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
            assert_eq!(
                err.io_error_kind(),
                Some(std::io::ErrorKind::ConnectionRefused)
            );
            // Bad argument combinations.
            let err = lp
                .create_connection(Recorder::default, None, Some(1), ConnectOptions::new())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            let missing = std::env::temp_dir().join("asyncio-no-such-socket");
            let err = lp
                .create_unix_connection(Recorder::default, Some(&missing), None)
                .await
                .unwrap_err();
            assert_eq!(err.io_error_kind(), Some(std::io::ErrorKind::NotFound));
        })
    });
}

#[test]
fn eof_received_true_keeps_the_transport_half_open() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port, accepted) = tcp_server(
                &lp,
                Recorder {
                    keep_open: true,
                    ..Default::default()
                },
            )
            .await;
            let client = Recorder::default();
            let t = connect(&lp, port, client.clone()).await;
            assert!(t.can_write_eof());
            t.write(b"question").unwrap();
            t.write_eof();
            assert_eq!(
                t.write(b"late").unwrap_err().kind(),
                ErrorKind::InvalidState
            );
            wait_until("accepted", || !accepted.borrow().is_empty()).await;
            let srv = accepted.borrow()[0].clone();
            wait_until("server eof", || srv.seen.borrow().eof == 1).await;
            assert_eq!(srv.seen.borrow().data, b"question");
            spin(5).await;
            // Half-open: still not closed, and it can still answer.
            assert!(!srv.lost());
            assert!(!srv.transport().is_closing());
            srv.transport().write(b"answer").unwrap();
            wait_until("answer", || client.len() == 6).await;
            assert_eq!(client.seen.borrow().data, b"answer");
            srv.transport().close();
            wait_until("both lost", || srv.lost() && client.lost()).await;
            // The client got EOF and (returning false) closed itself.
            assert_eq!(client.seen.borrow().eof, 1);
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn write_after_close_and_abort_are_harmless() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port, accepted) = tcp_server(&lp, Recorder::default()).await;
            let client = Recorder::default();
            let t = connect(&lp, port, client.clone()).await;
            t.write(b"last words").unwrap();
            t.close();
            for _ in 0..20 {
                t.write(b"ignored").unwrap();
            }
            t.abort();
            wait_until("lost", || client.lost()).await;
            for _ in 0..20 {
                t.write(b"ignored").unwrap();
            }
            spin(3).await;
            assert_eq!(client.seen.borrow().lost_calls, 1);
            wait_until("server lost", || {
                accepted.borrow().first().is_some_and(Recorder::lost)
            })
            .await;
            assert_eq!(accepted.borrow()[0].seen.borrow().data, b"last words");
            // Abort drops the buffer and still calls connection_lost(None) once.
            let c2 = Recorder::default();
            let t2 = connect(&lp, port, c2.clone()).await;
            t2.abort();
            t2.abort();
            t2.close();
            wait_until("lost", || c2.lost()).await;
            assert!(c2.seen.borrow().lost.as_ref().unwrap().is_none());
            spin(3).await;
            assert_eq!(c2.seen.borrow().lost_calls, 1);
            server.close();
            server.close_clients();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn large_write_to_slow_reader_pauses_and_resumes_without_loss() {
    const TOTAL: usize = 64 * 1024 * 1024;
    watchdog(|| {
        run(|lp| async move {
            let (server, port, accepted) = tcp_server(&lp, Recorder::default()).await;
            let client = Recorder::default();
            let t = connect(&lp, port, client.clone()).await;
            wait_until("accepted", || !accepted.borrow().is_empty()).await;
            let srv = accepted.borrow()[0].clone();
            wait_until("server transport", || srv.seen.borrow().transport.is_some()).await;
            srv.transport().pause_reading();
            let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
            t.write(&data).unwrap();
            assert!(t.get_write_buffer_size() > 64 * 1024);
            assert_eq!(
                client.seen.borrow().paused,
                1,
                "pause_writing is synchronous"
            );
            // More writes while paused do not pause again.
            t.write(&data[..10]).unwrap();
            assert_eq!(client.seen.borrow().paused, 1);
            spin(10).await;
            assert_eq!(client.seen.borrow().resumed, 0, "the reader is paused");
            srv.transport().resume_reading();
            wait_until("all data", || srv.len() == TOTAL + 10).await;
            assert_eq!(client.seen.borrow().resumed, 1);
            assert_eq!(t.get_write_buffer_size(), 0);
            {
                let got = &srv.seen.borrow().data;
                assert!(got[..TOTAL] == data[..], "no byte lost or reordered");
                assert_eq!(&got[TOTAL..], &data[..10]);
            }
            t.close();
            wait_until("lost", || client.lost() && srv.lost()).await;
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn write_buffer_limits() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port, _acc) = tcp_server(&lp, Recorder::default()).await;
            let client = Recorder::default();
            let t = connect(&lp, port, client.clone()).await;
            assert_eq!(t.get_write_buffer_limits(), (16 * 1024, 64 * 1024));
            t.set_write_buffer_limits(Some(100), None).unwrap();
            assert_eq!(t.get_write_buffer_limits(), (25, 100));
            t.set_write_buffer_limits(None, Some(10)).unwrap();
            assert_eq!(t.get_write_buffer_limits(), (10, 40));
            let e = t.set_write_buffer_limits(Some(1), Some(2)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            t.close();
            server.close();
            server.close_clients();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn pause_reading_really_stops_reads() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port, accepted) = tcp_server(&lp, Recorder::default()).await;
            let client = Recorder::default();
            let t = connect(&lp, port, client.clone()).await;
            t.pause_reading();
            assert!(!t.is_reading());
            t.pause_reading();
            wait_until("accepted", || !accepted.borrow().is_empty()).await;
            let srv = accepted.borrow()[0].clone();
            wait_until("server transport", || srv.seen.borrow().transport.is_some()).await;
            srv.transport().write(b"queued while paused").unwrap();
            assert_eq!(srv.transport().get_write_buffer_size(), 0);
            // The bytes sit in the client's socket buffer; no readiness event delivers them.
            spin(20).await;
            assert_eq!(client.len(), 0);
            t.resume_reading();
            assert!(t.is_reading());
            wait_until("data", || client.len() == 19).await;
            assert_eq!(client.seen.borrow().data, b"queued while paused");
            t.close();
            server.close();
            server.close_clients();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn peer_reset_reports_the_error_to_connection_lost() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port, accepted) = tcp_server(&lp, Recorder::default()).await;
            let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            wait_until("accepted", || !accepted.borrow().is_empty()).await;
            let srv = accepted.borrow()[0].clone();
            let sock = socket2::Socket::from(stream);
            sock.set_linger(Some(std::time::Duration::ZERO)).unwrap();
            drop(sock); // RST
            wait_until("lost", || srv.lost()).await;
            let err = srv.seen.borrow_mut().lost.take().unwrap().unwrap();
            assert_eq!(err.kind(), ErrorKind::Io);
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
fn connect_with_existing_socket_and_local_addr() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port, _acc) = tcp_server(&lp, Recorder::echo()).await;
            // An existing connected socket.
            let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let client = Recorder::default();
            let c2 = client.clone();
            let (t, _) = lp
                .create_connection(move || c2, None, None, ConnectOptions::new().sock(stream))
                .await
                .unwrap();
            t.write(b"via sock").unwrap();
            wait_until("echo", || client.len() == 8).await;
            t.close();
            // sock plus host is refused.
            let s2 = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let e = lp
                .create_connection(
                    Recorder::default,
                    Some("127.0.0.1"),
                    Some(port),
                    ConnectOptions::new().sock(s2),
                )
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            // local_addr binds the client socket.
            let c3 = Recorder::default();
            let c4 = c3.clone();
            let (t3, _) = lp
                .create_connection(
                    move || c4,
                    Some("127.0.0.1"),
                    Some(port),
                    ConnectOptions::new().local_addr("127.0.0.1", 0),
                )
                .await
                .unwrap();
            let local = t3.sockname().unwrap().as_inet().unwrap();
            assert_eq!(local.ip(), std::net::IpAddr::from([127, 0, 0, 1]));
            t3.close();
            // connect_accepted_socket wraps a socket accepted elsewhere.
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let lport = l.local_addr().unwrap().port();
            let (t4, _) = lp
                .create_connection(
                    Recorder::default,
                    Some("127.0.0.1"),
                    Some(lport),
                    ConnectOptions::new(),
                )
                .await
                .unwrap();
            let (accepted, _) = l.accept().unwrap();
            let r = Recorder::default();
            let r2 = r.clone();
            let (t5, _) = lp
                .connect_accepted_socket(move || r2, accepted)
                .await
                .unwrap();
            t4.write(b"ping").unwrap();
            wait_until("accepted data", || r.len() == 4).await;
            t4.close();
            t5.close();
            server.close();
            server.close_clients();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn set_protocol_switches_where_later_events_go() {
    watchdog(|| {
        run(|lp| async move {
            let (server, port, _accepted) = tcp_server(&lp, Recorder::echo()).await;
            let first = Recorder::default();
            let t = connect(&lp, port, first.clone()).await;
            assert!(t.get_protocol().is_some());
            t.write(b"one").unwrap();
            wait_until("first echo", || first.len() == 3).await;
            let second = Recorder::default();
            t.set_protocol(std::rc::Rc::new(std::cell::RefCell::new(second.clone())));
            t.write(b"two").unwrap();
            wait_until("second echo", || second.len() == 3).await;
            assert_eq!(first.seen.borrow().data, b"one");
            assert_eq!(second.seen.borrow().data, b"two");
            // The new protocol got no connection_made; connection_lost goes to it alone.
            assert!(second.seen.borrow().transport.is_none());
            t.close();
            wait_until("lost", || second.lost()).await;
            assert!(!first.lost());
            assert!(t.get_protocol().is_none());
            server.close();
            server.close_clients();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn closing_the_loop_right_after_close_releases_the_protocol() {
    watchdog(|| {
        let lp = EventLoop::new().unwrap();
        let lp2 = lp.clone();
        let (mine, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        // The recorder keeps its transport (a cycle until the transport is finalized); the loop
        // closes before `connection_lost` had its iteration.
        let seen = lp
            .run_until_complete(async move {
                let (t, p) = lp2
                    .connect_accepted_socket(Recorder::default, mine)
                    .await
                    .unwrap();
                assert!(p.borrow().seen.borrow().transport.is_some());
                t.close();
                let seen = std::rc::Rc::downgrade(&p.borrow().seen);
                seen
            })
            .unwrap();
        lp.close().unwrap();
        assert!(seen.upgrade().is_none(), "protocol leaked");
    });
}

#[test]
fn fd_watchers_on_a_transports_socket_are_refused_while_it_is_open() {
    // asyncio's `_ensure_fd_no_transport`: "File descriptor N is used by transport ...". A
    // user reader must not silently replace the transport's own watcher.
    watchdog(|| {
        run(|lp| async move {
            let (server, port, _accepted) = tcp_server(&lp, Recorder::echo()).await;
            let client = Recorder::default();
            let t = connect(&lp, port, client.clone()).await;
            let fd = t.fd().unwrap();
            let refused = [
                lp.add_reader(fd, || {}).map(|_| ()),
                lp.add_writer(fd, || {}).map(|_| ()),
                lp.remove_reader(fd).map(|_| ()),
                lp.remove_writer(fd).map(|_| ()),
            ];
            for r in refused {
                let e = r.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::InvalidState);
                assert!(
                    e.message()
                        .starts_with(&format!("File descriptor {fd} is used by transport")),
                    "{e}"
                );
            }
            // The transport still reads: the echo comes back.
            t.write(b"still mine").unwrap();
            wait_until("echo", || client.len() == 10).await;
            // A closing transport gives its fd up (asyncio checks `is_closing()`).
            t.close();
            assert!(!lp.remove_writer(fd).unwrap());
            wait_until("client lost", || client.lost()).await;
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}
