//! Core benchmarks: the same work on this crate's [`asyncio::EventLoop`], on tokio's
//! `current_thread` runtime, on smol's `LocalExecutor` and (task rows 1-3) on monoio's
//! single-thread runtime, in one process.
//!
//! Run with `cargo bench --bench core`. Each figure is the best of several repetitions after one
//! warm-up run, in operations per second; the ratio columns are asyncio's figure divided by the
//! other runtime's (above 1: asyncio is faster).
//!
//! On glibc the bench pins malloc's trim and mmap thresholds at start-up, so that the heap a
//! warm-up run grew stays mapped for the measured runs. Otherwise glibc's dynamic thresholds make
//! a figure depend on which workloads ran before it: freed memory goes back to the kernel until a
//! large enough block has been freed once, and every run then pays page faults again (asyncio's
//! 200k tasks measured 2.8M/s run alone and 6.3M/s after the batch workload). Set
//! `ASYNCIO_BENCH_MALLOC=default` to keep glibc's defaults.
//!
//! Knobs (environment variables, or the arguments in brackets after `cargo bench --bench core --`):
//! - `ASYNCIO_BENCH_QUICK=1` (`--quick`): sizes divided by 10 and 3 repetitions, for CI.
//! - `ASYNCIO_BENCH_REPS=N` (`--reps=N`): measured repetitions per figure (default 5).
//! - `ASYNCIO_BENCH_FILTER=chain,timer` (`--filter=...`): run only the workloads whose key
//!   contains one of the words (keys: `chain`, `yield`, `batch`, `tasks`, `timer-arm`,
//!   `timer-arm-warm`, `timer-run`, `timer-task`, `remote`, `remote-many`, `executor`).
//! - `ASYNCIO_BENCH_RUNTIMES=asyncio` (`--runtimes=...`): which of `asyncio`, `tokio`, `smol`,
//!   `monoio` to measure (to profile one).
//!
//! Choices of equivalents, also printed in each row's label (`asyncio | tokio / smol`). Where a
//! competitor has two idiomatic set-ups, both are measured and the better figure is reported
//! (the last column names the winner), so asyncio is held to the stronger of the two:
//! - Tokio: a `current_thread` runtime with the time driver only (`enable_time()`): no workload
//!   does I/O, and tokio's I/O driver (there whenever tokio's `net` feature is on) makes its
//!   wake-ups dearer: an eventfd write where a thread unpark does otherwise. Task workloads run
//!   both with plain `tokio::spawn` (every future here is `Send`: the shared counters are
//!   thread-locals) and with `spawn_local` inside a `LocalSet` (what `!Send` futures, which
//!   asyncio accepts, need).
//! - Smol: a `LocalExecutor` driven both by `smol::block_on` (async-io's, which also runs the
//!   reactor on this thread) and by `futures_lite::future::block_on` (a plain thread parker; the
//!   reactor then runs on async-io's own thread). Timers are `smol::Timer` and blocking jobs
//!   `smol::unblock` (async-io and blocking, in the dependency tree through smol already).
//! - Monoio (the task rows 1-3 only, the yardstick of issue 13; a wake-up from another thread
//!   panics by default, which rules out rows 5-6): a `Runtime<LegacyDriver>` (epoll; io_uring
//!   may be refused in a sandbox, and no task row does I/O, so the driver is idle), tasks by
//!   `monoio::spawn`. Its task cell is a bare header, the future and a join waker, its run queue
//!   a thread-local `VecDeque`: a minimal single-thread design, the yardstick for
//!   asyncio's task overhead (issue 13). Monoio has no public `yield_now`; the yielding task
//!   awaits a future that wakes itself and returns `Pending` once (what tokio's does).
//! - Chained callbacks (1a, 1b): asyncio runs a chain of `call_soon` callbacks, each scheduling
//!   the next, so every link is one loop iteration. Tokio and smol have no callbacks; 1a compares
//!   with one task calling `yield_now()` once per link (one re-schedule per link, no
//!   allocation), 1b with a chain of tasks, each spawning the next and finishing (one allocation
//!   and one schedule per link, like `call_soon`). 1c is a task-to-task comparison: an asyncio
//!   task doing `asyncio::sleep(0)` (asyncio's bare yield) against the same yielding tasks.
//! - Batch (2): 1M callbacks queued with `call_soon` before the loop runs, against 1M trivial
//!   tasks spawned by the main future before it awaits their completion (tasks are tokio's and
//!   smol's unit of queued work).
//! - Timers (4a): arming is `call_later` against `tokio::time::sleep` / `smol::Timer::after`
//!   polled once (both register lazily at their first poll; tokio's `Sleep` is `!Unpin`, so it
//!   is boxed); cancelling is `TimerHandle::cancel` against dropping the timer. Every 4a run has
//!   a fresh loop / runtime: tokio's figure was about 40% lower on a reused runtime. 4d is 4a
//!   on one long-lived loop / runtime reused by every run, as in a server (asyncio's timer heap
//!   keeps the storage its first run grew; the timers left armed are cancelled after the clock
//!   stops); smol's executor is shared in both rows (its timers live in async-io's reactor). 4b runs the
//!   timers to completion: asyncio callbacks against tasks that sleep, half of them aborted
//!   (tokio) or dropped (smol) after arming. 4c is the same with asyncio tasks that
//!   `asyncio::sleep`, half cancelled with `Task::cancel`. In 4b/4c the run ends when the
//!   odd-numbered (never cancelled) timers have all fired: with tokio and smol a 0 us timer of
//!   an even task may fire before its cancellation arrives, which must not end the run early.
//! - Cross-thread (5a, 5b): another thread calls `LoopHandle::call_soon_threadsafe` 100k times;
//!   5a compares with an unbounded channel of boxed closures drained on the runtime (tokio
//!   `mpsc::unbounded_channel`, smol's `async-channel`), 5b with spawning onto the runtime from
//!   the other thread (tokio `runtime::Handle::spawn`; smol needs a `Send` executor for that, so
//!   it is an `Executor` run by the main thread). 5c is 5a with 8 producer threads of 100k each
//!   into the one loop / channel (figures per item, all producers together).
//! - Executor round trips (6): `run_in_executor(None, ..)` awaited one after the other, against
//!   `tokio::task::spawn_blocking` and `smol::unblock`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use futures::channel::oneshot;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

struct Config {
    quick: bool,
    scale: u64,
    reps: usize,
    filter: Option<Vec<String>>,
    asyncio: bool,
    tokio: bool,
    smol: bool,
    monoio: bool,
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
            .unwrap_or(if quick { 3 } else { 5 })
            .max(1);
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let filter = arg_value("filter")
            .or_else(|| env("ASYNCIO_BENCH_FILTER"))
            .map(list);
        let runtimes = arg_value("runtimes")
            .or_else(|| env("ASYNCIO_BENCH_RUNTIMES"))
            .map(list);
        let wants = |name: &str| {
            runtimes
                .as_ref()
                .is_none_or(|r| r.iter().any(|x| x == name))
        };
        Config {
            quick,
            scale: if quick { 10 } else { 1 },
            reps,
            filter,
            asyncio: wants("asyncio"),
            tokio: wants("tokio"),
            smol: wants("smol"),
            monoio: wants("monoio"),
        }
    }

    fn size(&self, full: u64) -> u64 {
        (full / self.scale).max(2) & !1 // even, so that "half" is exact
    }

    fn wants(&self, key: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.iter().any(|w| key.contains(w.as_str())))
    }

    /// Runs `f` once to warm up, then `reps` times; returns the best rate in ops/s.
    fn measure(&self, on: bool, ops: u64, mut f: impl FnMut() -> Duration) -> Option<f64> {
        if !on {
            return None;
        }
        f();
        let best = (0..self.reps).map(|_| f()).min().unwrap_or(Duration::MAX);
        Some(ops as f64 / best.as_secs_f64().max(1e-12))
    }

    /// [`measure`](Config::measure) for each variant; the best rate and the variant that gave it.
    fn measure_best<V: Copy>(
        &self,
        on: bool,
        ops: u64,
        variants: &[V],
        name: impl Fn(V) -> &'static str,
        mut f: impl FnMut(V) -> Duration,
    ) -> Option<Fig> {
        variants
            .iter()
            .filter_map(|&v| {
                self.measure(on, ops, || f(v)).map(|rate| Fig {
                    rate,
                    how: if variants.len() > 1 { name(v) } else { "" },
                })
            })
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
    }

    fn tokio(&self, ops: u64, f: impl FnMut(tok::Mode) -> Duration) -> Option<Fig> {
        self.measure_best(self.tokio, ops, tok::MODES, tok::Mode::name, f)
    }

    fn tokio_single(&self, ops: u64, mut f: impl FnMut() -> Duration) -> Option<Fig> {
        self.measure_best(self.tokio, ops, &[()], |()| "", |()| f())
    }

    fn smol(&self, ops: u64, f: impl FnMut(smo::Driver) -> Duration) -> Option<Fig> {
        self.measure_best(self.smol, ops, smo::DRIVERS, smo::Driver::name, f)
    }

    fn monoio(&self, ops: u64, mut f: impl FnMut() -> Duration) -> Option<Fig> {
        self.measure_best(self.monoio, ops, &[()], |()| "", |()| f())
    }
}

// ---------------------------------------------------------------------------------------------
// Shared trivial work: thread-local counters that signal a oneshot when they reach a target.
// Every runtime runs its work on the thread that owns the counters, so closures and futures
// capture nothing and stay `Send`.
// ---------------------------------------------------------------------------------------------

struct Tally {
    count: Cell<u64>,
    target: Cell<u64>,
    done: RefCell<Option<oneshot::Sender<()>>>,
}

impl Tally {
    const fn new() -> Tally {
        Tally {
            count: Cell::new(0),
            target: Cell::new(u64::MAX),
            done: RefCell::new(None),
        }
    }

    /// Resets the count; the returned receiver completes when the count reaches `target`.
    fn reset(&self, target: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.count.set(0);
        self.target.set(target);
        *self.done.borrow_mut() = Some(tx);
        rx
    }

    /// Counts one; true (and the receiver completes) when this reaches the target.
    fn bump(&self) -> bool {
        let c = self.count.get() + 1;
        self.count.set(c);
        if c == self.target.get() {
            if let Some(tx) = self.done.borrow_mut().take() {
                let _ = tx.send(());
            }
            true
        } else {
            false
        }
    }

    fn count(&self) -> u64 {
        self.count.get()
    }
}

thread_local! {
    /// Work items completed.
    static DONE: Tally = const { Tally::new() };
    /// Timers armed (the timer tasks have had their first poll).
    static ARMED: Tally = const { Tally::new() };
}

fn done_reset(target: u64) -> oneshot::Receiver<()> {
    DONE.with(|t| t.reset(target))
}
/// Resets the work counter for a run that is not waiting on the signal.
fn done_expect(target: u64) {
    drop(done_reset(target));
}
fn done_bump() -> bool {
    DONE.with(Tally::bump)
}
fn done_count() -> u64 {
    DONE.with(Tally::count)
}
fn armed_reset(target: u64) -> oneshot::Receiver<()> {
    ARMED.with(|t| t.reset(target))
}
fn armed_bump() -> bool {
    ARMED.with(Tally::bump)
}

/// Timer delays spread over 0..1 ms in a scattered order (not sorted, as real timers are).
fn delay(i: u64) -> Duration {
    Duration::from_micros(i.wrapping_mul(7919) % 1000)
}

/// A boxed closure sent across threads (the channel-based stand-in for
/// `call_soon_threadsafe`).
type Job = Box<dyn FnOnce() + Send>;

// ---------------------------------------------------------------------------------------------
// asyncio (this crate)
// ---------------------------------------------------------------------------------------------

mod aio {
    use super::*;
    use asyncio::{EventLoop, TimerHandle};

    pub fn new_loop() -> EventLoop {
        EventLoop::new().expect("event loop")
    }

    fn link(lp: &EventLoop, left: u64) {
        if left == 0 {
            lp.stop();
            return;
        }
        let next = lp.clone();
        lp.call_soon(move || link(&next, left - 1))
            .expect("call_soon");
    }

    /// 1a/1b: `n` chained callbacks, each scheduling the next; the last stops the loop.
    pub fn chain(lp: &EventLoop, n: u64) -> Duration {
        let t = Instant::now();
        link(lp, n);
        lp.run_forever().expect("run_forever");
        t.elapsed()
    }

    /// 1c: a task yielding `n` times with `asyncio::sleep(0)`.
    pub fn task_yield(lp: &EventLoop, n: u64) -> Duration {
        let t = Instant::now();
        lp.run_until_complete(async move {
            for _ in 0..n {
                asyncio::sleep(0.0).await.expect("sleep");
            }
        })
        .expect("run");
        t.elapsed()
    }

    /// 2: `n` callbacks queued up front, then one run.
    pub fn batch(lp: &EventLoop, n: u64) -> Duration {
        done_expect(n);
        let t = Instant::now();
        for _ in 0..n {
            lp.call_soon(|| {
                done_bump();
            })
            .expect("call_soon");
        }
        let stopper = lp.clone();
        lp.call_soon(move || stopper.stop()).expect("call_soon");
        lp.run_forever().expect("run_forever");
        let took = t.elapsed();
        assert_eq!(done_count(), n);
        took
    }

    /// 3: spawn `n` trivial tasks, then await them all.
    pub fn tasks(lp: &EventLoop, n: u64) -> Duration {
        let lp2 = lp.clone();
        let t = Instant::now();
        let sum = lp
            .block_on(async move {
                let tasks: Vec<_> = (0..n)
                    .map(|i| lp2.create_task(async move { i }).expect("create_task"))
                    .collect();
                let mut sum = 0;
                for task in tasks {
                    sum += task.await.expect("task");
                }
                sum
            })
            .expect("block_on");
        let took = t.elapsed();
        assert_eq!(sum, n * (n - 1) / 2);
        took
    }

    /// 4a: arm `n` timers, cancel every other one; nothing runs.
    /// Each run has a fresh loop (as tokio's run has a fresh runtime); the handles' vector is
    /// reused, so that no run pays for first-touch page faults of memory the bench owns.
    pub fn timer_arm_cancel(handles: &mut Vec<TimerHandle>, n: u64) -> Duration {
        let lp = new_loop();
        let took = timer_arm_cancel_on(&lp, handles, n);
        lp.close().expect("close");
        took
    }

    /// 4a on `lp`; 4d passes one loop to every run (a long-lived loop: the timer heap's
    /// storage, grown by the first run, stays). The timers left armed are cancelled after the
    /// clock stops, so each run starts with an empty heap.
    pub fn timer_arm_cancel_on(lp: &EventLoop, handles: &mut Vec<TimerHandle>, n: u64) -> Duration {
        handles.clear();
        let t = Instant::now();
        for i in 0..n {
            handles.push(lp.call_later(delay(i), || {}).expect("call_later"));
        }
        for h in handles.iter().step_by(2) {
            h.cancel();
        }
        let took = t.elapsed();
        for h in handles.iter().skip(1).step_by(2) {
            h.cancel();
        }
        handles.clear();
        took
    }

    fn timer_fired() {
        if done_bump() {
            asyncio::get_running_loop().expect("running loop").stop();
        }
    }

    /// 4b: arm `n` callback timers, cancel every other one, run until the rest have fired.
    pub fn timer_run(lp: &EventLoop, n: u64) -> Duration {
        done_expect(n / 2);
        let mut handles: Vec<TimerHandle> = Vec::with_capacity(n as usize);
        let t = Instant::now();
        for i in 0..n {
            handles.push(lp.call_later(delay(i), timer_fired).expect("call_later"));
        }
        for h in handles.iter().step_by(2) {
            h.cancel();
        }
        lp.run_forever().expect("run_forever");
        let took = t.elapsed();
        assert_eq!(done_count(), n / 2);
        took
    }

    /// 4c: `n` tasks each sleeping with `asyncio::sleep`; once all are armed, every other one is
    /// cancelled; runs until the rest have finished.
    pub fn timer_tasks(lp: &EventLoop, n: u64) -> Duration {
        let done = done_reset(n / 2);
        let armed = armed_reset(n);
        let lp2 = lp.clone();
        let t = Instant::now();
        lp.block_on(async move {
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    lp2.create_task(async move {
                        let sleep = asyncio::sleep(delay(i));
                        armed_bump();
                        sleep.await.expect("sleep");
                        if i % 2 == 1 {
                            done_bump();
                        }
                    })
                    .expect("create_task")
                })
                .collect();
            armed.await.expect("armed");
            for task in tasks.iter().step_by(2) {
                task.cancel();
            }
            done.await.expect("done");
        })
        .expect("block_on");
        let took = t.elapsed();
        assert_eq!(done_count(), n / 2);
        took
    }

    fn remote_callback() {
        if done_bump() {
            asyncio::get_running_loop().expect("running loop").stop();
        }
    }

    /// 5: `producers` other threads call `call_soon_threadsafe` `n` times each; the loop stops
    /// at the last.
    pub fn remote(lp: &EventLoop, n: u64, producers: u64) -> Duration {
        done_expect(n * producers);
        let barrier = Arc::new(Barrier::new(producers as usize + 1));
        let senders: Vec<_> = (0..producers)
            .map(|_| {
                let (handle, b) = (lp.handle(), barrier.clone());
                thread::spawn(move || {
                    b.wait();
                    for _ in 0..n {
                        handle
                            .call_soon_threadsafe(remote_callback)
                            .expect("call_soon_threadsafe");
                    }
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        lp.run_forever().expect("run_forever");
        let took = t.elapsed();
        for sender in senders {
            sender.join().expect("sender thread");
        }
        assert_eq!(done_count(), n * producers);
        took
    }

    /// 6: `n` sequential `run_in_executor` round trips on the default executor.
    pub fn executor(lp: &EventLoop, n: u64) -> Duration {
        let lp2 = lp.clone();
        let t = Instant::now();
        let sum = lp
            .block_on(async move {
                let mut sum = 0;
                for i in 0..n {
                    sum += lp2
                        .run_in_executor(None, move || i)
                        .expect("run_in_executor")
                        .await
                        .expect("job");
                }
                sum
            })
            .expect("block_on");
        let took = t.elapsed();
        assert_eq!(sum, n * (n - 1) / 2);
        took
    }
}

// ---------------------------------------------------------------------------------------------
// tokio, current_thread runtime
// ---------------------------------------------------------------------------------------------

mod tok {
    use super::*;
    use tokio::runtime::{Builder, Runtime};
    use tokio::task::{JoinHandle, LocalSet};

    /// How tasks are spawned: `tokio::spawn` on the runtime, or `spawn_local` inside a
    /// `LocalSet` (the figure reported is the better of the two).
    #[derive(Clone, Copy)]
    pub enum Mode {
        Spawn,
        Local,
    }

    pub const MODES: &[Mode] = &[Mode::Spawn, Mode::Local];

    impl Mode {
        pub fn name(self) -> &'static str {
            match self {
                Mode::Spawn => "spawn",
                Mode::Local => "LocalSet",
            }
        }
    }

    fn block_on<F: Future>(rt: &Runtime, mode: Mode, f: F) -> F::Output {
        match mode {
            Mode::Spawn => rt.block_on(f),
            Mode::Local => LocalSet::new().block_on(rt, f),
        }
    }

    fn spawn<F>(mode: Mode, f: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match mode {
            Mode::Spawn => tokio::spawn(f),
            Mode::Local => tokio::task::spawn_local(f),
        }
    }

    pub fn new_rt() -> Runtime {
        Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime")
    }

    /// 1a/1c: one task yielding `n` times.
    pub fn task_yield(rt: &Runtime, mode: Mode, n: u64) -> Duration {
        let t = Instant::now();
        block_on(rt, mode, async move {
            spawn(mode, async move {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect("task");
        });
        t.elapsed()
    }

    fn link(mode: Mode, left: u64, done: oneshot::Sender<()>) {
        if left == 0 {
            let _ = done.send(());
            return;
        }
        spawn(mode, async move { link(mode, left - 1, done) });
    }

    /// 1b: a chain of `n` tasks, each spawning the next.
    pub fn spawn_chain(rt: &Runtime, mode: Mode, n: u64) -> Duration {
        let t = Instant::now();
        block_on(rt, mode, async move {
            let (tx, rx) = oneshot::channel();
            link(mode, n, tx);
            rx.await.expect("chain");
        });
        t.elapsed()
    }

    /// 2: `n` trivial tasks spawned up front by the main future, which waits for them all.
    pub fn batch(rt: &Runtime, mode: Mode, n: u64) -> Duration {
        let done = done_reset(n);
        let t = Instant::now();
        block_on(rt, mode, async move {
            for _ in 0..n {
                spawn(mode, async {
                    done_bump();
                });
            }
            done.await.expect("done");
        });
        t.elapsed()
    }

    /// 3: spawn `n` trivial tasks, then await them all.
    pub fn tasks(rt: &Runtime, mode: Mode, n: u64) -> Duration {
        let t = Instant::now();
        let sum = block_on(rt, mode, async move {
            let tasks: Vec<_> = (0..n).map(|i| spawn(mode, async move { i })).collect();
            let mut sum = 0;
            for task in tasks {
                sum += task.await.expect("task");
            }
            sum
        });
        let took = t.elapsed();
        assert_eq!(sum, n * (n - 1) / 2);
        took
    }

    pub type Sleeps = Vec<Option<Pin<Box<tokio::time::Sleep>>>>;

    /// 4a: arm `n` sleeps (poll each once), drop every other one. Each run has a fresh runtime
    /// (tokio's timers were markedly slower on a reused one); the vector is reused.
    pub fn timer_arm_cancel(sleeps: &mut Sleeps, n: u64) -> Duration {
        timer_arm_cancel_on(&new_rt(), sleeps, n)
    }

    /// 4a on `rt`; 4d passes one runtime to every run (a long-lived runtime).
    pub fn timer_arm_cancel_on(rt: &Runtime, sleeps: &mut Sleeps, n: u64) -> Duration {
        rt.block_on(async move {
            sleeps.clear();
            let took = std::future::poll_fn(|cx| {
                let t = Instant::now();
                for i in 0..n {
                    let mut s = Box::pin(tokio::time::sleep(delay(i)));
                    let _ = s.as_mut().poll(cx);
                    sleeps.push(Some(s));
                }
                for s in sleeps.iter_mut().step_by(2) {
                    drop(s.take());
                }
                Poll::Ready(t.elapsed())
            })
            .await;
            sleeps.clear();
            took
        })
    }

    /// 4b/4c: `n` tasks sleeping; once all are armed, every other one is aborted; runs until
    /// the rest have finished.
    pub fn timer_tasks(rt: &Runtime, mode: Mode, n: u64) -> Duration {
        let done = done_reset(n / 2);
        let armed = armed_reset(n);
        let t = Instant::now();
        block_on(rt, mode, async move {
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    spawn(mode, async move {
                        let sleep = tokio::time::sleep(delay(i));
                        armed_bump();
                        sleep.await;
                        if i % 2 == 1 {
                            done_bump();
                        }
                    })
                })
                .collect();
            armed.await.expect("armed");
            for task in tasks.iter().step_by(2) {
                task.abort();
            }
            done.await.expect("done");
        });
        let took = t.elapsed();
        assert_eq!(done_count(), n / 2);
        took
    }

    /// 5a, 5c: `producers` other threads send `n` boxed closures each over an unbounded
    /// channel; the main future drains and runs them.
    pub fn remote_channel(rt: &Runtime, n: u64, producers: u64) -> Duration {
        done_expect(n * producers);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let barrier = Arc::new(Barrier::new(producers as usize + 1));
        let senders: Vec<_> = (0..producers)
            .map(|_| {
                let (tx, b) = (tx.clone(), barrier.clone());
                thread::spawn(move || {
                    b.wait();
                    for _ in 0..n {
                        let job: Job = Box::new(|| {
                            done_bump();
                        });
                        tx.send(job).expect("send");
                    }
                })
            })
            .collect();
        drop(tx);
        barrier.wait();
        let t = Instant::now();
        rt.block_on(async move {
            while let Some(job) = rx.recv().await {
                job();
            }
        });
        let took = t.elapsed();
        for sender in senders {
            sender.join().expect("sender thread");
        }
        assert_eq!(done_count(), n * producers);
        took
    }

    /// 5b: another thread spawns `n` trivial tasks through the runtime's `Handle`.
    pub fn remote_spawn(rt: &Runtime, n: u64) -> Duration {
        let done = done_reset(n);
        let handle = rt.handle().clone();
        let barrier = Arc::new(Barrier::new(2));
        let b = barrier.clone();
        let sender = thread::spawn(move || {
            b.wait();
            for _ in 0..n {
                handle.spawn(async {
                    done_bump();
                });
            }
        });
        barrier.wait();
        let t = Instant::now();
        rt.block_on(async move { done.await.expect("done") });
        let took = t.elapsed();
        sender.join().expect("sender thread");
        took
    }

    /// 6: `n` sequential `spawn_blocking` round trips.
    pub fn executor(rt: &Runtime, n: u64) -> Duration {
        let t = Instant::now();
        let sum = rt.block_on(async move {
            let mut sum = 0;
            for i in 0..n {
                sum += tokio::task::spawn_blocking(move || i).await.expect("job");
            }
            sum
        });
        let took = t.elapsed();
        assert_eq!(sum, n * (n - 1) / 2);
        took
    }
}

// ---------------------------------------------------------------------------------------------
// smol: LocalExecutor driven by smol::block_on
// ---------------------------------------------------------------------------------------------

mod smo {
    use super::*;
    use smol::{LocalExecutor, Task, Timer};

    pub type Ex = Rc<LocalExecutor<'static>>;

    pub fn new_ex() -> Ex {
        Rc::new(LocalExecutor::new())
    }

    /// What drives the executor: `smol::block_on` (async-io's, which also runs the reactor on
    /// this thread) or `futures_lite::future::block_on` (a plain thread parker; the reactor then
    /// runs on async-io's own thread). The figure reported is the better of the two.
    #[derive(Clone, Copy)]
    pub enum Driver {
        AsyncIo,
        FuturesLite,
    }

    pub const DRIVERS: &[Driver] = &[Driver::AsyncIo, Driver::FuturesLite];

    impl Driver {
        pub fn name(self) -> &'static str {
            match self {
                Driver::AsyncIo => "smol::block_on",
                Driver::FuturesLite => "futures_lite::block_on",
            }
        }
    }

    fn block_on<T>(driver: Driver, f: impl Future<Output = T>) -> T {
        match driver {
            Driver::AsyncIo => smol::block_on(f),
            Driver::FuturesLite => futures_lite::future::block_on(f),
        }
    }

    fn run<T>(ex: &Ex, driver: Driver, f: impl Future<Output = T>) -> T {
        block_on(driver, ex.run(f))
    }

    /// 1a/1c: one task yielding `n` times.
    pub fn task_yield(ex: &Ex, driver: Driver, n: u64) -> Duration {
        let t = Instant::now();
        run(ex, driver, async {
            ex.spawn(async move {
                for _ in 0..n {
                    smol::future::yield_now().await;
                }
            })
            .await
        });
        t.elapsed()
    }

    fn link(ex: Ex, left: u64, done: oneshot::Sender<()>) {
        if left == 0 {
            let _ = done.send(());
            return;
        }
        let next = ex.clone();
        ex.spawn(async move { link(next, left - 1, done) }).detach();
    }

    /// 1b: a chain of `n` tasks, each spawning the next.
    pub fn spawn_chain(ex: &Ex, driver: Driver, n: u64) -> Duration {
        let t = Instant::now();
        run(ex, driver, async {
            let (tx, rx) = oneshot::channel();
            link(ex.clone(), n, tx);
            rx.await.expect("chain");
        });
        t.elapsed()
    }

    /// 2: `n` trivial tasks spawned up front by the main future, which waits for them all.
    pub fn batch(ex: &Ex, driver: Driver, n: u64) -> Duration {
        let done = done_reset(n);
        let t = Instant::now();
        run(ex, driver, async {
            for _ in 0..n {
                ex.spawn(async {
                    done_bump();
                })
                .detach();
            }
            done.await.expect("done");
        });
        t.elapsed()
    }

    /// 3: spawn `n` trivial tasks, then await them all.
    pub fn tasks(ex: &Ex, driver: Driver, n: u64) -> Duration {
        let t = Instant::now();
        let sum = run(ex, driver, async {
            let tasks: Vec<_> = (0..n).map(|i| ex.spawn(async move { i })).collect();
            let mut sum = 0;
            for task in tasks {
                sum += task.await;
            }
            sum
        });
        let took = t.elapsed();
        assert_eq!(sum, n * (n - 1) / 2);
        took
    }

    /// 4a: arm `n` timers (poll each once), drop every other one.
    pub fn timer_arm_cancel(
        ex: &Ex,
        driver: Driver,
        timers: &mut Vec<Option<Timer>>,
        n: u64,
    ) -> Duration {
        run(ex, driver, async {
            timers.clear();
            let took = std::future::poll_fn(|cx| {
                let t = Instant::now();
                for i in 0..n {
                    let mut timer = Timer::after(delay(i));
                    let _ = Pin::new(&mut timer).poll(cx);
                    timers.push(Some(timer));
                }
                for timer in timers.iter_mut().step_by(2) {
                    drop(timer.take());
                }
                Poll::Ready(t.elapsed())
            })
            .await;
            timers.clear();
            took
        })
    }

    /// 4b/4c: `n` tasks sleeping on a `Timer`; once all are armed, every other task is dropped
    /// (cancelled); runs until the rest have finished.
    pub fn timer_tasks(ex: &Ex, driver: Driver, n: u64) -> Duration {
        let done = done_reset(n / 2);
        let armed = armed_reset(n);
        let t = Instant::now();
        run(ex, driver, async {
            let mut tasks: Vec<Option<Task<()>>> = (0..n)
                .map(|i| {
                    Some(ex.spawn(async move {
                        let timer = Timer::after(delay(i));
                        armed_bump();
                        timer.await;
                        if i % 2 == 1 {
                            done_bump();
                        }
                    }))
                })
                .collect();
            armed.await.expect("armed");
            for task in tasks.iter_mut().step_by(2) {
                drop(task.take());
            }
            done.await.expect("done");
        });
        let took = t.elapsed();
        assert_eq!(done_count(), n / 2);
        took
    }

    /// 5a, 5c: `producers` other threads send `n` boxed closures each over an unbounded
    /// `async-channel`; the main future drains and runs them.
    pub fn remote_channel(ex: &Ex, driver: Driver, n: u64, producers: u64) -> Duration {
        done_expect(n * producers);
        let (tx, rx) = smol::channel::unbounded::<Job>();
        let barrier = Arc::new(Barrier::new(producers as usize + 1));
        let senders: Vec<_> = (0..producers)
            .map(|_| {
                let (tx, b) = (tx.clone(), barrier.clone());
                thread::spawn(move || {
                    b.wait();
                    for _ in 0..n {
                        let job: Job = Box::new(|| {
                            done_bump();
                        });
                        tx.send_blocking(job).expect("send");
                    }
                })
            })
            .collect();
        drop(tx);
        barrier.wait();
        let t = Instant::now();
        run(ex, driver, async {
            while let Ok(job) = rx.recv().await {
                job();
            }
        });
        let took = t.elapsed();
        for sender in senders {
            sender.join().expect("sender thread");
        }
        assert_eq!(done_count(), n * producers);
        took
    }

    /// 5b: another thread spawns `n` trivial tasks on a (`Send`) `Executor` that the main thread
    /// runs.
    pub fn remote_spawn(driver: Driver, n: u64) -> Duration {
        let ex = Arc::new(smol::Executor::<'static>::new());
        let done = done_reset(n);
        let remote = ex.clone();
        let barrier = Arc::new(Barrier::new(2));
        let b = barrier.clone();
        let sender = thread::spawn(move || {
            b.wait();
            for _ in 0..n {
                remote
                    .spawn(async {
                        done_bump();
                    })
                    .detach();
            }
        });
        barrier.wait();
        let t = Instant::now();
        block_on(driver, ex.run(async move { done.await.expect("done") }));
        let took = t.elapsed();
        sender.join().expect("sender thread");
        took
    }

    /// 6: `n` sequential `smol::unblock` round trips.
    pub fn executor(ex: &Ex, driver: Driver, n: u64) -> Duration {
        let t = Instant::now();
        let sum = run(ex, driver, async move {
            let mut sum = 0;
            for i in 0..n {
                sum += smol::unblock(move || i).await;
            }
            sum
        });
        let took = t.elapsed();
        assert_eq!(sum, n * (n - 1) / 2);
        took
    }
}

// ---------------------------------------------------------------------------------------------
// monoio: a single-thread runtime on the legacy (epoll) driver
// ---------------------------------------------------------------------------------------------

mod mon {
    use super::*;
    use std::task::Context;

    pub type Rt = monoio::Runtime<monoio::LegacyDriver>;

    pub fn new_rt() -> Rt {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("monoio runtime")
    }

    /// Wakes its own task and returns `Pending` once: a yield (monoio has no public one).
    struct YieldNow(bool);

    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// 1a/1c: one task yielding `n` times.
    pub fn task_yield(rt: &mut Rt, n: u64) -> Duration {
        let t = Instant::now();
        rt.block_on(async move {
            monoio::spawn(async move {
                for _ in 0..n {
                    YieldNow(false).await;
                }
            })
            .await
        });
        t.elapsed()
    }

    fn link(left: u64, done: oneshot::Sender<()>) {
        if left == 0 {
            let _ = done.send(());
            return;
        }
        drop(monoio::spawn(async move { link(left - 1, done) }));
    }

    /// 1b: a chain of `n` tasks, each spawning the next.
    pub fn spawn_chain(rt: &mut Rt, n: u64) -> Duration {
        let t = Instant::now();
        rt.block_on(async move {
            let (tx, rx) = oneshot::channel();
            link(n, tx);
            rx.await.expect("chain");
        });
        t.elapsed()
    }

    /// 2: `n` trivial tasks spawned up front by the main future, which waits for them all.
    pub fn batch(rt: &mut Rt, n: u64) -> Duration {
        let done = done_reset(n);
        let t = Instant::now();
        rt.block_on(async move {
            for _ in 0..n {
                drop(monoio::spawn(async {
                    done_bump();
                }));
            }
            done.await.expect("done");
        });
        t.elapsed()
    }

    /// 3: spawn `n` trivial tasks, then await them all.
    pub fn tasks(rt: &mut Rt, n: u64) -> Duration {
        let t = Instant::now();
        let sum = rt.block_on(async move {
            let tasks: Vec<_> = (0..n).map(|i| monoio::spawn(async move { i })).collect();
            let mut sum = 0;
            for task in tasks {
                sum += task.await;
            }
            sum
        });
        let took = t.elapsed();
        assert_eq!(sum, n * (n - 1) / 2);
        took
    }
}

// ---------------------------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------------------------

/// A competitor's figure: ops/s, and which variant gave it (empty when there is one variant).
#[derive(Clone, Copy)]
struct Fig {
    rate: f64,
    how: &'static str,
}

struct Row {
    id: &'static str,
    label: String,
    asyncio: Option<f64>,
    tokio: Option<Fig>,
    smol: Option<Fig>,
    monoio: Option<Fig>,
}

impl Row {
    fn vs_tokio(&self) -> Option<f64> {
        Some(self.asyncio? / self.tokio?.rate)
    }
    fn vs_smol(&self) -> Option<f64> {
        Some(self.asyncio? / self.smol?.rate)
    }
    fn vs_monoio(&self) -> Option<f64> {
        Some(self.asyncio? / self.monoio?.rate)
    }
    fn note(&self) -> String {
        [("tokio", self.tokio), ("smol", self.smol)]
            .iter()
            .filter_map(|(who, fig)| {
                fig.filter(|f| !f.how.is_empty())
                    .map(|f| format!("{who}: {}", f.how))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1e6 => format!("{:.2}M", v / 1e6),
        Some(v) if v >= 1e3 => format!("{:.1}k", v / 1e3),
        Some(v) => format!("{v:.0}"),
    }
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}x"))
}

const LABEL_WIDTH: usize = 80;

fn print_header() {
    println!(
        "{:<3} {:<LABEL_WIDTH$} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8}  best variant",
        "",
        "workload: asyncio | tokio / smol / monoio",
        "asyncio",
        "tokio",
        "smol",
        "monoio",
        "a/tokio",
        "a/smol",
        "a/monoio"
    );
}

fn print_row(r: &Row) {
    println!(
        "{:<3} {:<LABEL_WIDTH$} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8}  {}",
        r.id,
        r.label,
        rate(r.asyncio),
        rate(r.tokio.map(|f| f.rate)),
        rate(r.smol.map(|f| f.rate)),
        rate(r.monoio.map(|f| f.rate)),
        ratio(r.vs_tokio()),
        ratio(r.vs_smol()),
        ratio(r.vs_monoio()),
        r.note(),
    );
}

fn human(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn emit(row: Row, rows: &mut Vec<Row>) {
    print_row(&row);
    rows.push(row);
}

/// Keeps glibc's heap warm from the warm-up run on (see the module docs).
fn pin_malloc_thresholds() {
    if std::env::var("ASYNCIO_BENCH_MALLOC").is_ok_and(|v| v == "default") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // 32 MiB is the largest mmap threshold glibc accepts on 64-bit targets; setting either
        // value turns glibc's dynamic adjustment of both off.
        const LARGE: libc::c_int = 32 << 20;
        // SAFETY: `mallopt` only sets allocator tunables, and runs here before any other thread
        // of this process exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}

fn main() {
    pin_malloc_thresholds();
    let cfg = Config::from_env();
    let started = Instant::now();
    println!(
        "asyncio core benchmarks: ops/s, best of {} runs after a warm-up{}; a/x = asyncio / x",
        cfg.reps,
        if cfg.quick {
            " (quick: sizes / 10)"
        } else {
            ""
        }
    );
    print_header();
    let mut rows: Vec<Row> = Vec::new();

    // 1. Chained call_soon and yields.
    if cfg.wants("chain") || cfg.wants("yield") {
        let n = cfg.size(1_000_000);
        let lp = aio::new_loop();
        let rt = tok::new_rt();
        let ex = smo::new_ex();
        let mut mrt = mon::new_rt();
        let t_yield = cfg.tokio(n, |m| tok::task_yield(&rt, m, n));
        let s_yield = cfg.smol(n, |d| smo::task_yield(&ex, d, n));
        let m_yield = cfg.monoio(n, || mon::task_yield(&mut mrt, n));
        if cfg.wants("chain") {
            let a_chain = cfg.measure(cfg.asyncio, n, || aio::chain(&lp, n));
            let label = |what: &str| format!("chain {}: call_soon chain | {what}", human(n));
            emit(
                Row {
                    id: "1a",
                    label: label("one task, yield_now() per link"),
                    asyncio: a_chain,
                    tokio: t_yield,
                    smol: s_yield,
                    monoio: m_yield,
                },
                &mut rows,
            );
            emit(
                Row {
                    id: "1b",
                    label: label("chain of tasks, each spawns the next"),
                    asyncio: a_chain,
                    tokio: cfg.tokio(n, |m| tok::spawn_chain(&rt, m, n)),
                    smol: cfg.smol(n, |d| smo::spawn_chain(&ex, d, n)),
                    monoio: cfg.monoio(n, || mon::spawn_chain(&mut mrt, n)),
                },
                &mut rows,
            );
        }
        if cfg.wants("yield") {
            emit(
                Row {
                    id: "1c",
                    label: format!(
                        "task yield {}: task awaiting sleep(0) | task awaiting yield_now()",
                        human(n)
                    ),
                    asyncio: cfg.measure(cfg.asyncio, n, || aio::task_yield(&lp, n)),
                    tokio: t_yield,
                    smol: s_yield,
                    monoio: m_yield,
                },
                &mut rows,
            );
        }
        lp.close().expect("close");
    }

    // 2. A batch of callbacks / tasks queued up front.
    if cfg.wants("batch") {
        let n = cfg.size(1_000_000);
        let lp = aio::new_loop();
        let rt = tok::new_rt();
        let ex = smo::new_ex();
        let mut mrt = mon::new_rt();
        let row = Row {
            id: "2",
            label: format!(
                "batch {}: call_soon x N, then run | spawn N trivial tasks, wait for all",
                human(n)
            ),
            asyncio: cfg.measure(cfg.asyncio, n, || aio::batch(&lp, n)),
            tokio: cfg.tokio(n, |m| tok::batch(&rt, m, n)),
            smol: cfg.smol(n, |d| smo::batch(&ex, d, n)),
            monoio: cfg.monoio(n, || mon::batch(&mut mrt, n)),
        };
        emit(row, &mut rows);
        lp.close().expect("close");
    }

    // 3. Spawn and complete trivial tasks.
    if cfg.wants("tasks") {
        let n = cfg.size(200_000);
        let lp = aio::new_loop();
        let rt = tok::new_rt();
        let ex = smo::new_ex();
        let mut mrt = mon::new_rt();
        let row = Row {
            id: "3",
            label: format!(
                "tasks {}: create_task x N, await each | spawn x N, await each",
                human(n)
            ),
            asyncio: cfg.measure(cfg.asyncio, n, || aio::tasks(&lp, n)),
            tokio: cfg.tokio(n, |m| tok::tasks(&rt, m, n)),
            smol: cfg.smol(n, |d| smo::tasks(&ex, d, n)),
            monoio: cfg.monoio(n, || mon::tasks(&mut mrt, n)),
        };
        emit(row, &mut rows);
        lp.close().expect("close");
    }

    // 4. Timers, half cancelled.
    if cfg.wants("timer-arm") || cfg.wants("timer-run") || cfg.wants("timer-task") {
        let n = cfg.size(200_000);
        let lp = aio::new_loop();
        let rt = tok::new_rt();
        let ex = smo::new_ex();
        if cfg.wants("timer-arm") {
            let mut a_handles = Vec::with_capacity(n as usize);
            let mut t_sleeps = Vec::with_capacity(n as usize);
            let mut s_timers = Vec::with_capacity(n as usize);
            let label = format!(
                "timers {}, arm + cancel half, no run: call_later, cancel | poll once, drop",
                human(n)
            );
            emit(
                Row {
                    id: "4a",
                    label,
                    asyncio: cfg
                        .measure(cfg.asyncio, n, || aio::timer_arm_cancel(&mut a_handles, n)),
                    tokio: cfg.tokio_single(n, || tok::timer_arm_cancel(&mut t_sleeps, n)),
                    smol: cfg.smol(n, |d| smo::timer_arm_cancel(&ex, d, &mut s_timers, n)),
                    monoio: None,
                },
                &mut rows,
            );
        }
        if cfg.wants("timer-arm-warm") {
            let mut a_handles = Vec::with_capacity(n as usize);
            let mut t_sleeps = Vec::with_capacity(n as usize);
            let mut s_timers = Vec::with_capacity(n as usize);
            let label = format!(
                "timers {}, arm + cancel half as 4a, on one long-lived loop | runtime / executor",
                human(n)
            );
            let lp = aio::new_loop();
            emit(
                Row {
                    id: "4d",
                    label,
                    asyncio: cfg.measure(cfg.asyncio, n, || {
                        aio::timer_arm_cancel_on(&lp, &mut a_handles, n)
                    }),
                    tokio: cfg.tokio_single(n, || tok::timer_arm_cancel_on(&rt, &mut t_sleeps, n)),
                    smol: cfg.smol(n, |d| smo::timer_arm_cancel(&ex, d, &mut s_timers, n)),
                    monoio: None,
                },
                &mut rows,
            );
            lp.close().expect("close");
        }
        let run = cfg.wants("timer-run") || cfg.wants("timer-task");
        let t_tasks = run
            .then(|| cfg.tokio(n, |m| tok::timer_tasks(&rt, m, n)))
            .flatten();
        let s_tasks = run
            .then(|| cfg.smol(n, |d| smo::timer_tasks(&ex, d, n)))
            .flatten();
        if cfg.wants("timer-run") {
            emit(
                Row {
                    id: "4b",
                    label: format!(
                        "timers {}, half cancelled, run: call_later callbacks | sleeping tasks",
                        human(n)
                    ),
                    asyncio: cfg.measure(cfg.asyncio, n, || aio::timer_run(&lp, n)),
                    tokio: t_tasks,
                    smol: s_tasks,
                    monoio: None,
                },
                &mut rows,
            );
        }
        if cfg.wants("timer-task") {
            emit(
                Row {
                    id: "4c",
                    label: format!(
                        "timer tasks {}, half cancelled, run: tasks in sleep() | sleeping tasks",
                        human(n)
                    ),
                    asyncio: cfg.measure(cfg.asyncio, n, || aio::timer_tasks(&lp, n)),
                    tokio: t_tasks,
                    smol: s_tasks,
                    monoio: None,
                },
                &mut rows,
            );
        }
        lp.close().expect("close");
    }

    // 5. Cross-thread scheduling.
    if cfg.wants("remote") || cfg.wants("remote-many") {
        let n = cfg.size(100_000);
        let lp = aio::new_loop();
        let rt = tok::new_rt();
        let ex = smo::new_ex();
        let label =
            |what: &str| format!("cross-thread {}: call_soon_threadsafe | {what}", human(n));
        if cfg.wants("remote") {
            let a_remote = cfg.measure(cfg.asyncio, n, || aio::remote(&lp, n, 1));
            emit(
                Row {
                    id: "5a",
                    label: label("unbounded channel of closures"),
                    asyncio: a_remote,
                    tokio: cfg.tokio_single(n, || tok::remote_channel(&rt, n, 1)),
                    smol: cfg.smol(n, |d| smo::remote_channel(&ex, d, n, 1)),
                    monoio: None,
                },
                &mut rows,
            );
            emit(
                Row {
                    id: "5b",
                    label: label("Handle::spawn / Executor::spawn of a task"),
                    asyncio: a_remote,
                    tokio: cfg.tokio_single(n, || tok::remote_spawn(&rt, n)),
                    smol: cfg.smol(n, |d| smo::remote_spawn(d, n)),
                    monoio: None,
                },
                &mut rows,
            );
        }
        const P: u64 = 8;
        let total = n * P;
        if cfg.wants("remote-many") {
            emit(
                Row {
                    id: "5c",
                    label: format!(
                        "cross-thread {P} x {}: call_soon_threadsafe | unbounded channel of closures",
                        human(n)
                    ),
                    asyncio: cfg.measure(cfg.asyncio, total, || aio::remote(&lp, n, P)),
                    tokio: cfg.tokio_single(total, || tok::remote_channel(&rt, n, P)),
                    smol: cfg.smol(total, |d| smo::remote_channel(&ex, d, n, P)),
                    monoio: None,
                },
                &mut rows,
            );
        }
        lp.close().expect("close");
    }

    // 6. Executor round trips.
    if cfg.wants("executor") {
        let n = cfg.size(20_000);
        let lp = aio::new_loop();
        let rt = tok::new_rt();
        let ex = smo::new_ex();
        emit(
            Row {
                id: "6",
                label: format!(
                    "executor {}, sequential: run_in_executor | spawn_blocking / unblock",
                    human(n)
                ),
                asyncio: cfg.measure(cfg.asyncio, n, || aio::executor(&lp, n)),
                tokio: cfg.tokio_single(n, || tok::executor(&rt, n)),
                smol: cfg.smol(n, |d| smo::executor(&ex, d, n)),
                monoio: None,
            },
            &mut rows,
        );
        lp.close().expect("close");
    }

    // Targets set by the issue.
    println!();
    println!("targets:");
    let find = |id: &str| rows.iter().find(|r| r.id == id);
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "MET",
        Some(false) => "MISSED",
        None => "not measured",
    };
    let chain = find("1a").and_then(|r| r.asyncio);
    println!(
        "  chained callbacks >= 15M/s{:<23} {:>12}  ({})",
        if cfg.quick { " (quick sizes)" } else { "" },
        verdict(chain.map(|v| v >= 15e6)),
        rate(chain)
    );
    let tasks = find("3");
    let (vt, vs) = (tasks.and_then(Row::vs_tokio), tasks.and_then(Row::vs_smol));
    println!(
        "  tasks >= 1.5x tokio current_thread                {:>12}  ({})",
        verdict(vt.map(|v| v >= 1.5)),
        ratio(vt)
    );
    println!(
        "  tasks >= 1.2x smol LocalExecutor                  {:>12}  ({})",
        verdict(vs.map(|v| v >= 1.2)),
        ratio(vs)
    );
    let vm = tasks.and_then(Row::vs_monoio);
    println!(
        "  tasks >= 0.8x monoio                              {:>12}  ({})",
        verdict(vm.map(|v| v >= 0.8)),
        ratio(vm)
    );
    let timers = find("4a").and_then(Row::vs_tokio);
    println!(
        "  timer arm+cancel >= 1.5x tokio                    {:>12}  ({})",
        verdict(timers.map(|v| v >= 1.5)),
        ratio(timers)
    );
    let sleepers = find("4c").and_then(Row::vs_tokio);
    println!(
        "  tasks in sleep(), half cancelled >= 1.5x tokio    {:>12}  ({})",
        verdict(sleepers.map(|v| v >= 1.5)),
        ratio(sleepers)
    );
    let remote = find("5a").and_then(Row::vs_tokio);
    println!(
        "  threadsafe callbacks >= 1x tokio mpsc             {:>12}  ({})",
        verdict(remote.map(|v| v >= 1.0)),
        ratio(remote)
    );
    let one = find("5a").and_then(|r| r.asyncio);
    let eight = find("5c").and_then(|r| r.asyncio);
    let scaling = one.zip(eight).map(|(one, eight)| eight / one);
    println!(
        "  8 producers per item no slower than 1 (5c >= 5a)  {:>12}  ({})",
        verdict(scaling.map(|v| v >= 1.0)),
        ratio(scaling)
    );
    let exec = find("6").and_then(Row::vs_tokio);
    println!(
        "  executor round trips >= 1x tokio spawn_blocking   {:>12}  ({})",
        verdict(exec.map(|v| v >= 1.0)),
        ratio(exec)
    );
    println!();
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
}
