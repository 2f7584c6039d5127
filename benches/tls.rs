//! TLS benchmark: a TLS echo server on loopback written two ways, driven by one tokio-rustls
//! client in the same run, with the same certificates and rustls configurations.
//!
//! Run with `cargo bench --bench tls`. The servers, each on its own thread, listen on
//! `127.0.0.1` at an ephemeral port:
//! - asyncio: this crate's loop with `create_server(..., ServerOptions::new().ssl(ctx))` and an
//!   echo protocol (`data_received` writes back);
//! - tokio: a `current_thread` runtime, a `TcpListener`, `tokio_rustls::TlsAcceptor` and one
//!   task per connection doing `read` / `write_all` with a 64 KiB buffer.
//!
//! Both use the rustls `ServerConfig` of one [`asyncio::tls::TlsContext`] (a certificate for
//! "localhost" made at start-up with rcgen, ECDSA P-256). The client is a multi-threaded tokio
//! runtime (`ASYNCIO_BENCH_CLIENT_THREADS`, default the CPUs minus one, at least 1) using
//! tokio-rustls with the matching client configuration. Figures:
//! - echo throughput: 50 TLS connections (handshaken before the clock starts), each sending a
//!   message (64 B, 16 KiB) and reading its echo before the next; round trips per second, best
//!   of the repetitions, the servers taking turns;
//! - handshakes per second: 50 client tasks each opening connections one after another (TCP
//!   connect, full TLS 1.3 handshake without resumption, a 1-byte round trip, close);
//! - the server thread's CPU time per round trip or per handshake (from
//!   `/proc/self/task/*/schedstat`), which says where the server's time goes: compare with the
//!   tokio-rustls server, whose rustls work is the same.
//!
//! Knobs: `ASYNCIO_BENCH_QUICK=1` (or `--quick`): a tenth of the work, 2 repetitions (CI);
//! `ASYNCIO_BENCH_REPS=N`: repetitions (default 5). Every client phase runs under a timeout
//! (the process exits with an error past it); at the end both servers are stopped and their
//! threads joined.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use asyncio::tls::TlsContext;
use asyncio::{BaseProtocol, EventLoop, LoopHandle, Protocol, ServerOptions, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONNECTIONS: usize = 50;
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

struct Config {
    quick: bool,
    reps: usize,
    client_threads: usize,
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("ASYNCIO_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let reps = std::env::var("ASYNCIO_BENCH_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 2 } else { 5 })
            .max(1);
        let cpus = thread::available_parallelism().map_or(2, usize::from);
        let client_threads = std::env::var("ASYNCIO_BENCH_CLIENT_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| cpus.saturating_sub(1).clamp(1, 4))
            .max(1);
        Config {
            quick,
            reps,
            client_threads,
        }
    }

    fn scaled(&self, full: usize) -> usize {
        if self.quick {
            (full / 10).max(1)
        } else {
            full
        }
    }
}

/// The certificates and contexts both servers and the client share.
struct Pki {
    server: TlsContext,
    client: Arc<rustls::ClientConfig>,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_pem = ca.self_signed(&ca_key).expect("CA certificate").pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf parameters");
    let key = KeyPair::generate().expect("leaf key");
    let cert = leaf.signed_by(&key, &issuer).expect("leaf certificate");
    let server = TlsContext::server()
        .load_cert_chain_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
        .and_then(|b| b.build())
        .expect("server context");
    let client = TlsContext::client()
        .load_verify_locations_pem(ca_pem.as_bytes())
        .and_then(|b| b.build())
        .expect("client context");
    let mut client = (*client.client_config().expect("client config")).clone();
    // Every handshake a full one, for both servers.
    client.resumption = rustls::client::Resumption::disabled();
    Pki {
        server,
        client: Arc::new(client),
    }
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Asyncio,
    Tokio,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Asyncio => "asyncio",
            Kind::Tokio => "tokio-rustls",
        }
    }

    fn thread_name(self) -> &'static str {
        match self {
            Kind::Asyncio => "asyncio-tls",
            Kind::Tokio => "tokio-tls",
        }
    }
}

enum Stop {
    Asyncio(LoopHandle),
    Tokio(tokio::sync::oneshot::Sender<()>),
}

struct EchoServer {
    kind: Kind,
    addr: SocketAddr,
    stop: Stop,
    thread: JoinHandle<()>,
}

impl EchoServer {
    fn shutdown(self) {
        match self.stop {
            Stop::Asyncio(h) => h.stop(),
            Stop::Tokio(tx) => {
                let _ = tx.send(());
            }
        }
        if self.thread.join().is_err() {
            panic!("the {} server thread panicked", self.kind.name());
        }
    }
}

struct Echo(Option<Transport>);

impl BaseProtocol for Echo {
    fn connection_lost(&mut self, _exc: Option<asyncio::Error>) {
        self.0 = None;
    }
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.0 = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data).expect("asyncio echo write");
        }
    }
}

fn start_asyncio(ctx: TlsContext) -> EchoServer {
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(Kind::Asyncio.thread_name().into())
        .spawn(move || {
            let lp = EventLoop::new().expect("asyncio loop");
            let l = lp.clone();
            let server = lp
                .run_until_complete(async move {
                    l.create_server(
                        || Echo(None),
                        &["127.0.0.1"],
                        Some(0),
                        ServerOptions::new().ssl(ctx).backlog(1024),
                    )
                    .await
                })
                .expect("run_until_complete")
                .expect("asyncio create_server");
            let addr = server.sockets()[0]
                .address
                .as_ref()
                .and_then(asyncio::Address::as_inet)
                .expect("address");
            tx.send((addr, lp.handle())).expect("send address");
            lp.run_forever().expect("run_forever");
            server.close();
            server.abort_clients();
            lp.run_until_complete(async move { server.wait_closed().await })
                .expect("run_until_complete")
                .expect("wait_closed");
            lp.close().expect("close");
        })
        .expect("spawn");
    let (addr, handle) = rx.recv().expect("asyncio server failed to start");
    EchoServer {
        kind: Kind::Asyncio,
        addr,
        stop: Stop::Asyncio(handle),
        thread,
    }
}

fn start_tokio(ctx: TlsContext) -> EchoServer {
    let (tx, rx) = mpsc::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = ctx.server_config().expect("server config");
    let thread = thread::Builder::new()
        .name(Kind::Tokio.thread_name().into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("address"))
                    .expect("send address");
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((sock, _)) = accepted else { continue };
                            let _ = sock.set_nodelay(true);
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let Ok(mut tls) = acceptor.accept(sock).await else { return };
                                let mut buf = vec![0u8; 64 * 1024];
                                loop {
                                    match tls.read(&mut buf).await {
                                        Ok(0) | Err(_) => break,
                                        Ok(n) => {
                                            if tls.write_all(&buf[..n]).await.is_err() {
                                                break;
                                            }
                                        }
                                    }
                                }
                            });
                        }
                    }
                }
            });
            drop(rt);
        })
        .expect("spawn");
    let addr = rx.recv().expect("tokio server failed to start");
    EchoServer {
        kind: Kind::Tokio,
        addr,
        stop: Stop::Tokio(stop_tx),
        thread,
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

type ClientTls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> ClientTls {
    let sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(config)
        .connect(name, sock)
        .await
        .expect("TLS handshake")
}

async fn ping_pong(tls: &mut ClientTls, msg: &[u8], trips: usize) {
    let mut buf = vec![0u8; msg.len()];
    for _ in 0..trips {
        tls.write_all(msg).await.expect("write");
        tls.read_exact(&mut buf).await.expect("read");
    }
    assert!(buf == msg, "the echo differs from the message");
}

fn bounded<T>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    match rt.block_on(async { tokio::time::timeout(PHASE_TIMEOUT, fut).await }) {
        Ok(v) => v,
        Err(_) => {
            eprintln!("tls bench: {what} did not finish within {PHASE_TIMEOUT:?}");
            std::process::exit(1);
        }
    }
}

/// The CPU time (ns) of the thread named `name`, from `/proc/self/task/*/schedstat`.
fn thread_cpu(name: &str) -> Option<u64> {
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let stat = std::fs::read_to_string(path.join("schedstat")).ok()?;
            return stat.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// One measured run: (elapsed, operations, server CPU).
struct Run {
    elapsed: Duration,
    ops: usize,
    cpu: Option<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

fn throughput(
    rt: &tokio::runtime::Runtime,
    server: &EchoServer,
    config: &Arc<rustls::ClientConfig>,
    bytes: usize,
    trips: usize,
) -> Run {
    let (addr, config) = (server.addr, config.clone());
    let name = server.kind.thread_name();
    bounded(rt, "throughput", async move {
        let mut conns = Vec::new();
        for _ in 0..CONNECTIONS {
            conns.push(connect(addr, config.clone()).await);
        }
        let msg: Arc<Vec<u8>> = Arc::new((0..bytes).map(|i| (i % 251) as u8).collect());
        let cpu0 = thread_cpu(name);
        let start = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                let msg = msg.clone();
                tokio::spawn(async move {
                    ping_pong(&mut c, &msg, trips).await;
                    c
                })
            })
            .collect();
        let mut conns = Vec::new();
        for t in tasks {
            conns.push(t.await.expect("client task"));
        }
        let elapsed = start.elapsed();
        let cpu = thread_cpu(name)
            .zip(cpu0)
            .map(|(b, a)| Duration::from_nanos(b - a));
        drop(conns);
        Run {
            elapsed,
            ops: CONNECTIONS * trips,
            cpu,
        }
    })
}

fn handshakes(
    rt: &tokio::runtime::Runtime,
    server: &EchoServer,
    config: &Arc<rustls::ClientConfig>,
    per_task: usize,
) -> Run {
    let (addr, config) = (server.addr, config.clone());
    let name = server.kind.thread_name();
    bounded(rt, "handshakes", async move {
        let cpu0 = thread_cpu(name);
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let config = config.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        let mut c = connect(addr, config.clone()).await;
                        ping_pong(&mut c, b"x", 1).await;
                        let _ = c.shutdown().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("client task");
        }
        let elapsed = start.elapsed();
        let cpu = thread_cpu(name)
            .zip(cpu0)
            .map(|(b, a)| Duration::from_nanos(b - a));
        Run {
            elapsed,
            ops: CONNECTIONS * per_task,
            cpu,
        }
    })
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn fmt_cpu(run: &Run) -> String {
    match run.cpu {
        Some(c) => format!("{:.1} us", c.as_secs_f64() * 1e6 / run.ops as f64),
        None => "-".into(),
    }
}

fn main() {
    let cfg = Config::from_env();
    let pki = pki();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.client_threads)
        .thread_name("tls-client")
        .enable_all()
        .build()
        .expect("client runtime");
    let servers = [
        start_asyncio(pki.server.clone()),
        start_tokio(pki.server.clone()),
    ];
    println!(
        "TLS echo over loopback, {CONNECTIONS} connections, TLS 1.3 (rustls, ring), client: \
         tokio-rustls on {} thread(s){}",
        cfg.client_threads,
        if cfg.quick { ", quick" } else { "" }
    );
    println!();
    println!(
        "| workload | {} | {} | ratio | server CPU per op ({} / {}) |",
        servers[0].kind.name(),
        servers[1].kind.name(),
        servers[0].kind.name(),
        servers[1].kind.name()
    );
    println!("|---|---|---|---|---|");
    let workloads: [(&str, usize, usize); 3] = [
        ("echo 64 B, msgs/s", 64, cfg.scaled(2_000)),
        ("echo 16 KiB, msgs/s", 16 * 1024, cfg.scaled(400)),
        ("handshakes/s", 0, cfg.scaled(40)),
    ];
    for (label, bytes, n) in workloads {
        let run = |s: &EchoServer| {
            if bytes == 0 {
                handshakes(&rt, s, &pki.client, n)
            } else {
                throughput(&rt, s, &pki.client, bytes, n)
            }
        };
        // Warm-up, then the best of the repetitions, the servers taking turns.
        for s in &servers {
            let _ = if bytes == 0 {
                handshakes(&rt, s, &pki.client, (n / 10).max(1))
            } else {
                throughput(&rt, s, &pki.client, bytes, (n / 10).max(1))
            };
        }
        let mut best: [Option<Run>; 2] = [None, None];
        for _ in 0..cfg.reps {
            for (i, s) in servers.iter().enumerate() {
                let r = run(s);
                if best[i].as_ref().is_none_or(|b| r.rate() > b.rate()) {
                    best[i] = Some(r);
                }
            }
        }
        let [Some(a), Some(b)] = best else {
            unreachable!()
        };
        println!(
            "| {label} | {} | {} | {:.2}x | {} / {} |",
            fmt_rate(a.rate()),
            fmt_rate(b.rate()),
            a.rate() / b.rate(),
            fmt_cpu(&a),
            fmt_cpu(&b)
        );
    }
    for s in servers {
        s.shutdown();
    }
}
