//! Networking benchmark: a TCP echo server on loopback, written three ways and driven by one
//! client in the same run.
//!
//! Run with `cargo bench --bench net`. The servers, each on its own thread, listen on
//! `127.0.0.1` at an ephemeral port:
//! - asyncio: this crate's [`asyncio::EventLoop`] with a [`asyncio::Protocol`] whose
//!   `data_received` calls [`asyncio::Transport::write`] (the loop runs `run_forever`);
//! - tokio: a `current_thread` runtime (`enable_all`), a `TcpListener` and one spawned task per
//!   connection doing `read` / `write_all` with a 64 KiB buffer;
//! - smol: a `LocalExecutor` driven by `smol::block_on` (which also runs async-io's reactor on
//!   that thread), `smol::net::TcpListener`, one task per connection as for tokio.
//!
//! Every accepted socket has `TCP_NODELAY` (asyncio's transports set it; the tokio and smol
//! servers set it explicitly, as does the client).
//!
//! The client is a multi-threaded tokio runtime on the main thread (`ASYNCIO_BENCH_CLIENT_THREADS`
//! workers, default: the number of CPUs minus the one a server uses, at least 1). For each
//! message size (64 B and 16 KiB):
//! - throughput: 50 connections, each sending a message and reading the whole echo before the
//!   next, a fixed number of round trips per connection; connections are opened before the clock
//!   starts. The figure is messages (round trips) per second, the best of several repetitions
//!   after a warm-up, the servers taking turns within each repetition;
//! - latency: one connection ping-ponging the message; mean, median and p99 per round trip.
//!
//! Knobs (environment variables; the same words also work as arguments after `--`):
//! - `ASYNCIO_BENCH_QUICK=1` (or `--quick`): round trips divided by 10, fewer repetitions (CI).
//! - `ASYNCIO_BENCH_REPS=N`: measured repetitions per figure (default 5, quick 2).
//! - `ASYNCIO_BENCH_RUNTIMES=asyncio,tokio,smol`: which servers to measure (for profiling one).
//! - `ASYNCIO_BENCH_SIZES=64b,16k,timeout,bulk`: which message sizes to run (`timeout`: the row
//!   of timeouts around I/O, 10k socket pairs each reading under a 30 s timeout that never fires;
//!   `bulk`: 1 GiB (quick: 64 MiB) read from a socket pair in 64 KiB reads, asyncio through a
//!   `StreamReader` (`readinto`), tokio and smol through their `UnixStream`, a writer thread on
//!   the other end).
//! - `ASYNCIO_BENCH_CLIENT_THREADS=N`: the client runtime's worker threads.
//! - `ASYNCIO_BENCH_SERVER_BUF=BYTES`: the tokio and smol servers' read buffer (default 64 KiB;
//!   asyncio's transports read up to `asyncio::transports::MAX_READ_SIZE`, 256 KiB, at a time).
//!
//! Everything stops by itself: each client phase runs under a timeout (the process exits with an
//! error if one is exceeded), and at the end the asyncio loop is stopped with
//! [`asyncio::LoopHandle::stop`], the tokio and smol servers are told to stop and their runtimes
//! dropped, and the server threads joined.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use asyncio::{BaseProtocol, EventLoop, LoopHandle, Protocol, ServerOptions, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Number of concurrent client connections in the throughput test.
const CONNECTIONS: usize = 50;
/// Read buffer of the tokio and smol echo tasks (`ASYNCIO_BENCH_SERVER_BUF` overrides it).
const SERVER_BUF: usize = 64 * 1024;

fn server_buf() -> usize {
    std::env::var("ASYNCIO_BENCH_SERVER_BUF")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SERVER_BUF)
        .max(1)
}
/// Bound on one client phase (a warm-up, a measured run, a latency run).
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

struct Config {
    quick: bool,
    reps: usize,
    client_threads: usize,
    servers: Vec<Kind>,
    sizes: Option<String>,
}

impl Config {
    fn from_env() -> Config {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let arg_value = |k: &str| {
            let prefix = format!("--{k}=");
            args.iter()
                .find_map(|a| a.strip_prefix(&prefix).map(str::to_owned))
        };
        let quick = args.iter().any(|a| a == "--quick")
            || env("ASYNCIO_BENCH_QUICK").is_some_and(|v| v != "0");
        let reps = arg_value("reps")
            .or_else(|| env("ASYNCIO_BENCH_REPS"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 2 } else { 5 })
            .max(1);
        let cpus = thread::available_parallelism().map_or(2, usize::from);
        let client_threads = arg_value("client-threads")
            .or_else(|| env("ASYNCIO_BENCH_CLIENT_THREADS"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| cpus.saturating_sub(1).clamp(1, 4))
            .max(1);
        let runtimes = arg_value("runtimes").or_else(|| env("ASYNCIO_BENCH_RUNTIMES"));
        let servers = Kind::ALL
            .into_iter()
            .filter(|k| {
                runtimes
                    .as_ref()
                    .is_none_or(|r| r.split(',').any(|w| w.trim() == k.name()))
            })
            .collect();
        let sizes = arg_value("sizes").or_else(|| env("ASYNCIO_BENCH_SIZES"));
        Config {
            quick,
            reps,
            client_threads,
            servers,
            sizes,
        }
    }

    fn wants_size(&self, key: &str) -> bool {
        self.sizes
            .as_ref()
            .is_none_or(|s| s.split(',').any(|w| w.trim() == key))
    }

    fn scaled(&self, full: usize) -> usize {
        if self.quick {
            (full / 10).max(1)
        } else {
            full
        }
    }
}

/// One workload: a message size and its round-trip counts.
struct Size {
    label: &'static str,
    /// Name for `ASYNCIO_BENCH_SIZES`.
    key: &'static str,
    bytes: usize,
    /// Round trips per connection in the throughput test (full run).
    trips_per_conn: usize,
    /// Round trips in the latency test (full run).
    latency_trips: usize,
}

const SIZES: [Size; 2] = [
    Size {
        label: "64 B",
        key: "64b",
        bytes: 64,
        trips_per_conn: 2_000,
        latency_trips: 20_000,
    },
    Size {
        label: "16 KiB",
        key: "16k",
        bytes: 16 * 1024,
        trips_per_conn: 400,
        latency_trips: 5_000,
    },
];

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Asyncio,
    Tokio,
    Smol,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Asyncio, Kind::Tokio, Kind::Smol];

    fn name(self) -> &'static str {
        match self {
            Kind::Asyncio => "asyncio",
            Kind::Tokio => "tokio",
            Kind::Smol => "smol",
        }
    }

    fn start(self) -> EchoServer {
        match self {
            Kind::Asyncio => start_asyncio(),
            Kind::Tokio => start_tokio(),
            Kind::Smol => start_smol(),
        }
    }
}

/// How to tell a server thread to stop.
enum Stop {
    Asyncio(LoopHandle),
    Tokio(tokio::sync::oneshot::Sender<()>),
    Smol(smol::channel::Sender<()>),
}

/// A running echo server: its address, its thread and how to stop it.
struct EchoServer {
    kind: Kind,
    addr: SocketAddr,
    stop: Stop,
    thread: JoinHandle<()>,
}

impl EchoServer {
    fn shutdown(self) {
        match self.stop {
            Stop::Asyncio(handle) => handle.stop(),
            Stop::Tokio(tx) => {
                let _ = tx.send(());
            }
            Stop::Smol(tx) => {
                let _ = tx.try_send(());
            }
        }
        if self.thread.join().is_err() {
            panic!("the {} server thread panicked", self.kind.name());
        }
    }
}

/// asyncio's echo protocol: every chunk received is written back at once.
struct Echo {
    transport: Option<Transport>,
}

impl BaseProtocol for Echo {
    fn connection_lost(&mut self, _exc: Option<asyncio::Error>) {
        // Break the transport <-> protocol cycle.
        self.transport = None;
    }
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data).expect("asyncio echo write");
        }
    }
}

fn start_asyncio() -> EchoServer {
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("asyncio-echo".into())
        .spawn(move || {
            let lp = EventLoop::new().expect("asyncio loop");
            let server = lp
                .run_until_complete({
                    let lp = lp.clone();
                    async move {
                        lp.create_server(
                            || Echo { transport: None },
                            &["127.0.0.1"],
                            Some(0),
                            ServerOptions::new().backlog(1024),
                        )
                        .await
                    }
                })
                .expect("run_until_complete")
                .expect("asyncio create_server");
            let addr = server.sockets()[0]
                .address
                .as_ref()
                .and_then(asyncio::Address::as_inet)
                .expect("asyncio server address");
            tx.send((addr, lp.handle())).expect("send address");
            lp.run_forever().expect("asyncio run_forever");
            // Stopped: close the listener and whatever connections remain, let them go.
            server.close();
            server.abort_clients();
            lp.run_until_complete(async move { server.wait_closed().await })
                .expect("run_until_complete")
                .expect("asyncio wait_closed");
            lp.close().expect("asyncio close");
        })
        .expect("spawn asyncio server thread");
    let (addr, handle) = rx.recv().expect("asyncio server failed to start");
    EchoServer {
        kind: Kind::Asyncio,
        addr,
        stop: Stop::Asyncio(handle),
        thread,
    }
}

fn start_tokio() -> EchoServer {
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = thread::Builder::new()
        .name("tokio-echo".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("tokio bind");
                tx.send(listener.local_addr().expect("tokio address"))
                    .expect("send address");
                let mut stop_rx = stop_rx;
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((mut sock, _)) = accepted else { continue };
                            let _ = sock.set_nodelay(true);
                            tokio::spawn(async move {
                                let mut buf = vec![0u8; server_buf()];
                                loop {
                                    match sock.read(&mut buf).await {
                                        Ok(0) | Err(_) => break,
                                        Ok(n) => {
                                            if sock.write_all(&buf[..n]).await.is_err() {
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
            // Dropping the runtime drops the remaining connection tasks.
            drop(rt);
        })
        .expect("spawn tokio server thread");
    let addr = rx.recv().expect("tokio server failed to start");
    EchoServer {
        kind: Kind::Tokio,
        addr,
        stop: Stop::Tokio(stop_tx),
        thread,
    }
}

fn start_smol() -> EchoServer {
    use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};

    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let thread = thread::Builder::new()
        .name("smol-echo".into())
        .spawn(move || {
            let ex = smol::LocalExecutor::new();
            smol::block_on(ex.run(async {
                let listener = smol::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("smol bind");
                tx.send(listener.local_addr().expect("smol address"))
                    .expect("send address");
                loop {
                    let accept = async { Some(listener.accept().await) };
                    let stop = async {
                        let _ = stop_rx.recv().await;
                        None
                    };
                    let Some(accepted) = futures_lite::future::or(stop, accept).await else {
                        break;
                    };
                    let Ok((mut sock, _)) = accepted else {
                        continue;
                    };
                    let _ = sock.set_nodelay(true);
                    ex.spawn(async move {
                        let mut buf = vec![0u8; server_buf()];
                        loop {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if sock.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                    })
                    .detach();
                }
            }));
            // Dropping the executor drops the remaining connection tasks.
            drop(ex);
        })
        .expect("spawn smol server thread");
    let addr = rx.recv().expect("smol server failed to start");
    EchoServer {
        kind: Kind::Smol,
        addr,
        stop: Stop::Smol(stop_tx),
        thread,
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

async fn connect(addr: SocketAddr) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpStream::connect(addr)
        .await
        .expect("client connect");
    sock.set_nodelay(true).expect("client nodelay");
    sock
}

/// `trips` round trips of `msg` on `sock`; checks the last echo byte for byte.
async fn ping_pong(
    sock: &mut tokio::net::TcpStream,
    msg: &[u8],
    trips: usize,
    rtts: Option<&mut Vec<Duration>>,
) {
    let mut buf = vec![0u8; msg.len()];
    let mut rtts = rtts;
    for _ in 0..trips {
        let t0 = Instant::now();
        sock.write_all(msg).await.expect("client write");
        sock.read_exact(&mut buf).await.expect("client read");
        if let Some(r) = rtts.as_deref_mut() {
            r.push(t0.elapsed());
        }
    }
    assert!(buf == msg, "the echo differs from the message");
}

fn message(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| (i % 251) as u8).collect()
}

/// Runs `fut` on the client runtime under [`PHASE_TIMEOUT`]; exits the process if it is exceeded.
fn bounded<T>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    match rt.block_on(async { tokio::time::timeout(PHASE_TIMEOUT, fut).await }) {
        Ok(v) => v,
        Err(_) => {
            eprintln!("net bench: {what} did not finish within {PHASE_TIMEOUT:?}");
            std::process::exit(1);
        }
    }
}

/// `CONNECTIONS` connections doing `trips` round trips each; returns the elapsed time of the
/// round trips (connections are opened before the clock starts and closed after it stops) and
/// the server side's CPU time meanwhile.
fn throughput_run(
    rt: &tokio::runtime::Runtime,
    server: &EchoServer,
    bytes: usize,
    trips: usize,
) -> (Duration, Duration) {
    let addr = server.addr;
    let what = format!("{} throughput ({bytes} B)", server.kind.name());
    bounded(rt, &what, async move {
        let mut socks = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            socks.push(connect(addr).await);
        }
        let msg = std::sync::Arc::new(message(bytes));
        let cpu0 = server_side_cpu();
        let start = Instant::now();
        let tasks: Vec<_> = socks
            .into_iter()
            .map(|mut sock| {
                let msg = msg.clone();
                tokio::spawn(async move {
                    ping_pong(&mut sock, &msg, trips, None).await;
                    sock
                })
            })
            .collect();
        let mut socks = Vec::with_capacity(CONNECTIONS);
        for t in tasks {
            socks.push(t.await.expect("client task"));
        }
        let elapsed = start.elapsed();
        let cpu = cpu_delta(&cpu0, &server_side_cpu());
        drop(socks);
        (elapsed, cpu)
    })
}

/// One connection ping-ponging `trips` times; returns every round trip's duration.
fn latency_run(
    rt: &tokio::runtime::Runtime,
    server: &EchoServer,
    bytes: usize,
    trips: usize,
) -> Vec<Duration> {
    let addr = server.addr;
    let what = format!("{} latency ({bytes} B)", server.kind.name());
    bounded(rt, &what, async move {
        let mut sock = connect(addr).await;
        let msg = message(bytes);
        // Warm the connection up.
        ping_pong(&mut sock, &msg, (trips / 10).max(1), None).await;
        let mut rtts = Vec::with_capacity(trips);
        ping_pong(&mut sock, &msg, trips, Some(&mut rtts)).await;
        rtts
    })
}

// ---------------------------------------------------------------------------------------------
// CPU accounting
// ---------------------------------------------------------------------------------------------

/// On-CPU nanoseconds of every thread of this process, by thread id (from
/// `/proc/self/task/<tid>/schedstat`), with the client's threads (the main thread and the client
/// runtime's `echo-client` workers) left out: what remains is the server side (the measured
/// server's thread, plus any helper thread of its runtime; idle servers use next to nothing).
fn server_side_cpu() -> std::collections::HashMap<u32, u64> {
    let main = std::process::id();
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        if tid == main {
            continue;
        }
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() == "echo-client" {
            continue;
        }
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()));
        if let Some(ns) = ns {
            out.insert(tid, ns);
        }
    }
    out
}

/// Server-side CPU time between two [`server_side_cpu`] snapshots.
fn cpu_delta(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
) -> Duration {
    let ns: u64 = after
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    Duration::from_nanos(ns)
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn fmt_rate(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 1e6 => format!("{:.2} M", r / 1e6),
        Some(r) => format!("{:.1} k", r / 1e3),
        None => "-".into(),
    }
}

fn fmt_ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Latency {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn summarize(mut rtts: Vec<Duration>) -> Latency {
    rtts.sort_unstable();
    let n = rtts.len().max(1);
    let total: Duration = rtts.iter().sum();
    let pct = |p: usize| rtts[((n * p).div_ceil(100)).clamp(1, n) - 1];
    Latency {
        mean: total / n as u32,
        p50: pct(50),
        p99: pct(99),
    }
}

fn main() {
    let cfg = Config::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.client_threads)
        .thread_name("echo-client")
        .enable_all()
        .build()
        .expect("client runtime");
    let servers: Vec<EchoServer> = cfg.servers.iter().map(|k| k.start()).collect();
    let find = |k: Kind| servers.iter().position(|s| s.kind == k);

    println!(
        "TCP echo on 127.0.0.1: {CONNECTIONS} connections, tokio client with {} worker thread(s), \
         {} CPU(s), best of {} run(s) after a warm-up{}",
        cfg.client_threads,
        thread::available_parallelism().map_or(0, usize::from),
        cfg.reps,
        if cfg.quick { " (quick)" } else { "" }
    );
    println!();
    println!("Throughput, messages (round trips) per second, wall clock:");
    println!();
    let header = |unit: &str| {
        println!(
            "{:<8} {:>11} {:>15} {:>15} {:>15} {:>14} {:>13}",
            "size",
            "round trips",
            format!("asyncio {unit}"),
            format!("tokio {unit}"),
            format!("smol {unit}"),
            "asyncio/tokio",
            "asyncio/smol"
        );
    };
    let row =
        |label: &str, n: usize, figs: [Option<f64>; 3], text: &dyn Fn(Option<f64>) -> String| {
            let [a, t, s] = figs;
            println!(
                "{:<8} {:>11} {:>15} {:>15} {:>15} {:>14} {:>13}",
                label,
                n,
                text(a),
                text(t),
                text(s),
                fmt_ratio(a, t),
                fmt_ratio(a, s)
            );
        };
    header("msg/s");
    // Per size: messages per server-CPU-second, printed after the wall-clock table.
    let mut efficiency = Vec::new();
    let mut latencies = Vec::new();
    for size in SIZES.iter().filter(|s| cfg.wants_size(s.key)) {
        let trips = cfg.scaled(size.trips_per_conn);
        let total = (trips * CONNECTIONS) as f64;
        for s in &servers {
            throughput_run(&rt, s, size.bytes, (trips / 4).max(1));
        }
        let mut best = vec![Duration::MAX; servers.len()];
        let mut best_cpu = vec![Duration::MAX; servers.len()];
        for _ in 0..cfg.reps {
            for (i, s) in servers.iter().enumerate() {
                let (wall, cpu) = throughput_run(&rt, s, size.bytes, trips);
                best[i] = best[i].min(wall);
                best_cpu[i] = best_cpu[i].min(cpu);
            }
        }
        let per = |v: &[Duration], k: Kind| find(k).map(|i| total / v[i].as_secs_f64().max(1e-12));
        let figs = |v: &[Duration]| {
            [
                per(v, Kind::Asyncio),
                per(v, Kind::Tokio),
                per(v, Kind::Smol),
            ]
        };
        row(size.label, trips * CONNECTIONS, figs(&best), &fmt_rate);
        efficiency.push((size.label, trips * CONNECTIONS, figs(&best_cpu)));

        let ltrips = cfg.scaled(size.latency_trips);
        for s in &servers {
            let rtts = latency_run(&rt, s, size.bytes, ltrips);
            latencies.push((size.label, ltrips, s.kind, summarize(rtts)));
        }
    }

    println!();
    println!(
        "Server efficiency, messages per second of server-side CPU time (the server's threads' \
         on-CPU time from /proc; the best run; above 1: asyncio needs less CPU per message):"
    );
    println!();
    header("msg/cpu-s");
    for (label, n, figs) in &efficiency {
        row(label, *n, *figs, &fmt_rate);
    }

    println!();
    println!("Ping-pong latency, 1 connection, microseconds per round trip:");
    println!();
    println!(
        "{:<8} {:>11} {:<8} {:>9} {:>9} {:>9}",
        "size", "round trips", "server", "mean", "p50", "p99"
    );
    for (label, trips, kind, l) in &latencies {
        println!(
            "{:<8} {:>11} {:<8} {:>9.1} {:>9.1} {:>9.1}",
            label,
            trips,
            kind.name(),
            us(l.mean),
            us(l.p50),
            us(l.p99)
        );
    }

    for s in servers {
        s.shutdown();
    }
    drop(rt);
    if cfg.wants_size("timeout") {
        timeout_row(&cfg);
    }
    if cfg.wants_size("bulk") {
        bulk_row(&cfg);
    }
}

// ---------------------------------------------------------------------------------------------
// Timeouts around I/O
// ---------------------------------------------------------------------------------------------

/// Connections of the timeout workload: 10k, or fewer when the open-files limit cannot hold
/// two descriptors per connection (both ends of each socket pair live in this process).
fn timeout_connections(quick: bool) -> usize {
    let full = if quick { 1_000 } else { 10_000 };
    let mut lim = libc_nofile();
    lim = lim.saturating_sub(300) / 2;
    full.min(lim.max(1))
}

fn libc_nofile() -> usize {
    // /proc/self/limits: "Max open files  <soft>  <hard>  files".
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

const TIMEOUT_ROUNDS: usize = 4;
const TIMEOUT_SECS: u64 = 30;

/// The writer side of one timeout run: on its own thread, writes one byte to every peer per
/// round, and starts the next round only when the runtime reports (through `next`) that every
/// read of this round completed, so each read of the next round waits: arm, complete, disarm.
fn timeout_writer(
    peers: Vec<std::os::unix::net::UnixStream>,
    next: mpsc::Receiver<()>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        use std::io::Write;
        for round in 0..TIMEOUT_ROUNDS {
            if round > 0 && next.recv().is_err() {
                return;
            }
            for mut p in &peers {
                p.write_all(b"x").expect("timeout writer");
            }
        }
    })
}

/// `n` socket pairs: the runtime's ends (non-blocking) and the writer's.
fn socket_pairs(
    n: usize,
) -> (
    Vec<std::os::unix::net::UnixStream>,
    Vec<std::os::unix::net::UnixStream>,
) {
    (0..n)
        .map(|_| {
            let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
            a.set_nonblocking(true).expect("nonblocking");
            (a, b)
        })
        .unzip()
}

/// Counts completed reads; tells the writer when a round is complete.
struct RoundCounter {
    n: usize,
    done: std::cell::Cell<usize>,
    next: mpsc::Sender<()>,
}

impl RoundCounter {
    fn bump(&self) {
        let d = self.done.get() + 1;
        self.done.set(d);
        if d % self.n == 0 {
            let _ = self.next.send(());
        }
    }
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`): the loop thread's own work,
/// which the writer thread's share of the two cores does not blur as it does the wall clock.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One timeout run: (wall-clock time, the loop thread's CPU time) from the first task's spawn
/// to the last read.
fn timeout_run(kind: Kind, n: usize) -> (Duration, Duration) {
    let (ours, peers) = socket_pairs(n);
    let (tx, rx) = mpsc::channel();
    let counter = std::rc::Rc::new(RoundCounter {
        n,
        done: std::cell::Cell::new(0),
        next: tx,
    });
    let took = match kind {
        Kind::Asyncio => {
            let lp = EventLoop::new().expect("loop");
            let lp2 = lp.clone();
            lp.run_until_complete(async move {
                let (start, cpu) = (Instant::now(), thread_cpu());
                let writer = timeout_writer(peers, rx);
                let tasks: Vec<_> = ours
                    .into_iter()
                    .map(|s| {
                        let c = counter.clone();
                        lp2.create_task(async move {
                            let (r, _w) = asyncio_streams(s).await;
                            let mut b = [0u8; 1];
                            for _ in 0..TIMEOUT_ROUNDS {
                                let n = asyncio::wait_for(r.readinto(&mut b), TIMEOUT_SECS as f64)
                                    .await;
                                assert_eq!(n.expect("timed out").expect("read"), 1);
                                c.bump();
                            }
                        })
                        .expect("task")
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
                let took = (start.elapsed(), thread_cpu() - cpu);
                writer.join().expect("writer");
                took
            })
            .expect("run")
        }
        Kind::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let (start, cpu) = (Instant::now(), thread_cpu());
                let writer = timeout_writer(peers, rx);
                let tasks: Vec<_> = ours
                    .into_iter()
                    .map(|s| {
                        let c = counter.clone();
                        tokio::task::spawn_local(async move {
                            let mut s = tokio::net::UnixStream::from_std(s).expect("register");
                            let mut b = [0u8; 1];
                            for _ in 0..TIMEOUT_ROUNDS {
                                let r = tokio::time::timeout(
                                    Duration::from_secs(TIMEOUT_SECS),
                                    s.read(&mut b),
                                )
                                .await;
                                assert_eq!(r.expect("timed out").expect("read"), 1);
                                c.bump();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
                let took = (start.elapsed(), thread_cpu() - cpu);
                writer.join().expect("writer");
                took
            })
        }
        Kind::Smol => {
            use futures_lite::{AsyncReadExt as _, FutureExt as _};
            let ex = smol::LocalExecutor::new();
            smol::block_on(ex.run(async {
                let (start, cpu) = (Instant::now(), thread_cpu());
                let writer = timeout_writer(peers, rx);
                let tasks: Vec<_> = ours
                    .into_iter()
                    .map(|s| {
                        let c = counter.clone();
                        ex.spawn(async move {
                            let mut s = smol::Async::new(s).expect("register");
                            let mut b = [0u8; 1];
                            for _ in 0..TIMEOUT_ROUNDS {
                                let r = s.read(&mut b).or(async {
                                    smol::Timer::after(Duration::from_secs(TIMEOUT_SECS)).await;
                                    Err(std::io::ErrorKind::TimedOut.into())
                                });
                                assert_eq!(r.await.expect("read"), 1);
                                c.bump();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await;
                }
                let took = (start.elapsed(), thread_cpu() - cpu);
                writer.join().expect("writer");
                took
            }))
        }
    };
    took
}

/// The timeout row: reads per second, best of `reps` after a warm-up, per runtime.
fn timeout_row(cfg: &Config) {
    let n = timeout_connections(cfg.quick);
    println!();
    println!(
        "Timeouts around I/O: {n} connections (socket pairs), each doing {TIMEOUT_ROUNDS} reads of \
         1 byte, each read under a {TIMEOUT_SECS} s timeout that never fires (asyncio `wait_for` + \
         `StreamReader::readinto` | `tokio::time::timeout` + `UnixStream::read` | smol \
         `read().or(Timer)`); \
         every read waits (the writer thread sends the next round once all reads of a round \
         completed). Reads per second, best of {}:",
        cfg.reps
    );
    println!();
    let mut figs = [None; 3];
    let mut cpu_figs = [None; 3];
    let reads = (n * TIMEOUT_ROUNDS) as f64;
    for (slot, kind) in [Kind::Asyncio, Kind::Tokio, Kind::Smol]
        .into_iter()
        .enumerate()
    {
        if !cfg.servers.contains(&kind) {
            continue;
        }
        timeout_run(kind, (n / 4).max(1));
        let runs: Vec<_> = (0..cfg.reps).map(|_| timeout_run(kind, n)).collect();
        let best = runs.iter().map(|r| r.0).min().expect("reps >= 1");
        let best_cpu = runs.iter().map(|r| r.1).min().expect("reps >= 1");
        figs[slot] = Some(reads / best.as_secs_f64().max(1e-12));
        cpu_figs[slot] = Some(reads / best_cpu.as_secs_f64().max(1e-12));
    }
    print_three("asyncio reads/s", figs, fmt_rate);
    println!();
    println!(
        "Reads per CPU second of the loop thread (its own work, best of {}):",
        cfg.reps
    );
    println!();
    print_three("asyncio", cpu_figs, fmt_rate);
}

/// A row of figures for asyncio, tokio and smol with asyncio's ratios, under a header whose
/// first column is `first`.
fn print_three(first: &str, figs: [Option<f64>; 3], show: impl Fn(Option<f64>) -> String) {
    println!(
        "{:>15} {:>15} {:>15} {:>14} {:>13}",
        first, "tokio", "smol", "asyncio/tokio", "asyncio/smol"
    );
    println!(
        "{:>15} {:>15} {:>15} {:>14} {:>13}",
        show(figs[0]),
        show(figs[1]),
        show(figs[2]),
        fmt_ratio(figs[0], figs[1]),
        fmt_ratio(figs[0], figs[2])
    );
}

// ---------------------------------------------------------------------------------------------
// Bulk stream reads
// ---------------------------------------------------------------------------------------------

const BULK_CHUNK: usize = 64 * 1024;

/// One bulk run: a writer thread writes `total` bytes into one end of a socket pair, the
/// runtime reads them from the other end in 64 KiB reads until EOF. Returns the reading time.
fn bulk_run(kind: Kind, total: usize) -> Duration {
    use std::io::Write;
    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("nonblocking");
    let writer = thread::spawn(move || {
        let chunk = vec![7u8; BULK_CHUNK];
        let mut left = total;
        while left > 0 {
            let n = left.min(BULK_CHUNK);
            peer.write_all(&chunk[..n]).expect("bulk writer");
            left -= n;
        }
    });
    let start = Instant::now();
    let got = match kind {
        Kind::Asyncio => {
            let lp = EventLoop::new().expect("loop");
            lp.run_until_complete(async move {
                let (r, _w) = asyncio_streams(ours).await;
                let mut buf = vec![0u8; BULK_CHUNK];
                let mut got = 0;
                loop {
                    let n = r.readinto(&mut buf).await.expect("read");
                    if n == 0 {
                        break got;
                    }
                    got += n;
                }
            })
            .expect("run")
        }
        Kind::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut s = tokio::net::UnixStream::from_std(ours).expect("register");
                let mut buf = vec![0u8; BULK_CHUNK];
                let mut got = 0;
                loop {
                    let n = s.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break got;
                    }
                    got += n;
                }
            })
        }
        Kind::Smol => {
            use futures_lite::AsyncReadExt as _;
            smol::block_on(async move {
                let mut s = smol::Async::new(ours).expect("register");
                let mut buf = vec![0u8; BULK_CHUNK];
                let mut got = 0;
                loop {
                    let n = s.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break got;
                    }
                    got += n;
                }
            })
        }
    };
    let took = start.elapsed();
    writer.join().expect("writer");
    assert_eq!(got, total);
    took
}

/// The bulk row: MiB/s read, best of `reps` after a warm-up, the runtimes taking turns.
fn bulk_row(cfg: &Config) {
    let total: usize = if cfg.quick { 64 << 20 } else { 1 << 30 };
    println!();
    println!(
        "Bulk stream reads: {} MiB from a socket pair in {} KiB reads (asyncio \
         `StreamReader::readinto` | tokio `UnixStream::read` | smol `Async<UnixStream>::read`), \
         a writer thread on the other end. MiB/s, best of {}:",
        total >> 20,
        BULK_CHUNK >> 10,
        cfg.reps
    );
    println!();
    let kinds: Vec<(usize, Kind)> = [Kind::Asyncio, Kind::Tokio, Kind::Smol]
        .into_iter()
        .enumerate()
        .filter(|(_, k)| cfg.servers.contains(k))
        .collect();
    let mut best = [None::<Duration>; 3];
    for &(_, kind) in &kinds {
        bulk_run(kind, (total / 8).max(BULK_CHUNK));
    }
    for _ in 0..cfg.reps {
        for &(slot, kind) in &kinds {
            let took = bulk_run(kind, total);
            best[slot] = Some(best[slot].map_or(took, |b| b.min(took)));
        }
    }
    let mib = (total >> 20) as f64;
    let figs = best.map(|b| b.map(|b| mib / b.as_secs_f64().max(1e-12)));
    let show = |f: Option<f64>| f.map_or_else(|| "-".into(), |f| format!("{f:.0}"));
    print_three("asyncio MiB/s", figs, show);
}

/// asyncio streams over an existing socket (asyncio's `sock=`): registered with the selector
/// once, as tokio's and smol's sockets are.
async fn asyncio_streams(
    sock: std::os::unix::net::UnixStream,
) -> (
    asyncio::streams::StreamReader,
    asyncio::streams::StreamWriter,
) {
    asyncio::streams::open_connection_with(
        None,
        None,
        asyncio::streams::DEFAULT_LIMIT,
        asyncio::ConnectOptions::new().sock(sock),
    )
    .await
    .expect("streams")
}
