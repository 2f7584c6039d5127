//! Datagram endpoints (asyncio's `loop.create_datagram_endpoint`): UDP sockets, with name
//! resolution, and Unix datagram sockets; their options and their address type.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use socket2::{Domain, Socket, Type};

use super::{bind_error, combine, remove_stale_unix_socket, sock_connect, AddrInfo, AddrInfoHints};
use crate::error::{Error, ErrorKind, Result};
use crate::protocols::DatagramProtocol;
use crate::runtime::core::EventLoop;
use crate::transports::{Address, DatagramTransport};

/// The local or remote address of a datagram endpoint (asyncio's `local_addr` and
/// `remote_addr`): an IP address, a host name to resolve, or a Unix socket path.
///
/// Converts with `From` from a [`SocketAddr`] (and its V4/V6 forms), an `(IpAddr, u16)`, a
/// `(&str, u16)` or `(String, u16)` host and port, and a `&Path` or [`PathBuf`]; the
/// [`DatagramOptions`] setters take any of them.
///
/// ```
/// use asyncio::DatagramAddr;
/// use std::path::Path;
///
/// let a = DatagramAddr::from(("localhost", 9999));
/// assert_eq!(a, DatagramAddr::Host("localhost".into(), 9999));
/// let b = DatagramAddr::from("127.0.0.1:53".parse::<std::net::SocketAddr>().unwrap());
/// assert!(matches!(b, DatagramAddr::Inet(_)));
/// let c = DatagramAddr::from(Path::new("/tmp/app.sock"));
/// assert_eq!(c, DatagramAddr::Unix("/tmp/app.sock".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DatagramAddr {
    /// An IP address and port, used as is (no resolver call).
    Inet(SocketAddr),
    /// A host (a name or a numeric address) and a port, resolved with
    /// [`getaddrinfo`](EventLoop::getaddrinfo) (asyncio's `(host, port)` tuple).
    Host(String, u16),
    /// A Unix datagram socket path (asyncio's `family=AF_UNIX` with a path).
    Unix(PathBuf),
}

impl From<SocketAddr> for DatagramAddr {
    fn from(a: SocketAddr) -> Self {
        DatagramAddr::Inet(a)
    }
}

impl From<SocketAddrV4> for DatagramAddr {
    fn from(a: SocketAddrV4) -> Self {
        DatagramAddr::Inet(a.into())
    }
}

impl From<SocketAddrV6> for DatagramAddr {
    fn from(a: SocketAddrV6) -> Self {
        DatagramAddr::Inet(a.into())
    }
}

impl From<(IpAddr, u16)> for DatagramAddr {
    fn from(a: (IpAddr, u16)) -> Self {
        DatagramAddr::Inet(a.into())
    }
}

impl From<(&str, u16)> for DatagramAddr {
    fn from((host, port): (&str, u16)) -> Self {
        DatagramAddr::Host(host.to_owned(), port)
    }
}

impl From<(String, u16)> for DatagramAddr {
    fn from((host, port): (String, u16)) -> Self {
        DatagramAddr::Host(host, port)
    }
}

impl From<&Path> for DatagramAddr {
    fn from(path: &Path) -> Self {
        DatagramAddr::Unix(path.to_path_buf())
    }
}

impl From<PathBuf> for DatagramAddr {
    fn from(path: PathBuf) -> Self {
        DatagramAddr::Unix(path)
    }
}

/// Options of [`create_datagram_endpoint`](EventLoop::create_datagram_endpoint) (asyncio's
/// arguments): where to bind and connect, resolution hints, socket options, or an existing
/// socket. Build with [`DatagramOptions::new`] and the setters.
///
/// ```
/// use asyncio::DatagramOptions;
/// use std::path::Path;
///
/// // A UDP server on a resolved host name, and a client connected to it.
/// let server = DatagramOptions::new().local_addr(("localhost", 9999));
/// let client = DatagramOptions::new().remote_addr(("localhost", 9999));
/// // A Unix datagram socket bound to a path.
/// let unix = DatagramOptions::new().local_addr(Path::new("/tmp/app.sock"));
/// # let _ = (server, client, unix);
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct DatagramOptions {
    /// Bind the socket to this address (asyncio's `local_addr`).
    pub local_addr: Option<DatagramAddr>,
    /// Connect the socket to this address (asyncio's `remote_addr`): the endpoint then sends
    /// there by default and receives only from there.
    pub remote_addr: Option<DatagramAddr>,
    /// Address family for resolution (`libc::AF_INET`, `libc::AF_INET6`, 0 for any). With no
    /// address, the family of an unbound socket (`libc::AF_UNIX` for an unnamed Unix one).
    pub family: i32,
    /// Protocol number for resolution and the socket (0 for the default).
    pub proto: i32,
    /// `libc::AI_*` flags for resolution.
    pub flags: i32,
    /// Sets `SO_REUSEPORT` before binding.
    pub reuse_port: bool,
    /// Sets `SO_BROADCAST`; the socket is then not connected to `remote_addr` (which stays the
    /// default destination), as in asyncio.
    pub allow_broadcast: bool,
    /// An existing datagram socket to use instead of making one; it excludes every other
    /// option.
    pub sock: Option<OwnedFd>,
}

impl DatagramOptions {
    /// The defaults: no address, any family, no `SO_REUSEPORT`, no broadcast, no socket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds the socket to `addr` (see [`DatagramAddr`] for what converts).
    pub fn local_addr(mut self, addr: impl Into<DatagramAddr>) -> Self {
        self.local_addr = Some(addr.into());
        self
    }

    /// Connects the socket to `addr` (see [`DatagramAddr`] for what converts).
    pub fn remote_addr(mut self, addr: impl Into<DatagramAddr>) -> Self {
        self.remote_addr = Some(addr.into());
        self
    }

    resolution_setters!();

    /// Sets `SO_REUSEPORT`.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// Sets `SO_BROADCAST` (see [`allow_broadcast`](DatagramOptions::allow_broadcast)).
    pub fn allow_broadcast(mut self, on: bool) -> Self {
        self.allow_broadcast = on;
        self
    }

    /// Uses this datagram socket (a `UdpSocket` or `UnixDatagram` converts into `OwnedFd`).
    pub fn sock(mut self, sock: impl Into<OwnedFd>) -> Self {
        self.sock = Some(sock.into());
        self
    }

    /// The options that may not come with `sock`, as asyncio lists them.
    fn socket_modifiers(&self) -> Vec<String> {
        let mut set = Vec::new();
        if let Some(a) = &self.local_addr {
            set.push(format!("local_addr={a:?}"));
        }
        if let Some(a) = &self.remote_addr {
            set.push(format!("remote_addr={a:?}"));
        }
        for (name, value) in [
            ("family", self.family),
            ("proto", self.proto),
            ("flags", self.flags),
        ] {
            if value != 0 {
                set.push(format!("{name}={value}"));
            }
        }
        for (name, on) in [
            ("reuse_port", self.reuse_port),
            ("allow_broadcast", self.allow_broadcast),
        ] {
            if on {
                set.push(format!("{name}=true"));
            }
        }
        set
    }
}

/// One socket to try: its family and protocol, and the addresses to bind and connect to.
struct Attempt {
    family: i32,
    proto: i32,
    local: Option<Address>,
    remote: Option<Address>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, message.into())
}

/// Checks and prepares the socket of `options.sock`.
fn datagram_socket_from(fd: OwnedFd, options: &DatagramOptions) -> Result<Socket> {
    let sock = Socket::from(fd);
    if sock.r#type()? != Type::DGRAM {
        return Err(invalid("A datagram socket was expected"));
    }
    let modifiers = options.socket_modifiers();
    if !modifiers.is_empty() {
        return Err(invalid(format!(
            "socket modifier keyword arguments can not be used when sock is specified. ({})",
            modifiers.join(", ")
        )));
    }
    let domain = sock.domain()?;
    if domain != Domain::IPV4 && domain != Domain::IPV6 && domain != Domain::UNIX {
        return Err(invalid(
            "A datagram socket of family AF_INET, AF_INET6 or AF_UNIX was expected",
        ));
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Pairs the resolved local and remote addresses by `(family, protocol)` in the order
/// resolution gave them (asyncio's `addr_infos`), keeping the pairs that have every address
/// that was asked for; the first address of each kind is used.
fn pair_addresses(local: Option<Vec<AddrInfo>>, remote: Option<Vec<AddrInfo>>) -> Vec<Attempt> {
    let mut attempts: Vec<Attempt> = Vec::new();
    let (want_local, want_remote) = (local.is_some(), remote.is_some());
    let sides = [(false, local), (true, remote)];
    for (is_remote, infos) in sides {
        for info in infos.into_iter().flatten() {
            let i = match attempts
                .iter()
                .position(|a| (a.family, a.proto) == (info.family, info.protocol))
            {
                Some(i) => i,
                None => {
                    attempts.push(Attempt {
                        family: info.family,
                        proto: info.protocol,
                        local: None,
                        remote: None,
                    });
                    attempts.len() - 1
                }
            };
            let slot = if is_remote {
                &mut attempts[i].remote
            } else {
                &mut attempts[i].local
            };
            slot.get_or_insert(Address::Inet(info.addr));
        }
    }
    attempts.retain(|a| (a.local.is_some() || !want_local) && (a.remote.is_some() || !want_remote));
    attempts
}

impl EventLoop {
    /// Resolves one internet address of a datagram endpoint: a [`DatagramAddr::Inet`] as is
    /// (checked against the family hint), a [`DatagramAddr::Host`] with `getaddrinfo`.
    async fn resolve_datagram(
        &self,
        addr: &DatagramAddr,
        hints: AddrInfoHints,
    ) -> Result<Vec<AddrInfo>> {
        match addr {
            DatagramAddr::Inet(a) => {
                let family = if a.is_ipv4() {
                    libc::AF_INET
                } else {
                    libc::AF_INET6
                };
                if hints.family != 0 && hints.family != family {
                    return Err(invalid(format!(
                        "address {a} does not match family {}",
                        hints.family
                    )));
                }
                let protocol = match hints.protocol {
                    0 => libc::IPPROTO_UDP,
                    p => p,
                };
                Ok(vec![AddrInfo {
                    family,
                    socktype: libc::SOCK_DGRAM,
                    protocol,
                    canonname: None,
                    addr: *a,
                }])
            }
            DatagramAddr::Host(host, port) => self.resolve(host, *port, hints).await,
            DatagramAddr::Unix(path) => Err(invalid(format!(
                "a Unix socket path ({}) can not be mixed with internet addresses",
                path.display()
            ))),
        }
    }

    /// The sockets to try for `options` (which has no `sock`), in order.
    async fn datagram_attempts(&self, options: &DatagramOptions) -> Result<Vec<Attempt>> {
        let (local, remote) = (options.local_addr.as_ref(), options.remote_addr.as_ref());
        let is_unix = |a: &DatagramAddr| matches!(a, DatagramAddr::Unix(_));
        let unix = match (local, remote) {
            (None, None) if options.family == 0 => {
                return Err(invalid(
                    "unexpected address family: give local_addr, remote_addr, family or sock",
                ))
            }
            // asyncio: a socket of that family, neither bound nor connected.
            (None, None) => {
                return Ok(vec![Attempt {
                    family: options.family,
                    proto: options.proto,
                    local: None,
                    remote: None,
                }])
            }
            (Some(l), Some(r)) if is_unix(l) != is_unix(r) => {
                return Err(invalid(
                    "local_addr and remote_addr have different address families",
                ))
            }
            (Some(a), _) | (None, Some(a)) => is_unix(a),
        };
        if unix {
            if options.family != 0 && options.family != libc::AF_UNIX {
                return Err(invalid(format!(
                    "family {} does not match a Unix socket path",
                    options.family
                )));
            }
            let path = |a: Option<&DatagramAddr>| match a {
                Some(DatagramAddr::Unix(p)) => Some(Address::Unix(Some(p.clone()))),
                _ => None,
            };
            if let Some(DatagramAddr::Unix(p)) = local {
                remove_stale_unix_socket(p);
            }
            return Ok(vec![Attempt {
                family: libc::AF_UNIX,
                proto: options.proto,
                local: path(local),
                remote: path(remote),
            }]);
        }
        if options.family == libc::AF_UNIX {
            return Err(invalid(
                "family AF_UNIX needs Unix socket paths as local_addr and remote_addr",
            ));
        }
        let hints = AddrInfoHints {
            family: options.family,
            socktype: libc::SOCK_DGRAM,
            protocol: options.proto,
            flags: options.flags,
        };
        let local = match local {
            Some(a) => Some(self.resolve_datagram(a, hints).await?),
            None => None,
        };
        let remote = match remote {
            Some(a) => Some(self.resolve_datagram(a, hints).await?),
            None => None,
        };
        let attempts = pair_addresses(local, remote);
        if attempts.is_empty() {
            return Err(invalid(
                "can not get address information: local_addr and remote_addr have no address \
                 family in common",
            ));
        }
        Ok(attempts)
    }

    /// Makes, binds and connects the socket of one attempt.
    async fn try_datagram(&self, attempt: &Attempt, options: &DatagramOptions) -> Result<Socket> {
        let proto = (attempt.proto != 0).then(|| socket2::Protocol::from(attempt.proto));
        let sock = Socket::new(Domain::from(attempt.family), Type::DGRAM, proto)?;
        if options.reuse_port {
            sock.set_reuse_port(true)?;
        }
        if options.allow_broadcast {
            sock.set_broadcast(true)?;
        }
        sock.set_nonblocking(true)?;
        if let Some(local) = &attempt.local {
            sock.bind(&local.to_sockaddr()?)
                .map_err(|e| bind_error(local, e))?;
        }
        if let Some(remote) = &attempt.remote {
            if !options.allow_broadcast {
                sock_connect(self, &sock, &remote.to_sockaddr()?).await?;
            }
        }
        Ok(sock)
    }

    /// Creates a datagram endpoint (asyncio's `loop.create_datagram_endpoint`): a UDP socket
    /// or a Unix datagram socket, bound to `options.local_addr` and connected to
    /// `options.remote_addr` if given, or the socket `options.sock`. Returns the transport
    /// and the protocol made by `protocol_factory`, once `connection_made` ran.
    ///
    /// - **UDP**: the addresses are [`DatagramAddr::Inet`] or [`DatagramAddr::Host`]; hosts
    ///   are resolved with [`getaddrinfo`](EventLoop::getaddrinfo) (`SOCK_DGRAM`, with
    ///   `options.family`, `proto` and `flags`). The local and remote addresses are paired by
    ///   family and protocol in resolution order, and each pair is tried until a socket binds
    ///   and connects. Without `local_addr` the socket gets an ephemeral port when it first
    ///   sends.
    /// - **Unix**: the addresses are [`DatagramAddr::Unix`] paths (asyncio's
    ///   `family=AF_UNIX`). A stale *socket* file at `local_addr` is removed before binding, as
    ///   asyncio does; any other file there makes the bind fail and is left alone. The
    ///   endpoint does not remove its socket file on close. Without `local_addr` the socket is
    ///   unnamed: it can send, but its peers cannot answer (their `sendto` to
    ///   `Address::Unix(None)` is an [`ErrorKind::InvalidArgument`] error).
    /// - With neither address, `options.family` alone makes an unbound, unconnected socket of
    ///   that family (`libc::AF_UNIX` for an unnamed Unix socket).
    /// - **`sock`**: an existing datagram socket (UDP or Unix), made nonblocking; no other
    ///   option may be set. A connected one sends to its peer by default.
    ///
    /// A connected endpoint (given `remote_addr`) sends there with `sendto(data, None)` and
    /// refuses other addresses. With `allow_broadcast` the socket is not connected (replies
    /// to a broadcast come from other addresses) and `remote_addr` is only the default
    /// destination.
    ///
    /// ```
    /// use asyncio::{BaseProtocol, DatagramOptions, DatagramProtocol, EventLoop};
    ///
    /// struct Quiet;
    /// impl BaseProtocol for Quiet {}
    /// impl DatagramProtocol for Quiet {}
    ///
    /// let event_loop = EventLoop::new()?;
    /// let lp = event_loop.clone();
    /// event_loop.run_until_complete(async move {
    ///     let options = DatagramOptions::new().local_addr(("127.0.0.1", 0));
    ///     let (server, _) = lp.create_datagram_endpoint(|| Quiet, options).await?;
    ///     let server_addr = server.sockname().unwrap().as_inet().unwrap();
    ///     let options = DatagramOptions::new().remote_addr(server_addr);
    ///     let (client, _) = lp.create_datagram_endpoint(|| Quiet, options).await?;
    ///     client.sendto(b"hello", None)?;
    ///     client.close();
    ///     server.close();
    ///     Ok::<_, asyncio::Error>(())
    /// })??;
    /// event_loop.close()?;
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when neither an address, a family nor `sock` is given;
    /// when the local and remote addresses have no family in common (a Unix path and an
    /// internet address, IPv4 and IPv6, or an address that does not match `options.family`);
    /// when `sock` is not a datagram socket (or not of an internet or Unix family), or comes
    /// with another option. On such an error a given `sock` is closed.
    /// [`ErrorKind::Io`] when resolution fails, or when every attempt fails to make, bind
    /// ("error while attempting to bind on address ...", the OS error as source: `AddrInUse`
    /// for a path held by a file that is not a socket) or connect the socket (`NotFound` for a
    /// Unix path that does not exist, `ConnectionRefused` for one nobody is bound to); one
    /// failure is returned as is, several different ones as "Multiple exceptions: ...".
    /// [`ErrorKind::Closed`] on a closed loop.
    ///
    /// # Cancel safety
    /// Dropping the future during resolution creates nothing; after that it closes the
    /// socket or aborts the new transport (`connection_lost` is not called for a protocol
    /// whose `connection_made` did not run).
    pub async fn create_datagram_endpoint<P, F>(
        &self,
        protocol_factory: F,
        options: DatagramOptions,
    ) -> Result<(DatagramTransport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: DatagramProtocol + 'static,
    {
        self.check_closed()?;
        let mut options = options;
        let (sock, remote) = match options.sock.take() {
            Some(fd) => (datagram_socket_from(fd, &options)?, None),
            None => {
                let mut errors = Vec::new();
                let mut opened = None;
                for attempt in self.datagram_attempts(&options).await? {
                    match self.try_datagram(&attempt, &options).await {
                        Ok(sock) => {
                            opened = Some((sock, attempt.remote));
                            break;
                        }
                        Err(e) => errors.push(e),
                    }
                }
                opened.ok_or_else(|| combine(errors))?
            }
        };
        let protocol = Rc::new(RefCell::new(protocol_factory()));
        let waiter = self.create_future::<()>();
        let transport =
            DatagramTransport::start(self, sock, protocol.clone(), remote, waiter.clone())?;
        struct Guard(Option<DatagramTransport>);
        impl Drop for Guard {
            fn drop(&mut self) {
                if let Some(t) = self.0.take() {
                    t.abort();
                }
            }
        }
        let mut guard = Guard(Some(transport.clone()));
        waiter.await?;
        guard.0 = None;
        Ok((transport, protocol))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(addr: &str) -> AddrInfo {
        let addr: SocketAddr = addr.parse().unwrap();
        AddrInfo {
            family: if addr.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            },
            socktype: libc::SOCK_DGRAM,
            protocol: libc::IPPROTO_UDP,
            canonname: None,
            addr,
        }
    }

    fn pairs(attempts: &[Attempt]) -> Vec<(i32, Option<String>, Option<String>)> {
        let text = |a: &Option<Address>| a.as_ref().map(|a| a.to_string());
        attempts
            .iter()
            .map(|a| (a.family, text(&a.local), text(&a.remote)))
            .collect()
    }

    #[test]
    fn addresses_pair_by_family_in_resolution_order() {
        let local = vec![info("127.0.0.1:1"), info("[::1]:1"), info("127.0.0.2:1")];
        let remote = vec![info("[::1]:2"), info("127.0.0.1:2")];
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            pairs(&pair_addresses(Some(local.clone()), Some(remote))),
            [
                (libc::AF_INET, s("127.0.0.1:1"), s("127.0.0.1:2")),
                (libc::AF_INET6, s("[::1]:1"), s("[::1]:2")),
            ]
        );
        // Only one side asked for: every family of it.
        assert_eq!(pair_addresses(Some(local), None).len(), 2);
        // No family in common: nothing to try.
        let v4 = vec![info("127.0.0.1:1")];
        let v6 = vec![info("[::1]:2")];
        assert!(pair_addresses(Some(v4), Some(v6)).is_empty());
    }
}
