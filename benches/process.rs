//! Subprocess benchmark: spawning children and moving data through a `cat`, on this crate's
//! [`asyncio::EventLoop`], on tokio (`tokio::process`, `current_thread` runtime with
//! `enable_all`) and on smol (`async-process` under `smol::block_on`), in one process.
//!
//! Run with `cargo bench --bench process`. Workloads:
//! - `spawn-seq`: spawn `true` and wait for it, one after the other (children per second);
//! - `spawn-50`: 50 `true` children started at once, then all waited for (children per second);
//! - `cat-pipe`: 1 GiB written to `cat`'s stdin in 256 KiB chunks (with `drain` / `write_all`)
//!   while its stdout is read back concurrently, 64 KiB reads (MiB per second). asyncio uses
//!   the `Process` streams (`StreamWriter::write` + `drain`, `StreamReader::readinto` into one
//!   64 KiB buffer, as the tokio and smol sides read).
//! - `cat-pipe write_all`: the same, asyncio writing with `futures::io::AsyncWriteExt::write_all`
//!   on the stdin `StreamWriter` (from the caller's buffer, no copy), as tokio and smol write;
//!   their columns repeat the `cat` row's workload.
//!
//! Each figure is the best of several repetitions after a warm-up run; the runtimes take turns
//! within each repetition, so load from elsewhere on the machine hits them alike. The ratio
//! columns are asyncio's figure divided by the other runtime's (above 1: asyncio is faster).
//! asyncio uses the default policy's child watcher (pidfd where the kernel has it, else
//! threaded).
//!
//! On a shared machine the rates vary from run to run far more than the runtimes differ; the
//! parent's CPU time is steadier: `ASYNCIO_BENCH_FILTER=cat ASYNCIO_BENCH_RUNTIMES=asyncio
//! perf stat -i -e task-clock target/release/deps/process-* --bench` (`-i`: the children's
//! time apart). Figures and where the time goes: the book's performance chapter.
//!
//! Knobs: `ASYNCIO_BENCH_QUICK=1` (or `--quick`): fewer children, 32 MiB through `cat`, 2
//! repetitions (CI). `ASYNCIO_BENCH_REPS=N`: repetitions (default 5).
//! `ASYNCIO_BENCH_RUNTIMES=asyncio,tokio,smol`: which runtimes to measure (to profile one);
//! `ASYNCIO_BENCH_FILTER=sequential,50,cat`: which workloads.

use std::time::{Duration, Instant};

use asyncio::subprocess::{create_subprocess_exec, Stdio, SubprocessOptions};

const CHUNK: usize = 256 * 1024;
const READ: usize = 64 * 1024;
const NO_ARGS: [&str; 0] = [];

struct Config {
    quick: bool,
    reps: usize,
    seq: usize,
    rounds50: usize,
    pipe_bytes: usize,
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::var("ASYNCIO_BENCH_QUICK").is_ok_and(|v| v == "1")
            || std::env::args().any(|a| a == "--quick");
        let reps = std::env::var("ASYNCIO_BENCH_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 2 } else { 5 });
        Config {
            quick,
            reps,
            seq: if quick { 50 } else { 500 },
            rounds50: if quick { 2 } else { 10 },
            pipe_bytes: if quick { 32 << 20 } else { 1 << 30 },
        }
    }
}

#[derive(Clone, Copy)]
enum Work {
    Seq(usize),
    Fifty(usize),
    Pipe(usize),
    /// `Pipe`, asyncio writing with `AsyncWriteExt::write_all`.
    PipeWriteAll(usize),
}

impl Work {
    /// How many units (children, MiB) one run does.
    fn units(self) -> f64 {
        match self {
            Work::Seq(n) => n as f64,
            Work::Fifty(rounds) => (rounds * 50) as f64,
            Work::Pipe(bytes) | Work::PipeWriteAll(bytes) => bytes as f64 / (1 << 20) as f64,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// asyncio
// ---------------------------------------------------------------------------------------------

async fn asyncio_true() {
    let p = create_subprocess_exec("true", NO_ARGS, SubprocessOptions::new())
        .await
        .expect("spawn true");
    assert_eq!(p.wait().await, 0);
}

async fn asyncio_pipe(bytes: usize, write_all: bool) {
    let options = SubprocessOptions::new()
        .stdin(Stdio::Pipe)
        .stdout(Stdio::Pipe);
    let mut cat = create_subprocess_exec("cat", NO_ARGS, options)
        .await
        .expect("spawn cat");
    let mut stdin = cat.stdin.take().expect("stdin");
    let stdout = cat.stdout.take().expect("stdout");
    let chunk = vec![7u8; CHUNK];
    let write = async move {
        use futures::io::AsyncWriteExt;
        let mut left = bytes;
        while left > 0 {
            let n = left.min(CHUNK);
            if write_all {
                stdin.write_all(&chunk[..n]).await.expect("write_all");
            } else {
                stdin.write(&chunk[..n]).expect("write");
                stdin.drain().await.expect("drain");
            }
            left -= n;
        }
        stdin.close();
    };
    let read = async move {
        let mut buf = vec![0u8; READ];
        let mut got = 0;
        loop {
            let n = stdout.readinto(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            got += n;
        }
        got
    };
    let ((), got) = futures::future::join(write, read).await;
    assert_eq!(got, bytes);
    assert_eq!(cat.wait().await, 0);
}

fn run_asyncio(work: Work) -> Duration {
    let event_loop = asyncio::EventLoop::new().expect("loop");
    let took = event_loop
        .run_until_complete(async move {
            let start = Instant::now();
            match work {
                Work::Seq(n) => {
                    for _ in 0..n {
                        asyncio_true().await;
                    }
                }
                Work::Fifty(rounds) => {
                    let lp = asyncio::get_running_loop().expect("loop");
                    for _ in 0..rounds {
                        let tasks: Vec<_> = (0..50)
                            .map(|_| lp.create_task(asyncio_true()).expect("task"))
                            .collect();
                        for t in tasks {
                            t.await.expect("task");
                        }
                    }
                }
                Work::Pipe(bytes) => asyncio_pipe(bytes, false).await,
                Work::PipeWriteAll(bytes) => asyncio_pipe(bytes, true).await,
            }
            start.elapsed()
        })
        .expect("run");
    event_loop.close().expect("close");
    took
}

// ---------------------------------------------------------------------------------------------
// tokio
// ---------------------------------------------------------------------------------------------

async fn tokio_true() {
    let status = tokio::process::Command::new("true")
        .status()
        .await
        .expect("spawn true");
    assert!(status.success());
}

async fn tokio_pipe(bytes: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut cat = tokio::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cat");
    let mut stdin = cat.stdin.take().expect("stdin");
    let mut stdout = cat.stdout.take().expect("stdout");
    let chunk = vec![7u8; CHUNK];
    let write = async move {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(CHUNK);
            stdin.write_all(&chunk[..n]).await.expect("write");
            left -= n;
        }
        drop(stdin);
    };
    let read = async move {
        let mut buf = vec![0u8; READ];
        let mut got = 0;
        loop {
            let n = stdout.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            got += n;
        }
        got
    };
    let ((), got) = tokio::join!(write, read);
    assert_eq!(got, bytes);
    assert!(cat.wait().await.expect("wait").success());
}

fn run_tokio(work: Work) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let start = Instant::now();
        match work {
            Work::Seq(n) => {
                for _ in 0..n {
                    tokio_true().await;
                }
            }
            Work::Fifty(rounds) => {
                for _ in 0..rounds {
                    let tasks: Vec<_> = (0..50).map(|_| tokio::spawn(tokio_true())).collect();
                    for t in tasks {
                        t.await.expect("task");
                    }
                }
            }
            Work::Pipe(bytes) | Work::PipeWriteAll(bytes) => tokio_pipe(bytes).await,
        }
        start.elapsed()
    })
}

// ---------------------------------------------------------------------------------------------
// smol
// ---------------------------------------------------------------------------------------------

async fn smol_true() {
    let status = async_process::Command::new("true")
        .status()
        .await
        .expect("spawn true");
    assert!(status.success());
}

async fn smol_pipe(bytes: usize) {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    let mut cat = async_process::Command::new("cat")
        .stdin(async_process::Stdio::piped())
        .stdout(async_process::Stdio::piped())
        .spawn()
        .expect("spawn cat");
    let mut stdin = cat.stdin.take().expect("stdin");
    let mut stdout = cat.stdout.take().expect("stdout");
    let chunk = vec![7u8; CHUNK];
    let write = async move {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(CHUNK);
            stdin.write_all(&chunk[..n]).await.expect("write");
            left -= n;
        }
        drop(stdin);
    };
    let read = async move {
        let mut buf = vec![0u8; READ];
        let mut got = 0;
        loop {
            let n = stdout.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            got += n;
        }
        got
    };
    let ((), got) = futures_lite::future::zip(write, read).await;
    assert_eq!(got, bytes);
    assert!(cat.status().await.expect("wait").success());
}

fn run_smol(work: Work) -> Duration {
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        let start = Instant::now();
        match work {
            Work::Seq(n) => {
                for _ in 0..n {
                    smol_true().await;
                }
            }
            Work::Fifty(rounds) => {
                for _ in 0..rounds {
                    let tasks: Vec<_> = (0..50).map(|_| ex.spawn(smol_true())).collect();
                    for t in tasks {
                        t.await;
                    }
                }
            }
            Work::Pipe(bytes) | Work::PipeWriteAll(bytes) => smol_pipe(bytes).await,
        }
        start.elapsed()
    }))
}

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------

/// One runtime's run of a workload: how long it took.
type Runner = fn(Work) -> Duration;

/// Best rate (units per second) of each runtime over `reps` runs after a warm-up, `None` for
/// a runtime not measured. The runtimes take turns within each repetition (asyncio, tokio,
/// smol, asyncio, ...), so a burst of load from the rest of the machine hits them alike.
fn best_of(cfg: &Config, work: Work, runs: &[Option<Runner>]) -> Vec<f64> {
    let warm = match work {
        Work::Pipe(bytes) => Work::Pipe(bytes.min(8 << 20)),
        Work::PipeWriteAll(bytes) => Work::PipeWriteAll(bytes.min(8 << 20)),
        other => other,
    };
    for run in runs.iter().flatten() {
        run(warm);
    }
    let mut best = vec![0.0f64; runs.len()];
    for _ in 0..cfg.reps {
        for (b, run) in best.iter_mut().zip(runs) {
            if let Some(run) = run {
                *b = b.max(work.units() / run(work).as_secs_f64());
            }
        }
    }
    runs.iter()
        .zip(best)
        .map(|(r, b)| if r.is_some() { b } else { f64::NAN })
        .collect()
}

fn main() {
    let cfg = Config::from_env();
    println!(
        "process benchmark ({} mode, best of {}): asyncio | tokio::process | async-process (smol)",
        if cfg.quick { "quick" } else { "full" },
        cfg.reps
    );
    let rows = [
        (
            format!("spawn+wait `true`, sequential x{} (children/s)", cfg.seq),
            Work::Seq(cfg.seq),
        ),
        (
            format!(
                "spawn+wait `true`, 50 at once x{} (children/s)",
                cfg.rounds50
            ),
            Work::Fifty(cfg.rounds50),
        ),
        (
            format!("{} MiB through `cat` (MiB/s)", cfg.pipe_bytes >> 20),
            Work::Pipe(cfg.pipe_bytes),
        ),
        (
            format!(
                "{} MiB through `cat`, write_all (MiB/s)",
                cfg.pipe_bytes >> 20
            ),
            Work::PipeWriteAll(cfg.pipe_bytes),
        ),
    ];
    println!(
        "{:<52} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "workload", "asyncio", "tokio", "smol", "/tokio", "/smol"
    );
    let wanted = |var: &str, key: &str| {
        std::env::var(var).map_or(true, |v| v.split(',').any(|w| key.contains(w.trim())))
    };
    for (label, work) in rows {
        if !wanted("ASYNCIO_BENCH_FILTER", &label) {
            continue;
        }
        let runs: [(&str, Runner); 3] = [
            ("asyncio", run_asyncio),
            ("tokio", run_tokio),
            ("smol", run_smol),
        ];
        let runs: Vec<_> = runs
            .iter()
            .map(|&(key, run)| wanted("ASYNCIO_BENCH_RUNTIMES", key).then_some(run))
            .collect();
        let rates = best_of(&cfg, work, &runs);
        let (a, t, s) = (rates[0], rates[1], rates[2]);
        println!(
            "{label:<52} {a:>10.0} {t:>10.0} {s:>10.0} {:>8.2} {:>8.2}",
            a / t,
            a / s
        );
    }
}
