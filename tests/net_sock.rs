//! The loop's `sock_*` coroutines on nonblocking std and socket2 sockets.

mod net_support;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

use asyncio::{ErrorKind, EventLoop};
use net_support::{run, spin, watchdog};
use socket2::{Domain, Socket, Type};

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

#[test]
fn connect_accept_sendall_recv() {
    watchdog(|| {
        run(|lp: EventLoop| async move {
            let (l, addr) = listener();
            let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            client.set_nonblocking(true).unwrap();
            let lp2 = lp.clone();
            let accept = lp
                .create_task(async move { lp2.sock_accept(&l).await })
                .unwrap();
            lp.sock_connect(&client, addr).await.unwrap();
            let (conn, peer) = accept.await.unwrap().unwrap();
            assert_eq!(peer.as_socket(), client.local_addr().unwrap().as_socket());
            assert!(conn.nonblocking().unwrap());

            // 8 MiB does not fit in the socket buffers: sendall waits for writability while
            // the other side reads.
            let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
            let expected = data.clone();
            let lp3 = lp.clone();
            let sender = lp
                .create_task(async move {
                    lp3.sock_sendall(&client, &data).await.unwrap();
                    client.shutdown(std::net::Shutdown::Write).unwrap();
                    client
                })
                .unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = lp.sock_recv_into(&conn, &mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == expected);
            let client = sender.await.unwrap();
            lp.sock_sendall(&conn, b"bye").await.unwrap();
            assert_eq!(lp.sock_recv(&client, 10).await.unwrap(), b"bye");
            drop(conn);
            assert_eq!(lp.sock_recv(&client, 10).await.unwrap(), b"");
        })
    });
}

#[test]
fn recv_waits_and_cancel_removes_the_watcher() {
    watchdog(|| {
        run(|lp: EventLoop| async move {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            let a = std::rc::Rc::new(a);
            let (lp2, a2) = (lp.clone(), a.clone());
            let t = lp
                .create_task(async move { lp2.sock_recv(&*a2, 100).await })
                .unwrap();
            spin(5).await;
            assert!(!t.done());
            t.cancel();
            spin(3).await;
            // The reader was removed with the cancelled future: adding one again is a fresh
            // registration and removing it reports it was there.
            use std::os::fd::AsRawFd;
            assert!(!lp.remove_reader(a.as_raw_fd()).unwrap());
            // A later recv still works.
            let (lp3, a3) = (lp.clone(), a.clone());
            let t = lp
                .create_task(async move { lp3.sock_recv(&*a3, 100).await })
                .unwrap();
            spin(2).await;
            std::io::Write::write_all(&mut &b, b"ping").unwrap();
            assert_eq!(t.await.unwrap().unwrap(), b"ping");
        })
    });
}

#[test]
fn udp_sendto_recvfrom() {
    watchdog(|| {
        run(|lp: EventLoop| async move {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            let b_addr = b.local_addr().unwrap();
            let lp2 = lp.clone();
            let recv = lp
                .create_task(async move {
                    let r = lp2.sock_recvfrom(&b, 100).await;
                    (r, b)
                })
                .unwrap();
            spin(2).await;
            assert_eq!(lp.sock_sendto(&a, b"datagram", b_addr).await.unwrap(), 8);
            let (res, b) = recv.await.unwrap();
            let (data, from) = res.unwrap();
            assert_eq!(data, b"datagram");
            assert_eq!(from.as_socket(), Some(a.local_addr().unwrap()));
            // Truncation to the buffer size, as recvfrom does.
            lp.sock_sendto(&b, b"0123456789", a.local_addr().unwrap())
                .await
                .unwrap();
            let mut buf = [0u8; 4];
            let (n, _) = lp.sock_recvfrom_into(&a, &mut buf).await.unwrap();
            assert_eq!((n, &buf), (4, b"0123"));
        })
    });
}

#[test]
fn errors() {
    watchdog(|| {
        run(|lp: EventLoop| async move {
            // A blocking socket is refused, as asyncio does in debug mode.
            let (l, addr) = listener();
            let blocking = TcpStream::connect(addr).unwrap();
            let err = lp.sock_recv(&blocking, 1).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert_eq!(err.to_string(), "the socket must be non-blocking");
            drop(l);
            // A refused connection.
            let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            let err = lp.sock_connect(&s, addr).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io);
            assert_eq!(
                err.io_error_kind(),
                Some(std::io::ErrorKind::ConnectionRefused)
            );
        })
    });
}

#[test]
fn closed_loop() {
    let lp = EventLoop::new().unwrap();
    lp.close().unwrap();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let err = futures::executor::block_on(lp.sock_recv(&a, 1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}
