//! Shared helpers of the `net_*` and `streams_*` tests: a watchdog, a bounded wait, temporary
//! directories, TCP helpers and recording protocols.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asyncio::{
    Address, BaseProtocol, ConnectOptions, Error, EventLoop, Protocol, Server, ServerOptions,
    Transport,
};

#[path = "../common/watchdog.rs"]
mod common_watchdog;

/// Runs `body` on its own thread (with its own loop) and fails if it takes over 60 s.
pub fn watchdog<F: FnOnce() + Send + 'static>(body: F) {
    common_watchdog::watchdog_within(Duration::from_secs(60), || {}, body)
}

/// The port of a TCP server's first listening socket.
pub fn port_of(server: &Server) -> u16 {
    server.sockets()[0]
        .address
        .as_ref()
        .and_then(Address::as_inet)
        .unwrap()
        .port()
}

/// A server on 127.0.0.1 (an ephemeral port) with protocols from `factory`, and its port.
pub async fn loopback_server<P, F>(
    lp: &EventLoop,
    factory: F,
    options: ServerOptions,
) -> (Server, u16)
where
    F: Fn() -> P + 'static,
    P: Protocol + 'static,
{
    let server = lp
        .create_server(factory, &["127.0.0.1"], Some(0), options)
        .await
        .unwrap();
    let port = port_of(&server);
    (server, port)
}

/// A stream server (`start_server`) on 127.0.0.1 (an ephemeral port) running `callback` per
/// connection, and its port.
pub async fn loopback_stream_server<F, Fut>(callback: F) -> (Server, u16)
where
    F: Fn(asyncio::streams::StreamReader, asyncio::streams::StreamWriter) -> Fut + 'static,
    Fut: std::future::Future + 'static,
{
    let server = asyncio::streams::start_server(callback, "127.0.0.1", 0)
        .await
        .unwrap();
    let port = port_of(&server);
    (server, port)
}

/// Connects `proto` to 127.0.0.1:`port` over TCP (default options).
pub async fn connect_tcp<P: Protocol + 'static>(
    lp: &EventLoop,
    port: u16,
    proto: P,
) -> asyncio::Result<Transport> {
    let (t, _) = lp
        .create_connection(
            move || proto,
            Some("127.0.0.1"),
            Some(port),
            ConnectOptions::new(),
        )
        .await?;
    Ok(t)
}

/// Runs `f` to completion on a fresh loop, then closes the loop.
pub fn run<T, Fut>(f: impl FnOnce(EventLoop) -> Fut) -> T
where
    Fut: std::future::Future<Output = T> + 'static,
    T: 'static,
{
    let lp = EventLoop::new().unwrap();
    let out = lp.run_until_complete(f(lp.clone())).unwrap();
    lp.close().unwrap();
    out
}

/// Waits (yielding to the loop 1 ms at a time, at most ~20 s) until `cond` holds.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..20_000 {
        if cond() {
            return;
        }
        asyncio::sleep(0.001).await.unwrap();
    }
    panic!("timed out waiting for {what}");
}

/// Lets the loop run a few iterations.
pub async fn spin(n: usize) {
    for _ in 0..n {
        asyncio::sleep(0.0).await.unwrap();
    }
}

/// A fresh directory under the system's temporary directory, removed with its contents when
/// dropped (also when the test panics).
pub struct TempDir(PathBuf);

impl TempDir {
    /// Makes `<tmp>/asyncio-<name>-<pid>-<n>`, unique within and across test processes.
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("asyncio-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `file` inside the directory.
    pub fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a [`Recorder`] saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub transport: Option<Transport>,
    pub data: Vec<u8>,
    pub eof: u32,
    pub lost: Option<Option<Error>>,
    pub lost_calls: u32,
    pub paused: u32,
    pub resumed: u32,
}

/// A protocol that records every callback; `keep_open` is what `eof_received` returns, and
/// `echo` writes received data back.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    pub seen: Rc<RefCell<Seen>>,
    pub keep_open: bool,
    pub echo: bool,
}

impl Recorder {
    pub fn echo() -> Self {
        Recorder {
            echo: true,
            ..Default::default()
        }
    }
    pub fn transport(&self) -> Transport {
        self.seen.borrow().transport.clone().unwrap()
    }
    pub fn len(&self) -> usize {
        self.seen.borrow().data.len()
    }
    pub fn lost(&self) -> bool {
        self.seen.borrow().lost.is_some()
    }
}

impl BaseProtocol for Recorder {
    fn connection_lost(&mut self, exc: Option<Error>) {
        let mut s = self.seen.borrow_mut();
        s.lost = Some(exc);
        s.lost_calls += 1;
    }
    fn pause_writing(&mut self) {
        self.seen.borrow_mut().paused += 1;
    }
    fn resume_writing(&mut self) {
        self.seen.borrow_mut().resumed += 1;
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, transport: Transport) {
        self.seen.borrow_mut().transport = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.seen.borrow_mut().data.extend_from_slice(data);
        if self.echo {
            let t = self.transport();
            t.write(data).unwrap();
        }
    }
    fn eof_received(&mut self) -> bool {
        self.seen.borrow_mut().eof += 1;
        self.keep_open
    }
}
