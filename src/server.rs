//! [`Server`]: listening sockets, their accept loop, and asyncio's close / wait_closed /
//! serve_forever contract (rules R65-R68). Created by
//! [`create_server`](EventLoop::create_server) and
//! [`create_unix_server`](EventLoop::create_unix_server).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::error::{Error, ErrorKind, Result};
use crate::events::ExceptionContext;
use crate::handles::TimerHandle;
use crate::net::{bind_error, remove_stale_unix_socket, AddrInfoHints};
use crate::protocols::{BufferedProtocol, Protocol};
use crate::runtime::core::EventLoop;
use crate::task::LoopFuture;
use crate::tls::TlsContext;
use crate::transports::{is_retry, Address, ProtocolRefs, Transport};

/// How long a server stops accepting after running out of file descriptors or memory.
pub const ACCEPT_RETRY_DELAY: f64 = 1.0;

/// Options of [`create_server`](EventLoop::create_server) and
/// [`create_unix_server`](EventLoop::create_unix_server) (asyncio's keyword arguments).
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Address family for resolution (0: any).
    pub family: i32,
    /// `getaddrinfo` flags (default `AI_PASSIVE`).
    pub flags: i32,
    /// Listen on this already bound socket instead of resolving hosts.
    pub sock: Option<OwnedFd>,
    /// The `listen()` backlog (default 100).
    pub backlog: i32,
    /// `SO_REUSEADDR`; `None` means asyncio's default, `true` on UNIX.
    pub reuse_address: Option<bool>,
    /// `SO_REUSEPORT`.
    pub reuse_port: bool,
    /// Start accepting at once (default `true`); else on
    /// [`start_serving`](Server::start_serving) or [`serve_forever`](Server::serve_forever).
    pub start_serving: bool,
    /// Unix servers: remove the socket file on close (default `true`).
    pub cleanup_socket: bool,
    /// TLS: the server context every accepted connection runs through (asyncio's `ssl`); see
    /// [`crate::tls`].
    pub ssl: Option<TlsContext>,
    /// Seconds a client's TLS handshake may take (default 60); a slower client is dropped.
    pub ssl_handshake_timeout: Option<f64>,
    /// Seconds a closing TLS connection waits for the peer's close_notify (default 30).
    pub ssl_shutdown_timeout: Option<f64>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            family: 0,
            flags: libc::AI_PASSIVE,
            sock: None,
            backlog: 100,
            reuse_address: None,
            reuse_port: false,
            start_serving: true,
            cleanup_socket: true,
            ssl: None,
            ssl_handshake_timeout: None,
            ssl_shutdown_timeout: None,
        }
    }
}

impl ServerOptions {
    /// asyncio's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves TLS with this server context (asyncio's `ssl=`).
    pub fn ssl(mut self, context: TlsContext) -> Self {
        self.ssl = Some(context);
        self
    }

    /// Sets the TLS handshake timeout in seconds.
    pub fn ssl_handshake_timeout(mut self, seconds: f64) -> Self {
        self.ssl_handshake_timeout = Some(seconds);
        self
    }

    /// Sets the TLS shutdown timeout in seconds.
    pub fn ssl_shutdown_timeout(mut self, seconds: f64) -> Self {
        self.ssl_shutdown_timeout = Some(seconds);
        self
    }

    /// Sets the address family.
    pub fn family(mut self, family: i32) -> Self {
        self.family = family;
        self
    }

    /// Listens on this bound socket (a `TcpListener` or `UnixListener` converts into
    /// `OwnedFd`).
    pub fn sock(mut self, sock: impl Into<OwnedFd>) -> Self {
        self.sock = Some(sock.into());
        self
    }

    /// Sets the `listen()` backlog.
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets `SO_REUSEADDR`.
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.reuse_address = Some(on);
        self
    }

    /// Sets `SO_REUSEPORT`.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// Whether to start accepting at once.
    pub fn start_serving(mut self, on: bool) -> Self {
        self.start_serving = on;
        self
    }

    /// Whether a Unix server removes its socket file on close.
    pub fn cleanup_socket(mut self, on: bool) -> Self {
        self.cleanup_socket = on;
        self
    }
}

/// One listening socket of a [`Server`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerSocket {
    /// The socket's file descriptor (owned by the server).
    pub fd: RawFd,
    /// The address it listens on.
    pub address: Option<Address>,
}

type Factory = Box<dyn Fn() -> ProtocolRefs>;

struct ServerInner {
    lp: EventLoop,
    sockets: RefCell<Option<Vec<Socket>>>,
    factory: Factory,
    clients: RefCell<slab::Slab<Transport>>,
    serving: Cell<bool>,
    backlog: i32,
    waiters: RefCell<Vec<LoopFuture<()>>>,
    serving_forever: RefCell<Option<LoopFuture<()>>>,
    unix_cleanup: Option<(PathBuf, u64, u64)>,
    resource_logged: Cell<bool>,
    retry_timers: RefCell<Vec<TimerHandle>>,
}

/// A listening server (asyncio's `Server`).
///
/// Cheap to clone, `!Send`. [`close`](Server::close) stops listening but leaves accepted
/// connections open; [`wait_closed`](Server::wait_closed) returns once the server is closed
/// and every connection is gone. When `accept` runs out of file descriptors or memory
/// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), the server reports it to the exception handler
/// once, stops accepting for [`ACCEPT_RETRY_DELAY`] seconds and tries again: it never spins.
#[derive(Clone)]
pub struct Server {
    inner: Rc<ServerInner>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("sockets", &self.sockets())
            .field("serving", &self.is_serving())
            .field("connections", &self.inner.clients.borrow().len())
            .finish()
    }
}

impl Server {
    fn new(
        lp: &EventLoop,
        sockets: Vec<Socket>,
        factory: Factory,
        backlog: i32,
        unix_cleanup: Option<(PathBuf, u64, u64)>,
    ) -> Server {
        Server {
            inner: Rc::new(ServerInner {
                lp: lp.clone(),
                sockets: RefCell::new(Some(sockets)),
                factory,
                clients: RefCell::new(slab::Slab::new()),
                serving: Cell::new(false),
                backlog,
                waiters: RefCell::new(Vec::new()),
                serving_forever: RefCell::new(None),
                unix_cleanup,
                resource_logged: Cell::new(false),
                retry_timers: RefCell::new(Vec::new()),
            }),
        }
    }

    /// The loop the server runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.inner.lp.clone()
    }

    /// Whether the server accepts connections.
    pub fn is_serving(&self) -> bool {
        self.inner.serving.get()
    }

    /// The listening sockets; empty once closed.
    pub fn sockets(&self) -> Vec<ServerSocket> {
        match self.inner.sockets.borrow().as_ref() {
            None => Vec::new(),
            Some(v) => v
                .iter()
                .map(|s| ServerSocket {
                    fd: s.as_raw_fd(),
                    address: s.local_addr().ok().and_then(|a| Address::from_sockaddr(&a)),
                })
                .collect(),
        }
    }

    /// How many accepted connections are open.
    pub fn connection_count(&self) -> usize {
        self.inner.clients.borrow().len()
    }

    /// Starts accepting connections; does nothing if serving or closed.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] or [`ErrorKind::Closed`] if the loop refuses to watch a socket.
    pub fn start_serving(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.serving.get() || inner.sockets.borrow().is_none() {
            return Ok(());
        }
        inner.serving.set(true);
        let n = inner.sockets.borrow().as_ref().map_or(0, Vec::len);
        for idx in 0..n {
            if let Err(e) = inner.watch(idx) {
                self.close();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Stops listening: closes the listening sockets (a Unix server also removes its socket
    /// file, unless it was replaced), ends a pending [`serve_forever`](Server::serve_forever).
    /// Accepted connections stay open. Idempotent.
    pub fn close(&self) {
        let inner = &self.inner;
        let Some(socks) = inner.sockets.borrow_mut().take() else {
            return;
        };
        for s in &socks {
            inner.lp.unwatch_reader(s.as_raw_fd());
        }
        for t in inner.retry_timers.borrow_mut().drain(..) {
            t.cancel();
        }
        inner.serving.set(false);
        if let Some((path, dev, ino)) = &inner.unix_cleanup {
            if let Ok(m) = std::fs::metadata(path) {
                if m.dev() == *dev && m.ino() == *ino {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        drop(socks);
        let forever = inner.serving_forever.borrow_mut().take();
        if let Some(f) = forever {
            f.cancel();
        }
        inner.wakeup_if_done();
    }

    /// Closes every accepted connection ([`Transport::close`]: flushes first).
    pub fn close_clients(&self) {
        let clients: Vec<Transport> = self
            .inner
            .clients
            .borrow()
            .iter()
            .map(|(_, t)| t.clone())
            .collect();
        for t in clients {
            t.close();
        }
    }

    /// Aborts every accepted connection ([`Transport::abort`]).
    pub fn abort_clients(&self) {
        let clients: Vec<Transport> = self
            .inner
            .clients
            .borrow()
            .iter()
            .map(|(_, t)| t.clone())
            .collect();
        for t in clients {
            t.abort();
        }
    }

    /// Waits until the server is closed and every accepted connection is gone. While the
    /// server is open it waits even with no connections; afterwards it returns at once.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] if the loop closes first.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future only stops the waiting.
    pub async fn wait_closed(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.sockets.borrow().is_none() && inner.clients.borrow().is_empty() {
            return Ok(());
        }
        let w = inner.lp.create_future::<()>();
        inner.waiters.borrow_mut().push(w.clone());
        w.await
    }

    /// Accepts connections until the server is closed; then waits for
    /// [`wait_closed`](Server::wait_closed) and returns [`ErrorKind::Cancelled`], as asyncio's
    /// `serve_forever` raises `CancelledError`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] if the server is closed ("server ... is closed") or another
    /// `serve_forever` is active ("server ... is already being awaited on serve_forever()");
    /// [`ErrorKind::Cancelled`] when it ends because the server was closed.
    ///
    /// # Cancel safety
    /// Dropping the future closes the server (it cannot wait for the connections, as asyncio
    /// does: await [`wait_closed`](Server::wait_closed) for that).
    pub async fn serve_forever(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.sockets.borrow().is_none() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("server {self:?} is closed"),
            ));
        }
        if inner.serving_forever.borrow().is_some() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!("server {self:?} is already being awaited on serve_forever()"),
            ));
        }
        self.start_serving()?;
        let fut = inner.lp.create_future::<()>();
        *inner.serving_forever.borrow_mut() = Some(fut.clone());
        struct CloseOnDrop(Option<Server>);
        impl Drop for CloseOnDrop {
            fn drop(&mut self) {
                if let Some(s) = self.0.take() {
                    s.close();
                }
            }
        }
        let mut guard = CloseOnDrop(Some(self.clone()));
        let res = fut.await;
        guard.0 = None;
        self.close();
        self.wait_closed().await?;
        match res {
            Ok(()) => Err(Error::cancelled()),
            Err(e) => Err(e),
        }
    }
}

impl ServerInner {
    fn watch(self: &Rc<Self>, idx: usize) -> Result<()> {
        let fd = match self.sockets.borrow().as_ref().and_then(|v| v.get(idx)) {
            Some(s) => s.as_raw_fd(),
            None => return Ok(()),
        };
        let weak = Rc::downgrade(self);
        self.lp.watch_reader(fd, move || {
            if let Some(me) = weak.upgrade() {
                me.accept_ready(idx, fd);
            }
        })?;
        Ok(())
    }

    fn accept_ready(self: &Rc<Self>, idx: usize, fd: RawFd) {
        for _ in 0..self.backlog.max(1) {
            let res = match self.sockets.borrow().as_ref().and_then(|v| v.get(idx)) {
                Some(s) => s.accept(),
                None => return,
            };
            match res {
                Ok((conn, _)) => {
                    self.resource_logged.set(false);
                    self.accepted(conn);
                }
                Err(e) if is_retry(&e) => return,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) =>
                {
                    if !self.resource_logged.replace(true) {
                        self.lp.call_exception_handler(
                            &ExceptionContext::new("socket.accept() out of system resource")
                                .with_exception(e.into())
                                .with("socket", format!("fd {fd}")),
                        );
                    }
                    self.lp.unwatch_reader(fd);
                    let weak: Weak<ServerInner> = Rc::downgrade(self);
                    let timer = self.lp.call_later(ACCEPT_RETRY_DELAY, move || {
                        if let Some(me) = weak.upgrade() {
                            if me.serving.get() {
                                let _ = me.watch(idx);
                            }
                        }
                    });
                    if let Ok(t) = timer {
                        let mut timers = self.retry_timers.borrow_mut();
                        timers.retain(|t| !t.cancelled() && t.when() > self.lp.time());
                        timers.push(t);
                    }
                    return;
                }
                Err(e) => {
                    self.lp.call_exception_handler(
                        &ExceptionContext::new("Error on accepting a connection")
                            .with_exception(e.into())
                            .with("socket", format!("fd {fd}")),
                    );
                    return;
                }
            }
        }
    }

    fn accepted(self: &Rc<Self>, conn: Socket) {
        if conn.set_nonblocking(true).is_err() {
            return;
        }
        let refs = match catch_unwind(AssertUnwindSafe(|| (self.factory)())) {
            Ok(r) => r,
            Err(payload) => {
                self.lp.call_exception_handler(
                    &ExceptionContext::new("Error on transport creation for incoming connection")
                        .with_exception(Error::from_panic(&*payload)),
                );
                return;
            }
        };
        let key = self.clients.borrow().vacant_key();
        let weak = Rc::downgrade(self);
        let hook = Box::new(move || {
            if let Some(me) = weak.upgrade() {
                me.detach(key);
            }
        });
        match Transport::start(&self.lp, conn, refs, None, Some(hook)) {
            Ok(t) => {
                self.clients.borrow_mut().insert(t);
            }
            Err(e) => self.lp.call_exception_handler(
                &ExceptionContext::new("Error on transport creation for incoming connection")
                    .with_exception(e),
            ),
        }
    }

    fn detach(&self, key: usize) {
        let removed = {
            let mut clients = self.clients.borrow_mut();
            clients.try_remove(key)
        };
        drop(removed);
        self.wakeup_if_done();
    }

    fn wakeup_if_done(&self) {
        if self.sockets.borrow().is_some() || !self.clients.borrow().is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            if !w.done() {
                let _ = w.set_result(());
            }
        }
    }
}

/// A server's protocol factory for [`Protocol`]s.
fn plain_factory<P: Protocol + 'static>(f: impl Fn() -> P + 'static) -> Factory {
    Box::new(move || ProtocolRefs::plain(&Rc::new(RefCell::new(f()))))
}

/// A server's protocol factory for [`BufferedProtocol`]s.
fn buffered_factory<P: BufferedProtocol + 'static>(f: impl Fn() -> P + 'static) -> Factory {
    Box::new(move || ProtocolRefs::buffered(&Rc::new(RefCell::new(f()))))
}

impl EventLoop {
    fn finish_server(
        &self,
        sockets: Vec<Socket>,
        factory: Factory,
        options: &ServerOptions,
        unix_cleanup: Option<(PathBuf, u64, u64)>,
    ) -> Result<Server> {
        let tls = crate::tls::server_params(
            options.ssl.as_ref(),
            options.ssl_handshake_timeout,
            options.ssl_shutdown_timeout,
        )?;
        let factory = match tls {
            Some(tls) => crate::tls::server_factory(self, factory, tls),
            None => factory,
        };
        for s in &sockets {
            s.listen(options.backlog)?;
            s.set_nonblocking(true)?;
        }
        let server = Server::new(self, sockets, factory, options.backlog, unix_cleanup);
        if options.start_serving {
            server.start_serving()?;
        }
        Ok(server)
    }

    /// Creates a TCP server listening on every address of `hosts` at `port` (asyncio's
    /// `loop.create_server`); an empty `hosts` means all interfaces (one socket per family).
    /// Each accepted connection gets a protocol from `protocol_factory` and a [`Transport`].
    ///
    /// `SO_REUSEADDR` is on by default; IPv6 sockets are `IPV6_V6ONLY`. Port 0 picks a free
    /// port (read it from [`Server::sockets`]).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `options.sock` is combined with hosts or a port;
    /// [`ErrorKind::Io`] when resolution fails, or binding fails ("error while attempting to
    /// bind on address ...", with the OS error as source); [`ErrorKind::Closed`] on a closed
    /// loop. On error no socket stays open.
    ///
    /// # Cancel safety
    /// Dropping the future during resolution creates no server.
    pub async fn create_server<P, F>(
        &self,
        protocol_factory: F,
        hosts: &[&str],
        port: Option<u16>,
        options: ServerOptions,
    ) -> Result<Server>
    where
        F: Fn() -> P + 'static,
        P: Protocol + 'static,
    {
        let mut options = options;
        let sockets = self.server_sockets(hosts, port, &mut options).await?;
        self.finish_server(sockets, plain_factory(protocol_factory), &options, None)
    }

    /// [`create_server`](EventLoop::create_server) for a [`BufferedProtocol`]: each accepted
    /// connection reads into the buffers its protocol hands out.
    ///
    /// # Errors
    /// As [`create_server`](EventLoop::create_server).
    ///
    /// # Cancel safety
    /// As [`create_server`](EventLoop::create_server).
    pub async fn create_server_buffered<P, F>(
        &self,
        protocol_factory: F,
        hosts: &[&str],
        port: Option<u16>,
        options: ServerOptions,
    ) -> Result<Server>
    where
        F: Fn() -> P + 'static,
        P: BufferedProtocol + 'static,
    {
        let mut options = options;
        let sockets = self.server_sockets(hosts, port, &mut options).await?;
        self.finish_server(sockets, buffered_factory(protocol_factory), &options, None)
    }

    /// Resolves, creates and binds the listening sockets of a TCP server (or takes
    /// `options.sock`).
    async fn server_sockets(
        &self,
        hosts: &[&str],
        port: Option<u16>,
        options: &mut ServerOptions,
    ) -> Result<Vec<Socket>> {
        self.check_closed()?;
        if let Some(fd) = options.sock.take() {
            if !hosts.is_empty() || port.is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "host/port and sock can not be specified at the same time",
                ));
            }
            let sock = Socket::from(fd);
            if sock.r#type()? != Type::STREAM {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "A Stream Socket was expected",
                ));
            }
            return Ok(vec![sock]);
        }
        let hints = AddrInfoHints {
            family: options.family,
            socktype: libc::SOCK_STREAM,
            protocol: 0,
            flags: options.flags,
        };
        let host_list: Vec<Option<&str>> = if hosts.is_empty() {
            vec![None]
        } else {
            hosts.iter().map(|h| Some(*h)).collect()
        };
        let mut infos = Vec::new();
        for h in host_list {
            for info in self.getaddrinfo(h, Some(port.unwrap_or(0)), hints).await? {
                if !infos.contains(&info) {
                    infos.push(info);
                }
            }
        }
        let reuse_address = options.reuse_address.unwrap_or(true);
        let mut sockets = Vec::new();
        for info in &infos {
            let proto = (info.protocol != 0).then(|| socket2::Protocol::from(info.protocol));
            let sock = match Socket::new(Domain::from(info.family), Type::STREAM, proto) {
                Ok(s) => s,
                // An address family the host does not support (no IPv6, say): skip it.
                Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => continue,
                Err(e) => return Err(e.into()),
            };
            if reuse_address {
                sock.set_reuse_address(true)?;
            }
            if options.reuse_port {
                sock.set_reuse_port(true)?;
            }
            if info.family == libc::AF_INET6 {
                sock.set_only_v6(true)?;
            }
            sock.bind(&SockAddr::from(info.addr))
                .map_err(|e| bind_error(info.addr, e))?;
            sockets.push(sock);
        }
        if sockets.is_empty() {
            return Err(Error::new(
                ErrorKind::Io,
                "getaddrinfo() returned no usable address",
            ));
        }
        Ok(sockets)
    }

    /// Creates a Unix-socket server listening on `path` (asyncio's `loop.create_unix_server`),
    /// or on `options.sock`. A stale socket file at `path` is removed first; the server removes
    /// its file on close (unless `cleanup_socket` is off or the file was replaced meanwhile).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when both or neither of `path` and `options.sock` are
    /// given; [`ErrorKind::Io`] when binding fails (for example a path that exists and is not a
    /// socket: `AddrInUse`); [`ErrorKind::Closed`] on a closed loop.
    ///
    /// # Cancel safety
    /// Completes without suspending: nothing to cancel.
    pub async fn create_unix_server<P, F>(
        &self,
        protocol_factory: F,
        path: Option<&Path>,
        options: ServerOptions,
    ) -> Result<Server>
    where
        F: Fn() -> P + 'static,
        P: Protocol + 'static,
    {
        self.check_closed()?;
        let mut options = options;
        match (path, options.sock.take()) {
            (Some(_), Some(_)) => Err(Error::new(
                ErrorKind::InvalidArgument,
                "path and sock can not be specified at the same time",
            )),
            (None, None) => Err(Error::new(
                ErrorKind::InvalidArgument,
                "path was not specified, and no sock specified",
            )),
            (None, Some(fd)) => {
                let sock = Socket::from(fd);
                if sock.domain()? != Domain::UNIX || sock.r#type()? != Type::STREAM {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        "A UNIX Domain Stream Socket was expected",
                    ));
                }
                self.finish_server(vec![sock], plain_factory(protocol_factory), &options, None)
            }
            (Some(path), None) => {
                remove_stale_unix_socket(path);
                let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                sock.bind(&SockAddr::unix(path)?)
                    .map_err(|e| bind_error(path.display(), e))?;
                let cleanup = if options.cleanup_socket {
                    std::fs::metadata(path)
                        .ok()
                        .map(|m| (path.to_path_buf(), m.dev(), m.ino()))
                } else {
                    None
                };
                self.finish_server(
                    vec![sock],
                    plain_factory(protocol_factory),
                    &options,
                    cleanup,
                )
            }
        }
    }
}
