//! Server semantics (R65-R68) and many concurrent connections.

mod net_support;

use std::cell::RefCell;
use std::rc::Rc;

use asyncio::{Address, ConnectOptions, ErrorKind, EventLoop, Server, ServerOptions, Transport};
use net_support::{connect_tcp, port_of, run, spin, wait_until, watchdog, Recorder};

async fn echo_server(lp: &EventLoop, options: ServerOptions) -> Server {
    lp.create_server(Recorder::echo, &["127.0.0.1"], Some(0), options)
        .await
        .unwrap()
}

async fn connect(lp: &EventLoop, port: u16) -> (Transport, Recorder) {
    let r = Recorder::default();
    let t = connect_tcp(lp, port, r.clone()).await.unwrap();
    (t, r)
}

#[test]
fn close_keeps_existing_connections_and_wait_closed_waits_for_them() {
    watchdog(|| {
        run(|lp| async move {
            let server = echo_server(&lp, ServerOptions::new()).await;
            assert!(server.is_serving());
            assert!(server.get_loop().ptr_eq(&lp));
            let port = port_of(&server);
            let (t, client) = connect(&lp, port).await;
            wait_until("attached", || server.connection_count() == 1).await;
            // wait_closed blocks while the server is open.
            let s2 = server.clone();
            let waiter = lp
                .create_task(async move { s2.wait_closed().await })
                .unwrap();
            spin(5).await;
            assert!(!waiter.done());
            server.close();
            server.close(); // idempotent
            assert!(!server.is_serving());
            assert!(server.sockets().is_empty());
            // New connections are refused ...
            let err = connect_tcp(&lp, port, Recorder::default())
                .await
                .unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
            // ... the existing one still works, and wait_closed waits for it.
            t.write(b"still here").unwrap();
            wait_until("echo", || client.len() == 10).await;
            spin(5).await;
            assert!(!waiter.done());
            t.close();
            waiter.await.unwrap().unwrap();
            assert_eq!(server.connection_count(), 0);
            // Afterwards wait_closed returns at once.
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn close_clients_and_abort_clients_unblock_wait_closed() {
    watchdog(|| {
        run(|lp| async move {
            for abort in [false, true] {
                let server = echo_server(&lp, ServerOptions::new()).await;
                let port = port_of(&server);
                let mut clients = Vec::new();
                for _ in 0..3 {
                    clients.push(connect(&lp, port).await);
                }
                wait_until("attached", || server.connection_count() == 3).await;
                server.close();
                if abort {
                    server.abort_clients();
                } else {
                    server.close_clients();
                }
                server.wait_closed().await.unwrap();
                for (_, c) in &clients {
                    wait_until("client lost", || c.lost()).await;
                }
            }
        })
    });
}

#[test]
fn start_serving_false_and_serve_forever() {
    watchdog(|| {
        run(|lp| async move {
            let server = echo_server(&lp, ServerOptions::new().start_serving(false)).await;
            assert!(!server.is_serving());
            let port = port_of(&server);
            let s2 = server.clone();
            let forever = lp
                .create_task(async move { s2.serve_forever().await })
                .unwrap();
            spin(2).await;
            assert!(server.is_serving());
            let err = server.serve_forever().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidState);
            assert!(err
                .to_string()
                .contains("already being awaited on serve_forever()"));
            let (t, c) = connect(&lp, port).await;
            t.write(b"x").unwrap();
            wait_until("echo", || c.len() == 1).await;
            t.close();
            server.close();
            let res = forever.await.unwrap();
            assert_eq!(res.unwrap_err().kind(), ErrorKind::Cancelled);
            let err = server.serve_forever().await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidState);
            assert!(err.to_string().contains("is closed"));
            // start_serving then close without serve_forever.
            let s3 = echo_server(&lp, ServerOptions::new().start_serving(false)).await;
            s3.start_serving().unwrap();
            assert!(s3.is_serving());
            s3.close();
            s3.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn two_hundred_concurrent_connections_on_one_loop() {
    const N: usize = 200;
    watchdog(|| {
        run(|lp| async move {
            let server = echo_server(&lp, ServerOptions::new().backlog(1024)).await;
            let port = port_of(&server);
            let done = Rc::new(RefCell::new(0usize));
            let mut tasks = Vec::new();
            for i in 0..N {
                let lp2 = lp.clone();
                let done = done.clone();
                tasks.push(
                    lp.create_task(async move {
                        let (t, c) = connect(&lp2, port).await;
                        let msg = format!("message {i:04}").into_bytes();
                        t.write(&msg).unwrap();
                        wait_until("echo", || c.len() == msg.len()).await;
                        assert_eq!(c.seen.borrow().data, msg);
                        t.close();
                        wait_until("lost", || c.lost()).await;
                        *done.borrow_mut() += 1;
                    })
                    .unwrap(),
                );
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(*done.borrow(), N);
            wait_until("server side closed", || server.connection_count() == 0).await;
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn several_hosts_existing_socket_reuse_port_and_bind_errors() {
    watchdog(|| {
        run(|lp| async move {
            let server = lp
                .create_server(
                    Recorder::echo,
                    &["127.0.0.1", "localhost"],
                    Some(0),
                    ServerOptions::new(),
                )
                .await;
            // "localhost" may also give 127.0.0.1 on the same ephemeral port 0: each address is
            // bound once; the duplicates are dropped.
            if let Ok(s) = server {
                assert!(!s.sockets().is_empty());
                s.close();
            }
            // An existing listening socket.
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            let s = lp
                .create_server(Recorder::echo, &[], None, ServerOptions::new().sock(l))
                .await
                .unwrap();
            let (t, c) = connect(&lp, port).await;
            t.write(b"sock").unwrap();
            wait_until("echo", || c.len() == 4).await;
            t.close();
            // The port is taken: binding again fails with EADDRINUSE (no reuse_port).
            let err = lp
                .create_server(
                    Recorder::echo,
                    &["127.0.0.1"],
                    Some(port),
                    ServerOptions::new(),
                )
                .await
                .unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
            assert!(err.to_string().contains("error while attempting to bind"));
            s.close();
            s.close_clients();
            s.wait_closed().await.unwrap();
            // reuse_port lets two servers share a port.
            let a = lp
                .create_server(
                    Recorder::echo,
                    &["127.0.0.1"],
                    Some(0),
                    ServerOptions::new().reuse_port(true),
                )
                .await
                .unwrap();
            let b = lp
                .create_server(
                    Recorder::echo,
                    &["127.0.0.1"],
                    Some(port_of(&a)),
                    ServerOptions::new().reuse_port(true),
                )
                .await
                .unwrap();
            a.close();
            b.close();
            a.wait_closed().await.unwrap();
            b.wait_closed().await.unwrap();
        })
    });
}

/// A buffered echo protocol: reads into its own small buffer and writes each chunk back.
struct BufferedEcho {
    transport: Option<Transport>,
    buf: Vec<u8>,
}

impl asyncio::BaseProtocol for BufferedEcho {}

impl asyncio::BufferedProtocol for BufferedEcho {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }
    fn get_buffer(&mut self, _size_hint: usize) -> &mut [u8] {
        &mut self.buf
    }
    fn buffer_updated(&mut self, nbytes: usize) {
        if let Some(t) = &self.transport {
            t.write(&self.buf[..nbytes]).unwrap();
        }
    }
}

#[test]
fn a_buffered_protocol_server_echoes_through_its_own_buffer() {
    watchdog(|| {
        run(|lp| async move {
            let server = lp
                .create_server_buffered(
                    || BufferedEcho {
                        transport: None,
                        buf: vec![0; 7], // smaller than the message: several reads
                    },
                    &["127.0.0.1"],
                    Some(0),
                    ServerOptions::new(),
                )
                .await
                .unwrap();
            let port = match &server.sockets()[0].address {
                Some(Address::Inet(a)) => a.port(),
                other => panic!("unexpected address {other:?}"),
            };
            let client = Recorder::default();
            let (t, _) = lp
                .create_connection(
                    {
                        let c = client.clone();
                        move || c
                    },
                    Some("127.0.0.1"),
                    Some(port),
                    ConnectOptions::new(),
                )
                .await
                .unwrap();
            let msg = b"hello through a seven-byte buffer";
            t.write(msg).unwrap();
            wait_until("echo", || client.len() == msg.len()).await;
            assert_eq!(&client.seen.borrow().data[..], &msg[..]);
            t.close();
            server.close();
            server.close_clients();
            server.wait_closed().await.unwrap();
        })
    });
}
