//! Policy-layer benchmarks: `get_event_loop()` against tokio's `Handle::current()`, and child
//! exit notification latency per child watcher.
//!
//! Run with `cargo bench --bench policy`; `ASYNCIO_BENCH_QUICK=1` scales the sizes down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncio::{
    ChildWatcher, EventLoop, FastChildWatcher, PidfdChildWatcher, SafeChildWatcher,
    ThreadedChildWatcher,
};

fn quick() -> bool {
    std::env::var_os("ASYNCIO_BENCH_QUICK").is_some_and(|v| !v.is_empty())
}

fn best_of<F: FnMut() -> Duration>(reps: usize, mut f: F) -> Duration {
    f();
    (0..reps).map(|_| f()).min().unwrap_or_default()
}

fn per_op_ns(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn bench_get_event_loop(n: u64) {
    // asyncio, main thread, no loop running: the policy path (thread-local slot lookup).
    let lp = asyncio::get_event_loop().expect("main thread creates a loop");
    let policy_path = best_of(5, || {
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(asyncio::get_event_loop().unwrap());
        }
        t.elapsed()
    });
    // asyncio, inside a running task: the running-loop shortcut.
    let running_path = best_of(5, || {
        lp.run_until_complete(async move {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(asyncio::get_event_loop().unwrap());
            }
            t.elapsed()
        })
        .unwrap()
    });
    // tokio current_thread: Handle::current() inside the runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let tokio_path = best_of(5, || {
        rt.block_on(async {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(tokio::runtime::Handle::current());
            }
            t.elapsed()
        })
    });
    let (p, r, k) = (
        per_op_ns(policy_path, n),
        per_op_ns(running_path, n),
        per_op_ns(tokio_path, n),
    );
    println!("get_event_loop ({n} calls)");
    println!(
        "  asyncio, main thread via policy : {p:8.1} ns/call  ({:.2}x tokio)",
        k / p
    );
    println!(
        "  asyncio, inside a running task  : {r:8.1} ns/call  ({:.2}x tokio)",
        k / r
    );
    println!("  tokio Handle::current()         : {k:8.1} ns/call");
}

/// Spawns `n` short-lived children one after another; for each, registers it with `watcher`
/// from the running loop and awaits the exit callback. Reports spawn-to-callback time (which
/// includes the child's own run time: `true` exits at once).
fn child_latency(name: &str, watcher: Arc<dyn ChildWatcher>, n: usize) {
    let lp = EventLoop::new().unwrap();
    watcher.attach_loop(Some(&lp)).unwrap();
    let w2 = watcher.clone();
    let total = Instant::now();
    let mut v = lp
        .run_until_complete(async move {
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                let child = std::process::Command::new("true")
                    .spawn()
                    .expect("spawn true");
                let pid = child.id() as i32;
                std::mem::forget(child); // The watcher reaps it.
                let (tx, rx) = futures::channel::oneshot::channel();
                w2.add_child_handler(
                    pid,
                    Box::new(move |_pid, rc| {
                        let _ = tx.send(rc);
                    }),
                )
                .unwrap();
                assert_eq!(rx.await.unwrap(), 0);
                lat.push(started.elapsed());
            }
            lat
        })
        .unwrap();
    let total = total.elapsed();
    v.sort();
    let pct = |p: f64| v[((v.len() as f64 - 1.0) * p) as usize];
    println!(
        "  {name:<9} {n} children: p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}  total {:>8.1?}",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        total
    );
    watcher.close();
    lp.close().unwrap();
}

fn main() {
    let n = if quick() { 100_000 } else { 5_000_000 };
    bench_get_event_loop(n);
    let children = if quick() { 50 } else { 200 };
    println!("child exit notification latency (spawn -> callback on the loop)");
    if PidfdChildWatcher::is_supported() {
        child_latency("pidfd", Arc::new(PidfdChildWatcher::new()), children);
    } else {
        println!("  pidfd     not supported on this kernel");
    }
    child_latency("threaded", Arc::new(ThreadedChildWatcher::new()), children);
    child_latency("safe", Arc::new(SafeChildWatcher::new()), children);
    // Last: the fast watcher reaps every child of the process.
    child_latency("fast", Arc::new(FastChildWatcher::new()), children);
}
