//! `Condition` and `Barrier`: ports of CPython's test_locks cases (notify order, notify(n),
//! wait_for, cancellation after notify; barrier reuse, abort, reset, cancelled waiters).

mod locks_support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use asyncio::locks::{Barrier, Condition, Lock};
use asyncio::{gather, ErrorKind};
use locks_support::{run, spawn, yield_now};

// ---------------------------------------------------------------------------------------------
// Condition

fn waiter(cond: &Condition, log: &Rc<RefCell<Vec<i32>>>, n: i32) -> asyncio::Task<()> {
    let (cond, log) = (cond.clone(), log.clone());
    spawn(async move {
        let g = cond.acquire().await;
        let _g = cond.wait(g).await.unwrap();
        log.borrow_mut().push(n);
    })
}

/// test_wait / test_notify: notify(1) then notify(2) wake waiters in the order they waited.
#[test]
fn condition_notify_wakes_in_fifo_order() {
    run("condition_notify", |_| async {
        let cond = Condition::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let ts: Vec<_> = (1..=3).map(|n| waiter(&cond, &log, n)).collect();
        yield_now().await;
        assert_eq!(cond.waiters(), 3);
        assert!(!cond.locked());
        let g = cond.acquire().await;
        cond.notify(1).unwrap();
        drop(g);
        yield_now().await;
        yield_now().await;
        assert_eq!(*log.borrow(), [1]);
        let g = cond.acquire().await;
        cond.notify(2).unwrap();
        cond.notify(15).unwrap();
        drop(g);
        for t in ts {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), [1, 2, 3]);
    });
}

#[test]
fn condition_notify_all_wakes_everyone() {
    run("condition_notify_all", |_| async {
        let cond = Condition::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let ts: Vec<_> = (1..=3).map(|n| waiter(&cond, &log, n)).collect();
        yield_now().await;
        let g = cond.acquire().await;
        cond.notify_all().unwrap();
        drop(g);
        for t in ts {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), [1, 2, 3]);
    });
}

#[test]
fn condition_notify_unacquired_is_an_error() {
    let cond = Condition::new();
    let err = cond.notify(1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), "cannot notify on un-acquired lock");
    assert!(cond.notify_all().is_err());
}

#[test]
fn condition_wait_with_a_foreign_guard_is_an_error() {
    run("condition_foreign_guard", |_| async {
        let cond = Condition::new();
        let other = Lock::new();
        let g = other.acquire().await;
        let err = cond.wait(g).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(!other.locked());
    });
}

/// test_wait_for: the predicate is re-checked after every notification.
#[test]
fn condition_wait_for_rechecks_the_predicate() {
    run("condition_wait_for", |_| async {
        let cond = Condition::new();
        let presult = Rc::new(Cell::new(false));
        let checks = Rc::new(Cell::new(0));
        let (c, p, k) = (cond.clone(), presult.clone(), checks.clone());
        let t = spawn(async move {
            let g = c.acquire().await;
            let _g = c
                .wait_for(g, || {
                    k.set(k.get() + 1);
                    p.get()
                })
                .await
                .unwrap();
        });
        yield_now().await;
        assert_eq!(checks.get(), 1);
        let g = cond.acquire().await;
        cond.notify(1).unwrap();
        drop(g);
        yield_now().await;
        yield_now().await;
        assert_eq!(checks.get(), 2);
        assert!(!t.done());
        presult.set(true);
        let g = cond.acquire().await;
        cond.notify(1).unwrap();
        drop(g);
        t.await.unwrap();
        assert_eq!(checks.get(), 3);
    });
}

/// test_wait_cancel_after_notify (bpo-32841) and gh-112202: a waiter cancelled after it was
/// notified passes the notification to the next waiter.
#[test]
fn condition_cancel_after_notify_passes_the_notification_on() {
    run("condition_cancel_after_notify", |_| async {
        let cond = Condition::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let t1 = waiter(&cond, &log, 1);
        let t2 = waiter(&cond, &log, 2);
        yield_now().await;
        let g = cond.acquire().await;
        cond.notify(1).unwrap();
        yield_now().await; // t1 is notified and now waits for the lock
        t1.cancel();
        yield_now().await; // t1's cancellation runs
        drop(g);
        assert!(t1.cancelled());
        t2.await.unwrap();
        assert_eq!(*log.borrow(), [2]);
        assert!(!cond.locked());
    });
}

/// test_explicit_lock: a condition over a shared lock.
#[test]
fn condition_with_an_explicit_lock_shares_it() {
    run("condition_explicit_lock", |_| async {
        let lock = Lock::new();
        let cond = Condition::with_lock(lock.clone());
        assert!(cond.lock().ptr_eq(&lock));
        let g = lock.acquire().await;
        assert!(cond.locked());
        cond.notify_all().unwrap();
        drop(g);
        assert!(!cond.locked());
    });
}

// ---------------------------------------------------------------------------------------------
// Barrier

fn barrier_tasks(b: &Barrier, n: usize) -> asyncio::Gather<asyncio::Result<usize>> {
    gather((0..n).map(|_| {
        let b = b.clone();
        async move { b.wait().await }
    }))
}

#[test]
fn barrier_needs_parties() {
    assert_eq!(
        Barrier::new(0).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

/// test_filling_tasks_check_return_value and test_filling_tasks_wait_twice: indices 0..n, and
/// the barrier is reusable.
#[test]
fn barrier_returns_arrival_indices_and_is_reusable() {
    run("barrier_reuse", |_| async {
        let b = Barrier::new(3).unwrap();
        for _ in 0..2 {
            let mut idx: Vec<usize> = barrier_tasks(&b, 3)
                .await
                .unwrap()
                .into_iter()
                .map(Result::unwrap)
                .collect();
            idx.sort();
            assert_eq!(idx, [0, 1, 2]);
            assert_eq!(b.n_waiting(), 0);
            assert!(!b.broken());
        }
    });
}

/// test_blocking_tasks_while_draining: a task arriving while the barrier drains waits for the
/// next round.
#[test]
fn barrier_blocks_newcomers_while_draining() {
    run("barrier_draining", |_| async {
        let b = Barrier::new(2).unwrap();
        let w = |b: &Barrier| {
            let b = b.clone();
            spawn(async move { b.wait().await.unwrap() })
        };
        let (t1, t2) = (w(&b), w(&b));
        yield_now().await; // both arrive: draining
        let t3 = w(&b);
        yield_now().await;
        assert!(t1.done() && t2.done());
        assert!(!t3.done());
        assert_eq!(b.n_waiting(), 1);
        let t4 = w(&b);
        assert_eq!(t3.await.unwrap() + t4.await.unwrap(), 1);
    });
}

/// test_filling_tasks_cancel_one: a cancelled waiter leaves the count.
#[test]
fn barrier_cancelled_waiter_leaves_the_count() {
    run("barrier_cancel_one", |_| async {
        let b = Barrier::new(3).unwrap();
        let w = |b: &Barrier| {
            let b = b.clone();
            spawn(async move { b.wait().await })
        };
        let (t1, t2) = (w(&b), w(&b));
        yield_now().await;
        assert_eq!(b.n_waiting(), 2);
        t1.cancel();
        yield_now().await;
        assert_eq!(b.n_waiting(), 1);
        let (t3, t4) = (w(&b), w(&b));
        assert!(t1.await.unwrap_err().is_cancelled());
        // As in asyncio, the index is the count on arrival: t2 keeps 1 and t3 arrives as 1.
        let idx = [t2.await, t3.await, t4.await].map(|r| r.unwrap().unwrap());
        assert_eq!(idx, [1, 1, 2]);
        assert_eq!(b.n_waiting(), 0);
        assert!(!b.broken());
    });
}

/// test_abort_barrier / test_abort_barrier_when_tasks_half_draining_half_blocking.
#[test]
fn barrier_abort_breaks_waiters_and_newcomers() {
    run("barrier_abort", |_| async {
        let b = Barrier::new(3).unwrap();
        let b2 = b.clone();
        let t = spawn(async move { b2.wait().await });
        yield_now().await;
        b.abort();
        let err = t.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenBarrier);
        assert_eq!(err.to_string(), "Abort or reset of barrier");
        assert!(b.broken());
        let err = b.wait().await.unwrap_err();
        assert_eq!(err.to_string(), "Barrier aborted");
        b.reset();
        assert!(!b.broken());
        let idx = barrier_tasks(&b, 3).await.unwrap();
        assert!(idx.iter().all(Result::is_ok));
    });
}

/// test_reset_barrier_while_tasks_waiting: reset sends the waiters away and the barrier is
/// usable again.
#[test]
fn barrier_reset_while_waiting() {
    run("barrier_reset_waiting", |_| async {
        let b = Barrier::new(3).unwrap();
        let waiting = barrier_tasks(&b, 2);
        let b2 = b.clone();
        let resetter = spawn(async move {
            yield_now().await;
            yield_now().await;
            b2.reset();
        });
        let r = waiting.await.unwrap();
        resetter.await.unwrap();
        assert!(r
            .iter()
            .all(|x| x.as_ref().unwrap_err().kind() == ErrorKind::BrokenBarrier));
        assert!(!b.broken());
        assert_eq!(b.n_waiting(), 0);
        let idx = barrier_tasks(&b, 3).await.unwrap();
        assert!(idx.iter().all(Result::is_ok));
    });
}
