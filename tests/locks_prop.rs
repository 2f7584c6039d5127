//! Property test: random batches of acquire / release / cancel on `Semaphore` and `Lock`,
//! checked against a model after every batch: the same tasks hold permits, they got them in
//! strict FIFO order, and no permit is lost or duplicated. A small deterministic generator
//! (xorshift) keeps runs reproducible; a failure prints its seed.

mod locks_support;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use asyncio::locks::{Lock, LockGuard, Semaphore, SemaphoreGuard};
use asyncio::{EventLoop, Task};
use locks_support::{run_one_iteration, virtual_loop, watchdog};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The primitive under test, with its guard type erased.
trait Primitive: Clone + 'static {
    fn acquire(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Box<dyn std::any::Any>>>>;
    fn free(&self) -> usize;
    fn waiters(&self) -> usize;
}

impl Primitive for Semaphore {
    fn acquire(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Box<dyn std::any::Any>>>> {
        let s = self.clone();
        Box::pin(async move { Box::new(s.acquire().await) as Box<dyn std::any::Any> })
    }
    fn free(&self) -> usize {
        self.value()
    }
    fn waiters(&self) -> usize {
        // Not public on Semaphore: derived from `locked` is not enough, so use Debug.
        let d = format!("{self:?}");
        d.rsplit("waiters: ")
            .next()
            .and_then(|s| s.trim_end_matches(" }").parse().ok())
            .unwrap()
    }
}

impl Primitive for Lock {
    fn acquire(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Box<dyn std::any::Any>>>> {
        let l = self.clone();
        Box::pin(async move { Box::new(l.acquire().await) as Box<dyn std::any::Any> })
    }
    fn free(&self) -> usize {
        usize::from(!self.locked())
    }
    fn waiters(&self) -> usize {
        Lock::waiters(self)
    }
}

/// The model: free permits, the FIFO of waiters, the holders and the order of grants.
#[derive(Default)]
struct Model {
    free: usize,
    queue: VecDeque<u32>,
    holders: Vec<u32>,
    log: Vec<u32>,
    // This batch, applied at the settle: arrivals (in order), cancellations, releases.
    arrivals: Vec<u32>,
    cancelled: Vec<u32>,
    releases: usize,
}

impl Model {
    fn grant(&mut self, id: u32) {
        self.free -= 1;
        self.holders.push(id);
        self.log.push(id);
    }

    fn settle(&mut self) {
        let cancelled = std::mem::take(&mut self.cancelled);
        self.queue.retain(|id| !cancelled.contains(id));
        self.free += std::mem::take(&mut self.releases);
        while self.free > 0 {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            self.grant(id);
        }
        for id in std::mem::take(&mut self.arrivals) {
            if cancelled.contains(&id) {
                continue;
            }
            if self.free > 0 && self.queue.is_empty() {
                self.grant(id);
            } else {
                self.queue.push_back(id);
            }
        }
    }
}

fn check<P: Primitive>(seed: u64, permits: usize, make: impl Fn() -> P) {
    let (event_loop, _clock): (EventLoop, _) = virtual_loop();
    let prim = make();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let holders: Rc<RefCell<BTreeMap<u32, Box<dyn std::any::Any>>>> = Rc::default();
    let log: Rc<RefCell<Vec<u32>>> = Rc::default();
    let mut tasks: BTreeMap<u32, Task<()>> = BTreeMap::new();
    let mut model = Model {
        free: permits,
        ..Model::default()
    };
    let mut next_id = 0u32;
    for step in 0..40 {
        for _ in 0..=rng.below(3) {
            match rng.below(10) {
                0..=3 => {
                    let id = next_id;
                    next_id += 1;
                    let (p, h, l) = (prim.clone(), holders.clone(), log.clone());
                    let t = event_loop
                        .create_task(async move {
                            let g = p.acquire().await;
                            h.borrow_mut().insert(id, g);
                            l.borrow_mut().push(id);
                        })
                        .unwrap();
                    tasks.insert(id, t);
                    model.arrivals.push(id);
                }
                4..=6 => {
                    if model.holders.is_empty() {
                        continue;
                    }
                    let id = model.holders.remove(rng.below(model.holders.len()));
                    let guard = holders.borrow_mut().remove(&id).expect("a holder");
                    drop(guard);
                    model.releases += 1;
                }
                _ => {
                    let waiting: Vec<u32> = model
                        .queue
                        .iter()
                        .chain(&model.arrivals)
                        .copied()
                        .filter(|id| !model.cancelled.contains(id))
                        .collect();
                    if waiting.is_empty() {
                        continue;
                    }
                    let id = waiting[rng.below(waiting.len())];
                    tasks[&id].cancel();
                    model.cancelled.push(id);
                }
            }
        }
        for _ in 0..12 {
            run_one_iteration(&event_loop);
        }
        model.settle();
        let ctx = format!("seed {seed}, step {step}");
        assert_eq!(*log.borrow(), model.log, "grant order, {ctx}");
        let real: Vec<u32> = holders.borrow().keys().copied().collect();
        let mut expected = model.holders.clone();
        expected.sort();
        assert_eq!(real, expected, "holders, {ctx}");
        assert_eq!(prim.free(), model.free, "free permits, {ctx}");
        assert_eq!(prim.waiters(), model.queue.len(), "waiters, {ctx}");
        assert_eq!(
            holders.borrow().len() + prim.free(),
            permits,
            "permits conserved, {ctx}"
        );
    }
    holders.borrow_mut().clear();
    for t in tasks.values() {
        t.cancel();
    }
    for _ in 0..3 {
        run_one_iteration(&event_loop);
    }
    drop(tasks);
    event_loop.close().unwrap();
}

#[test]
fn semaphore_matches_the_fifo_model() {
    let _w = watchdog("semaphore_model");
    for seed in 1..=150 {
        let permits = 1 + (seed as usize % 3);
        check(seed, permits, || Semaphore::new(permits));
    }
}

#[test]
fn lock_matches_the_fifo_model() {
    let _w = watchdog("lock_model");
    for seed in 1..=150 {
        check(seed, 1, Lock::new);
    }
}

// The guard types are what holders keep.
#[allow(dead_code)]
fn _guards(_: LockGuard, _: SemaphoreGuard) {}
