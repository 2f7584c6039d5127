//! Datagram endpoints (`create_datagram_endpoint`): UDP with and without name resolution, Unix
//! datagram sockets (bound, connected, unnamed), the `sock` option, and argument errors.

mod net_support;

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use asyncio::{
    Address, BaseProtocol, DatagramOptions, DatagramProtocol, DatagramTransport, Error, ErrorKind,
    EventLoop, ExtraInfo,
};
use net_support::{run, wait_until, watchdog, TempDir};

/// A datagram protocol that records what happens to it; with `echo` it sends every datagram
/// back to its sender and records the `Err`s `sendto` returns.
#[derive(Debug, Default)]
struct Dgram {
    transport: Option<DatagramTransport>,
    got: Vec<(Vec<u8>, Address)>,
    errors: Vec<Error>,
    echo_errors: Vec<Error>,
    lost: bool,
    echo: bool,
}

impl Dgram {
    fn echo() -> Dgram {
        Dgram {
            echo: true,
            ..Default::default()
        }
    }
}

impl BaseProtocol for Dgram {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        self.lost = true;
    }
}

impl DatagramProtocol for Dgram {
    fn connection_made(&mut self, transport: DatagramTransport) {
        self.transport = Some(transport);
    }
    fn datagram_received(&mut self, data: &[u8], addr: Address) {
        self.got.push((data.to_vec(), addr.clone()));
        if self.echo {
            let t = self.transport.clone().unwrap();
            if let Err(e) = t.sendto(data, addr) {
                self.echo_errors.push(e);
            }
        }
    }
    fn error_received(&mut self, exc: Error) {
        self.errors.push(exc);
    }
}

type Endpoint = (DatagramTransport, std::rc::Rc<std::cell::RefCell<Dgram>>);

async fn endpoint(lp: &EventLoop, factory: fn() -> Dgram, options: DatagramOptions) -> Endpoint {
    lp.create_datagram_endpoint(factory, options).await.unwrap()
}

async fn endpoint_err(lp: &EventLoop, options: DatagramOptions) -> Error {
    lp.create_datagram_endpoint(Dgram::default, options)
        .await
        .unwrap_err()
}

fn inet(t: &DatagramTransport) -> SocketAddr {
    t.sockname().and_then(|a| a.as_inet()).unwrap()
}

fn unix(path: &Path) -> Address {
    Address::Unix(Some(path.to_path_buf()))
}

fn extra_address(t: &DatagramTransport, name: &str) -> Option<Address> {
    match t.get_extra_info(name) {
        Some(ExtraInfo::Address(a)) => Some(a),
        None => None,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn udp_echo_and_connected_endpoint() {
    watchdog(|| {
        run(|lp| async move {
            let options = DatagramOptions::new().local_addr(("127.0.0.1", 0));
            let (st, sp) = endpoint(&lp, Dgram::echo, options).await;
            let server_addr = inet(&st);
            let options = DatagramOptions::new().remote_addr(server_addr);
            let (ct, cp) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(extra_address(&ct, "peername"), Some(server_addr.into()));
            assert_eq!(extra_address(&st, "peername"), None);
            ct.sendto(b"one", None).unwrap();
            ct.sendto(b"two", server_addr).unwrap();
            let other: SocketAddr = "127.0.0.1:9".parse().unwrap();
            let err = ct.sendto(b"x", other).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert_eq!(
                err.to_string(),
                format!("Invalid address: must be None or {server_addr}")
            );
            wait_until("echoes", || cp.borrow().got.len() == 2).await;
            let got: Vec<Vec<u8>> = cp.borrow().got.iter().map(|(d, _)| d.clone()).collect();
            assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
            assert_eq!(cp.borrow().got[0].1, Address::Inet(server_addr));
            assert_eq!(sp.borrow().got.len(), 2);
            assert_eq!(sp.borrow().got[0].1, ct.sockname().unwrap());
            ct.close();
            st.close();
            assert!(ct.is_closing());
            wait_until("lost", || cp.borrow().lost && sp.borrow().lost).await;
            ct.sendto(b"after close", None).unwrap();
            // Unconnected endpoints need an address.
            let options = DatagramOptions::new().local_addr(("127.0.0.1", 0));
            let (u, _) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(
                u.sendto(b"x", None).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
            u.abort();
        })
    });
}

#[test]
fn udp_host_names_are_resolved() {
    watchdog(|| {
        run(|lp| async move {
            let options = DatagramOptions::new().local_addr(("localhost", 0));
            let (st, sp) = endpoint(&lp, Dgram::echo, options).await;
            let server_addr = inet(&st);
            assert!(server_addr.ip().is_loopback(), "{server_addr}");
            let family = if server_addr.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            // Both addresses resolved and paired by family; the family option filters.
            let options = DatagramOptions::new()
                .local_addr(("localhost", 0))
                .remote_addr(("localhost", server_addr.port()))
                .family(family);
            let (ct, cp) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(extra_address(&ct, "peername"), Some(server_addr.into()));
            assert!(inet(&ct).ip().is_loopback());
            ct.sendto(b"resolved", None).unwrap();
            wait_until("echo", || cp.borrow().got.len() == 1).await;
            assert_eq!(cp.borrow().got[0].0, b"resolved");
            assert_eq!(sp.borrow().got[0].1, ct.sockname().unwrap());
            // A name that does not resolve is the resolver's I/O error.
            let options = DatagramOptions::new().remote_addr(("no-such-host.invalid", 9));
            assert_eq!(endpoint_err(&lp, options).await.kind(), ErrorKind::Io);
            ct.close();
            st.close();
            wait_until("lost", || cp.borrow().lost && sp.borrow().lost).await;
        })
    });
}

#[test]
fn udp_broadcast_and_reuse_port_options() {
    watchdog(|| {
        run(|lp| async move {
            let options = DatagramOptions::new()
                .local_addr(("127.0.0.1", 0))
                .reuse_port(true);
            let (st, sp) = endpoint(&lp, Dgram::default, options).await;
            let server_addr = inet(&st);
            // A second socket may bind the same port with SO_REUSEPORT.
            let options = DatagramOptions::new()
                .local_addr(server_addr)
                .reuse_port(true);
            let (twin, tp) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(inet(&twin), server_addr);
            // Closed for good (its socket too) before anything is sent to the shared port.
            twin.close();
            wait_until("twin closed", || tp.borrow().lost && twin.fd().is_none()).await;
            // allow_broadcast: the socket is not connected, remote_addr is the default
            // destination.
            let options = DatagramOptions::new()
                .remote_addr(server_addr)
                .allow_broadcast(true);
            let (ct, _) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(ct.peername(), None);
            ct.sendto(b"to the default destination", None).unwrap();
            let other: SocketAddr = "127.0.0.1:9".parse().unwrap();
            assert_eq!(
                ct.sendto(b"x", other).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
            wait_until("datagram", || sp.borrow().got.len() == 1).await;
            assert_eq!(sp.borrow().got[0].0, b"to the default destination");
            ct.close();
            st.close();
        })
    });
}

#[test]
fn unix_datagram_echo_between_bound_paths() {
    watchdog(|| {
        let dir = TempDir::new("dgram");
        let (server_path, client_path) = (dir.join("server.sock"), dir.join("client.sock"));
        run(|lp| async move {
            let options = DatagramOptions::new().local_addr(server_path.as_path());
            let (st, sp) = endpoint(&lp, Dgram::echo, options).await;
            assert!(server_path.exists());
            assert_eq!(extra_address(&st, "sockname"), Some(unix(&server_path)));
            assert_eq!(extra_address(&st, "peername"), None);
            // A client bound to its own path, not connected: it names the server per datagram.
            let options = DatagramOptions::new().local_addr(client_path.clone());
            let (ct, cp) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(ct.sockname(), Some(unix(&client_path)));
            assert_eq!(ct.peername(), None);
            ct.sendto(b"ping", server_path.as_path()).unwrap();
            ct.sendto(b"pong", unix(&server_path)).unwrap();
            wait_until("echoes", || cp.borrow().got.len() == 2).await;
            assert_eq!(
                cp.borrow().got,
                [
                    (b"ping".to_vec(), unix(&server_path)),
                    (b"pong".to_vec(), unix(&server_path))
                ]
            );
            assert_eq!(sp.borrow().got[0].1, unix(&client_path));
            assert!(sp.borrow().echo_errors.is_empty());
            // Sending to a path where no socket is: error_received, the endpoint goes on.
            let missing = server_path.with_file_name("missing.sock");
            ct.sendto(b"lost", missing.as_path()).unwrap();
            wait_until("error", || !cp.borrow().errors.is_empty()).await;
            let err = cp.borrow().errors[0].clone();
            assert_eq!(err.io_error_kind(), Some(std::io::ErrorKind::NotFound));
            assert!(!ct.is_closing());
            ct.sendto(b"still here", server_path.as_path()).unwrap();
            wait_until("echo", || cp.borrow().got.len() == 3).await;
            ct.close();
            st.close();
            wait_until("lost", || cp.borrow().lost && sp.borrow().lost).await;
            // As in asyncio, the endpoint leaves its socket file.
            assert!(server_path.exists());
        });
    });
}

#[test]
fn unix_datagram_connected_and_unnamed_clients() {
    watchdog(|| {
        let dir = TempDir::new("dgram");
        let server_path = dir.join("server.sock");
        run(|lp| async move {
            let options = DatagramOptions::new().local_addr(server_path.clone());
            let (st, sp) = endpoint(&lp, Dgram::echo, options).await;
            // remote_addr only: connected, and unnamed.
            let options = DatagramOptions::new().remote_addr(server_path.clone());
            let (ct, cp) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(extra_address(&ct, "peername"), Some(unix(&server_path)));
            assert_eq!(extra_address(&ct, "sockname"), Some(Address::Unix(None)));
            ct.sendto(b"from nobody", None).unwrap();
            wait_until("datagram", || sp.borrow().got.len() == 1).await;
            assert_eq!(
                sp.borrow().got[0],
                (b"from nobody".to_vec(), Address::Unix(None))
            );
            // The server cannot answer an unnamed socket: sendto returns the error.
            let err = sp.borrow().echo_errors[0].clone();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert!(err.to_string().contains("unnamed"), "{err}");
            assert!(sp.borrow().errors.is_empty());
            assert!(!st.is_closing());
            // A connected endpoint refuses other paths.
            let other = dir.join("other.sock");
            assert_eq!(
                ct.sendto(b"x", other).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
            // An unnamed, unconnected socket from the family alone can send to any path.
            let options = DatagramOptions::new().family(libc::AF_UNIX);
            let (ut, _) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(ut.sockname(), Some(Address::Unix(None)));
            ut.sendto(b"family only", server_path.as_path()).unwrap();
            wait_until("datagram", || sp.borrow().got.len() == 2).await;
            assert_eq!(sp.borrow().echo_errors.len(), 2);
            ut.close();
            // Once the server is gone, the connected client's sends fail in error_received.
            st.close();
            wait_until("server closed", || sp.borrow().lost && st.fd().is_none()).await;
            ct.sendto(b"anyone?", None).unwrap();
            wait_until("error", || !cp.borrow().errors.is_empty()).await;
            let err = cp.borrow().errors[0].clone();
            assert_eq!(
                err.io_error_kind(),
                Some(std::io::ErrorKind::ConnectionRefused),
                "{err}"
            );
            assert!(!ct.is_closing());
            ct.close();
            wait_until("client lost", || cp.borrow().lost).await;
        });
    });
}

#[test]
fn unix_datagram_stale_socket_removed_regular_file_kept() {
    watchdog(|| {
        let dir = TempDir::new("dgram");
        let path = dir.join("stale.sock");
        let file = dir.join("file");
        run(|lp| async move {
            // A socket file whose socket is gone.
            drop(UnixDatagram::bind(&path).unwrap());
            assert!(path.exists());
            let options = DatagramOptions::new().local_addr(path.clone());
            let (st, sp) = endpoint(&lp, Dgram::echo, options).await;
            // The new socket answers at that path.
            let client = UnixDatagram::unbound().unwrap();
            client.set_nonblocking(true).unwrap();
            lp.sock_sendto(&client, b"fresh", socket2::SockAddr::unix(&path).unwrap())
                .await
                .unwrap();
            wait_until("datagram", || sp.borrow().got.len() == 1).await;
            st.close();
            // A regular file is not removed: binding there fails.
            std::fs::write(&file, b"keep me").unwrap();
            let options = DatagramOptions::new().local_addr(file.clone());
            let err = endpoint_err(&lp, options).await;
            assert_eq!(err.kind(), ErrorKind::Io);
            assert_eq!(err.io_error_kind(), Some(std::io::ErrorKind::AddrInUse));
            assert!(
                err.to_string().contains("error while attempting to bind"),
                "{err}"
            );
            assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
            // Connecting to a path where nothing is bound.
            let options = DatagramOptions::new().remote_addr(dir.join("nothing.sock"));
            let err = endpoint_err(&lp, options).await;
            assert_eq!(err.io_error_kind(), Some(std::io::ErrorKind::NotFound));
        });
    });
}

#[test]
fn argument_errors_are_invalid_argument() {
    watchdog(|| {
        let dir = TempDir::new("dgram");
        let path = dir.join("never.sock");
        run(|lp| async move {
            let v4: SocketAddr = "127.0.0.1:9".parse().unwrap();
            let v6: SocketAddr = "[::1]:9".parse().unwrap();
            let bad = [
                ("no address", DatagramOptions::new()),
                (
                    "unix and inet",
                    DatagramOptions::new()
                        .local_addr(path.clone())
                        .remote_addr(v4),
                ),
                (
                    "inet and unix",
                    DatagramOptions::new()
                        .local_addr(("127.0.0.1", 0))
                        .remote_addr(path.clone()),
                ),
                (
                    "v4 and v6",
                    DatagramOptions::new()
                        .local_addr(("127.0.0.1", 0))
                        .remote_addr(v6),
                ),
                (
                    "family and address",
                    DatagramOptions::new()
                        .remote_addr(v4)
                        .family(libc::AF_INET6),
                ),
                (
                    "inet family and path",
                    DatagramOptions::new()
                        .local_addr(path.clone())
                        .family(libc::AF_INET),
                ),
                (
                    "unix family and host",
                    DatagramOptions::new()
                        .remote_addr(("localhost", 9))
                        .family(libc::AF_UNIX),
                ),
                (
                    "sock and address",
                    DatagramOptions::new()
                        .sock(UdpSocket::bind("127.0.0.1:0").unwrap())
                        .local_addr(("127.0.0.1", 0)),
                ),
                (
                    "sock and option",
                    DatagramOptions::new()
                        .sock(UdpSocket::bind("127.0.0.1:0").unwrap())
                        .allow_broadcast(true),
                ),
                (
                    "stream sock",
                    DatagramOptions::new()
                        .sock(std::net::TcpListener::bind("127.0.0.1:0").unwrap()),
                ),
            ];
            for (what, options) in bad {
                let err = endpoint_err(&lp, options).await;
                assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{what}: {err}");
            }
            assert!(!path.exists(), "no socket file was made");
        });
    });
}

#[test]
fn sock_option_uses_an_existing_socket() {
    watchdog(|| {
        run(|lp| async move {
            // A bound (blocking) UDP socket: the endpoint makes it nonblocking and serves on it.
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let server_addr = udp.local_addr().unwrap();
            let options = DatagramOptions::new().sock(udp);
            let (st, sp) = endpoint(&lp, Dgram::echo, options).await;
            assert_eq!(inet(&st), server_addr);
            assert!(matches!(
                st.get_extra_info("socket"),
                Some(ExtraInfo::Fd(_))
            ));
            // A connected UDP socket sends to its peer by default.
            let connected = UdpSocket::bind("127.0.0.1:0").unwrap();
            connected.connect(server_addr).unwrap();
            let options = DatagramOptions::new().sock(connected);
            let (ct, cp) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(ct.peername(), Some(server_addr.into()));
            ct.sendto(b"via sock", None).unwrap();
            wait_until("echo", || cp.borrow().got.len() == 1).await;
            assert_eq!(cp.borrow().got[0].0, b"via sock");
            assert_eq!(sp.borrow().got[0].1, ct.sockname().unwrap());
            // A connected Unix datagram pair: the peer is unnamed, yet `None` reaches it.
            let (mine, theirs) = UnixDatagram::pair().unwrap();
            theirs.set_nonblocking(true).unwrap();
            let options = DatagramOptions::new().sock(mine);
            let (pt, pp) = endpoint(&lp, Dgram::default, options).await;
            assert_eq!(pt.peername(), Some(Address::Unix(None)));
            pt.sendto(b"to the pair", None).unwrap();
            let got = lp.sock_recv(&theirs, 64).await.unwrap();
            assert_eq!(got, b"to the pair");
            lp.sock_sendall(&theirs, b"back").await.unwrap();
            wait_until("datagram", || pp.borrow().got.len() == 1).await;
            assert_eq!(pp.borrow().got[0], (b"back".to_vec(), Address::Unix(None)));
            for t in [st, ct, pt] {
                t.close();
            }
        })
    });
}

#[test]
fn closing_the_loop_right_after_close_releases_the_protocol() {
    watchdog(|| {
        let lp = EventLoop::new().unwrap();
        let lp2 = lp.clone();
        // The protocol keeps its transport (a cycle until the transport is finalized); the loop
        // closes before `connection_lost` and the finalization had their iterations.
        let protocol = lp
            .run_until_complete(async move {
                let options = DatagramOptions::new().local_addr(("127.0.0.1", 0));
                let (t, p) = endpoint(&lp2, Dgram::default, options).await;
                assert!(p.borrow().transport.is_some());
                t.close();
                std::rc::Rc::downgrade(&p)
            })
            .unwrap();
        lp.close().unwrap();
        assert!(protocol.upgrade().is_none(), "protocol leaked");
    });
}
