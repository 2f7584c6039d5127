//! Name resolution and buffered protocols (datagram endpoints are in `net_datagram`).

mod net_support;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use asyncio::{
    AddrInfoHints, BaseProtocol, BufferedProtocol, ConnectOptions, ErrorKind, ServerOptions,
    Transport,
};
use net_support::{run, wait_until, watchdog, Recorder};

#[test]
fn getaddrinfo_numeric_and_system() {
    watchdog(|| {
        run(|lp| async move {
            let stream = AddrInfoHints {
                socktype: libc::SOCK_STREAM,
                ..Default::default()
            };
            let v4 = lp
                .getaddrinfo(Some("127.0.0.1"), Some(8080), stream)
                .await
                .unwrap();
            assert_eq!(v4.len(), 1);
            assert_eq!(v4[0].family, libc::AF_INET);
            assert_eq!(v4[0].protocol, libc::IPPROTO_TCP);
            assert_eq!(v4[0].addr, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
            let v6 = lp.getaddrinfo(Some("::1"), Some(1), stream).await.unwrap();
            assert_eq!(v6[0].family, libc::AF_INET6);
            // Through the system resolver (a thread): localhost and the passive wildcard.
            let local = lp
                .getaddrinfo(Some("localhost"), Some(80), stream)
                .await
                .unwrap();
            assert!(local.iter().all(|i| i.addr.ip().is_loopback()));
            let passive = AddrInfoHints {
                flags: libc::AI_PASSIVE,
                family: libc::AF_INET,
                ..stream
            };
            let any = lp.getaddrinfo(None, Some(0), passive).await.unwrap();
            assert!(any.iter().any(|i| i.addr.ip().is_unspecified()));
            let bad = lp
                .getaddrinfo(Some("no-such-host.invalid"), Some(80), stream)
                .await
                .unwrap_err();
            assert_eq!(bad.kind(), ErrorKind::Io);
            let (host, port) = lp
                .getnameinfo(
                    "127.0.0.1:80".parse().unwrap(),
                    libc::NI_NUMERICHOST | libc::NI_NUMERICSERV,
                )
                .await
                .unwrap();
            assert_eq!((host.as_str(), port.as_str()), ("127.0.0.1", "80"));
        })
    });
}

/// A buffered protocol that reads into a small fixed buffer.
struct Chunks {
    buf: [u8; 7],
    data: Rc<RefCell<Vec<u8>>>,
    reads: Rc<RefCell<usize>>,
    _transport: Option<Transport>,
}

impl BaseProtocol for Chunks {}

impl BufferedProtocol for Chunks {
    fn connection_made(&mut self, transport: Transport) {
        self._transport = Some(transport);
    }
    fn get_buffer(&mut self, size_hint: usize) -> &mut [u8] {
        assert!(size_hint > 0);
        &mut self.buf
    }
    fn buffer_updated(&mut self, nbytes: usize) {
        self.data
            .borrow_mut()
            .extend_from_slice(&self.buf[..nbytes]);
        *self.reads.borrow_mut() += 1;
    }
}

#[test]
fn buffered_protocol_reads_into_its_own_buffer() {
    watchdog(|| {
        run(|lp| async move {
            let server = lp
                .create_server(
                    Recorder::echo,
                    &["127.0.0.1"],
                    Some(0),
                    ServerOptions::new(),
                )
                .await
                .unwrap();
            let port = server.sockets()[0]
                .address
                .as_ref()
                .unwrap()
                .as_inet()
                .unwrap()
                .port();
            let data = Rc::new(RefCell::new(Vec::new()));
            let reads = Rc::new(RefCell::new(0));
            let (d, r) = (data.clone(), reads.clone());
            let (t, _) = lp
                .create_connection_buffered(
                    move || Chunks {
                        buf: [0; 7],
                        data: d,
                        reads: r,
                        _transport: None,
                    },
                    Some("127.0.0.1"),
                    Some(port),
                    ConnectOptions::new(),
                )
                .await
                .unwrap();
            t.write(b"twenty bytes of text").unwrap();
            wait_until("echo", || data.borrow().len() == 20).await;
            assert_eq!(&*data.borrow(), b"twenty bytes of text");
            assert!(
                *reads.borrow() >= 3,
                "a 7-byte buffer needs at least 3 reads"
            );
            t.close();
            server.close();
            server.close_clients();
            server.wait_closed().await.unwrap();
        })
    });
}
