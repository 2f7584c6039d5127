//! Synchronization benchmarks: asyncio's `Queue` and `Lock` on this crate's loop against tokio
//! (`mpsc`, `Mutex`, on a `current_thread` runtime inside a `LocalSet`) and smol (`async-channel`,
//! `async-lock`, through `smol::channel` / `smol::lock`, on a `LocalExecutor`), in one process.
//!
//! Run with `cargo bench --bench sync`. Each figure is the best of several rounds after one
//! warm-up round, in operations per second of this thread's CPU time (every runtime runs on this
//! one thread; CPU time leaves out the time the thread is preempted on a loaded machine), and a
//! round runs asyncio, tokio and smol in turn, so they share the machine's load. The ratio
//! columns are asyncio's figure divided by the other runtime's (above 1: asyncio is faster).
//! `ASYNCIO_BENCH_QUICK=1` (or `--quick`) divides the sizes by 10 and runs 3 rounds, for CI;
//! `ASYNCIO_BENCH_REPS=N` sets the rounds, `ASYNCIO_BENCH_ROWS=queue,lock` the rows,
//! `ASYNCIO_BENCH_N=N` every row's size.
//!
//! Workloads:
//! - `queue`: a producer task puts N integers into a queue of capacity 128 and a consumer task
//!   gets them (`Queue::new(128)` | `tokio::sync::mpsc::channel(128)` /
//!   `async_channel::bounded(128)`); one operation is one item through.
//! - `lock`: 10 tasks each take the lock, bump a counter, yield once while holding it (so the
//!   others queue up and every release is a hand-off) and release, N/10 times each
//!   (`locks::Lock` | `tokio::sync::Mutex` / `async_lock::Mutex`; the yield is `sleep(0)` |
//!   `tokio::task::yield_now` / `futures_lite::future::yield_now`); one operation is one
//!   acquire/release.

use std::cell::Cell;
use std::rc::Rc;

struct Config {
    scale: u64,
    reps: usize,
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("ASYNCIO_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let reps = std::env::var("ASYNCIO_BENCH_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 3 } else { 5 })
            .max(1);
        Config {
            scale: if quick { 10 } else { 1 },
            reps,
        }
    }
}

/// This thread's CPU time in seconds. The three runtimes run every workload on this one thread
/// (none of them starts a helper thread for it), so CPU time measures their work without the
/// time the thread spends preempted: on a shared machine that is most of the noise.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The best rates (operations per CPU second) of `reps` rounds after one warm-up round; each
/// round runs every runtime once, in turn, so that all of them see the same machine load.
fn best_of_rounds<const K: usize>(reps: usize, ops: u64, runs: [&dyn Fn(); K]) -> [f64; K] {
    for run in runs {
        run();
    }
    let mut best = [0.0f64; K];
    for _ in 0..reps {
        for (run, best) in runs.iter().zip(&mut best) {
            let t = thread_cpu();
            run();
            *best = best.max(ops as f64 / (thread_cpu() - t));
        }
    }
    best
}

const CAP: usize = 128;
const LOCKERS: u64 = 10;

// ---------------------------------------------------------------------------------------------
// asyncio

fn asyncio_queue(n: u64) {
    use asyncio::queues::Queue;
    let lp = asyncio::EventLoop::new().unwrap();
    let total = lp
        .run_until_complete(async move {
            let q: Queue<u64> = Queue::new(CAP);
            let lp = asyncio::get_running_loop().unwrap();
            let q2 = q.clone();
            let producer = lp
                .create_task(async move {
                    for i in 0..n {
                        q2.put(i).await.unwrap();
                    }
                })
                .unwrap();
            let mut sum = 0u64;
            for _ in 0..n {
                sum = sum.wrapping_add(q.get().await.unwrap());
            }
            producer.await.unwrap();
            sum
        })
        .unwrap();
    assert_eq!(total, n * (n - 1) / 2);
    lp.close().unwrap();
}

fn asyncio_lock(n: u64) {
    use asyncio::locks::Lock;
    let lp = asyncio::EventLoop::new().unwrap();
    let count = Rc::new(Cell::new(0u64));
    let c = count.clone();
    lp.run_until_complete(async move {
        let lock = Lock::new();
        let tasks = (0..LOCKERS).map(|_| {
            let (lock, c) = (lock.clone(), c.clone());
            async move {
                for _ in 0..n / LOCKERS {
                    let _g = lock.acquire().await;
                    c.set(c.get() + 1);
                    asyncio::sleep(0.0).await.unwrap();
                }
            }
        });
        asyncio::gather(tasks).await.unwrap();
    })
    .unwrap();
    assert_eq!(count.get(), n / LOCKERS * LOCKERS);
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// tokio: current_thread runtime, LocalSet

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn tokio_queue(n: u64) {
    let rt = tokio_rt();
    let total = tokio::task::LocalSet::new().block_on(&rt, async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAP);
        let producer = tokio::task::spawn_local(async move {
            for i in 0..n {
                tx.send(i).await.unwrap();
            }
        });
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(rx.recv().await.unwrap());
        }
        producer.await.unwrap();
        sum
    });
    assert_eq!(total, n * (n - 1) / 2);
}

fn tokio_lock(n: u64) {
    let rt = tokio_rt();
    let count = Rc::new(Cell::new(0u64));
    let c = count.clone();
    tokio::task::LocalSet::new().block_on(&rt, async move {
        let lock = Rc::new(tokio::sync::Mutex::new(()));
        let handles: Vec<_> = (0..LOCKERS)
            .map(|_| {
                let (lock, c) = (lock.clone(), c.clone());
                tokio::task::spawn_local(async move {
                    for _ in 0..n / LOCKERS {
                        let _g = lock.lock().await;
                        c.set(c.get() + 1);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(count.get(), n / LOCKERS * LOCKERS);
}

// ---------------------------------------------------------------------------------------------
// smol: LocalExecutor driven by futures_lite's block_on

fn smol_queue(n: u64) {
    let ex = smol::LocalExecutor::new();
    let total = futures_lite::future::block_on(ex.run(async {
        let (tx, rx) = smol::channel::bounded::<u64>(CAP);
        let producer = ex.spawn(async move {
            for i in 0..n {
                tx.send(i).await.unwrap();
            }
        });
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(rx.recv().await.unwrap());
        }
        producer.await;
        sum
    }));
    assert_eq!(total, n * (n - 1) / 2);
}

fn smol_lock(n: u64) {
    let ex = smol::LocalExecutor::new();
    let count = Rc::new(Cell::new(0u64));
    futures_lite::future::block_on(ex.run(async {
        let lock = Rc::new(smol::lock::Mutex::new(()));
        let tasks: Vec<_> = (0..LOCKERS)
            .map(|_| {
                let (lock, c) = (lock.clone(), count.clone());
                ex.spawn(async move {
                    for _ in 0..n / LOCKERS {
                        let _g = lock.lock().await;
                        c.set(c.get() + 1);
                        futures_lite::future::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
    }));
    assert_eq!(count.get(), n / LOCKERS * LOCKERS);
}

// ---------------------------------------------------------------------------------------------

fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.1}k", v / 1e3)
    }
}

fn main() {
    let cfg = Config::from_env();
    println!(
        "{:<62} {:>8} {:>8} {:>8} {:>7} {:>7}",
        "workload: asyncio | tokio / smol", "asyncio", "tokio", "smol", "a/tokio", "a/smol"
    );
    type Run = fn(u64);
    let rows: [(&str, u64, Run, Run, Run); 2] = [
        (
            "queue: Queue(128) put/get, 2 tasks | mpsc(128) / async-channel",
            1_000_000,
            asyncio_queue,
            tokio_queue,
            smol_queue,
        ),
        (
            "lock: 10 tasks hand a Lock over | tokio Mutex / async-lock",
            500_000,
            asyncio_lock,
            tokio_lock,
            smol_lock,
        ),
    ];
    // `ASYNCIO_BENCH_ROWS=queue` runs only the rows whose label starts with one of the listed
    // words (comma-separated); `ASYNCIO_BENCH_N=N` overrides every row's size (for profiling).
    let only = std::env::var("ASYNCIO_BENCH_ROWS").unwrap_or_default();
    let size = std::env::var("ASYNCIO_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok());
    for (label, full, a, t, s) in rows {
        if !only.is_empty() && !only.split(',').any(|w| label.starts_with(w)) {
            continue;
        }
        let n = size.unwrap_or(full / cfg.scale);
        let [ra, rt, rs] = best_of_rounds(cfg.reps, n, [&|| a(n), &|| t(n), &|| s(n)]);
        println!(
            "{:<62} {:>8} {:>8} {:>8} {:>6.2}x {:>6.2}x",
            label,
            rate(ra),
            rate(rt),
            rate(rs),
            ra / rt,
            ra / rs
        );
    }
}
