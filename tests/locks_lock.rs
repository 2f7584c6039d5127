//! `Lock`, `Event` and `Semaphore`/`BoundedSemaphore`: ports of CPython's test_locks cases,
//! with the fairness and cancellation races (bpo-45997, gh-90155, bpo-32734).

mod locks_support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use asyncio::locks::{BoundedSemaphore, Event, Lock, Semaphore};
use asyncio::{wait_for, ErrorKind};
use locks_support::{run, spawn, yield_now};

// ---------------------------------------------------------------------------------------------
// Lock

#[test]
fn lock_acquire_is_fifo() {
    run("lock_acquire_is_fifo", |_| async {
        let lock = Lock::new();
        let result = Rc::new(RefCell::new(Vec::new()));
        lock.acquire().await.forget();
        let c = |n| {
            let (lock, result) = (lock.clone(), result.clone());
            async move {
                lock.acquire().await.forget();
                result.borrow_mut().push(n);
            }
        };
        let t1 = spawn(c(1));
        let t2 = spawn(c(2));
        yield_now().await;
        assert!(result.borrow().is_empty());
        lock.release().unwrap();
        yield_now().await;
        assert_eq!(*result.borrow(), [1]);
        yield_now().await;
        assert_eq!(*result.borrow(), [1]);
        let t3 = spawn(c(3));
        lock.release().unwrap();
        yield_now().await;
        assert_eq!(*result.borrow(), [1, 2]);
        lock.release().unwrap();
        yield_now().await;
        assert_eq!(*result.borrow(), [1, 2, 3]);
        assert!(t1.done() && t2.done() && t3.done());
    });
}

#[test]
fn lock_guard_releases_on_drop() {
    run("lock_guard_releases_on_drop", |_| async {
        let lock = Lock::new();
        {
            let _g = lock.acquire().await;
            assert!(lock.locked());
            assert!(lock.try_acquire().is_none());
        }
        assert!(!lock.locked());
        assert!(lock.try_acquire().is_some());
        assert!(!lock.locked());
    });
}

#[test]
fn lock_release_not_acquired_is_an_error() {
    let lock = Lock::new();
    let err = lock.release().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), "Lock is not acquired.");
}

#[test]
fn lock_acquire_cancel_leaves_no_waiter() {
    run("lock_acquire_cancel", |_| async {
        let lock = Lock::new();
        let _g = lock.acquire().await;
        let l = lock.clone();
        let t = spawn(async move { l.acquire().await.forget() });
        yield_now().await;
        assert_eq!(lock.waiters(), 1);
        t.cancel();
        assert_eq!(t.await.unwrap_err().kind(), ErrorKind::Cancelled);
        assert_eq!(lock.waiters(), 0);
    });
}

/// test_cancel_race: A releases while B (first waiter) is cancelled: C must get the lock.
#[test]
fn lock_cancel_race_hands_the_lock_to_the_next_waiter() {
    run("lock_cancel_race", |_| async {
        let lock = Lock::new();
        let blocker = Event::new();
        let lockit = |blocker: Option<Event>| {
            let lock = lock.clone();
            async move {
                let _g = lock.acquire().await;
                if let Some(b) = blocker {
                    b.wait().await;
                }
            }
        };
        let ta = spawn(lockit(Some(blocker.clone())));
        yield_now().await;
        assert!(lock.locked());
        let tb = spawn(lockit(None));
        yield_now().await;
        assert_eq!(lock.waiters(), 1);
        let tc = spawn(lockit(None));
        yield_now().await;
        assert_eq!(lock.waiters(), 2);
        blocker.set();
        tb.cancel();
        yield_now().await;
        yield_now().await;
        assert!(ta.done());
        assert!(tb.cancelled());
        tc.await.unwrap();
        assert!(!lock.locked());
    });
}

/// test_cancel_release_race (bpo-32734): cancel the first of three waiters and release in the
/// same callback: exactly one task takes the lock.
#[test]
fn lock_cancel_release_race_takes_the_lock_once() {
    run("lock_cancel_release_race", |lp| async move {
        let lock = Lock::new();
        let lock_count = Rc::new(Cell::new(0));
        let lockit = || {
            let (lock, n) = (lock.clone(), lock_count.clone());
            async move {
                lock.acquire().await.forget();
                n.set(n.get() + 1);
            }
        };
        lock.acquire().await.forget();
        let t1 = spawn(lockit());
        let t2 = spawn(lockit());
        let t3 = spawn(lockit());
        yield_now().await;
        let (t1r, l) = (t1.as_task_ref(), lock.clone());
        lp.call_soon(move || {
            t1r.cancel();
            l.release().unwrap();
        })
        .unwrap();
        assert_eq!(t1.await.unwrap_err().kind(), ErrorKind::Cancelled);
        yield_now().await;
        assert_eq!(lock_count.get(), 1);
        assert!(t2.done());
        t3.cancel();
        yield_now().await;
        assert!(t3.cancelled());
    });
}

/// test_finished_waiter_cancelled (bpo-45997): the first waiter is woken and cancelled in the
/// same iteration: the second must be woken, not forgotten.
#[test]
fn lock_woken_then_cancelled_waiter_passes_the_wake_up_on() {
    run("lock_finished_waiter_cancelled", |_| async {
        let lock = Lock::new();
        lock.acquire().await.forget();
        let l = lock.clone();
        let tb = spawn(async move { l.acquire().await.forget() });
        yield_now().await;
        assert_eq!(lock.waiters(), 1);
        let l = lock.clone();
        let tc = spawn(async move { l.acquire().await.forget() });
        tb.cancel();
        lock.release().unwrap();
        yield_now().await;
        yield_now().await;
        assert!(lock.locked());
        assert!(tb.cancelled());
        assert!(tc.done());
        tc.await.unwrap();
    });
}

#[test]
fn lock_acquire_under_timeout_gives_up_its_place() {
    run("lock_acquire_timeout", |_| async {
        let lock = Lock::new();
        let g = lock.acquire().await;
        let r = wait_for(lock.acquire(), 0.01).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(lock.waiters(), 0);
        drop(g);
        let _g = wait_for(lock.acquire(), 0.01).await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Event

#[test]
fn event_wait_wakes_every_waiter() {
    run("event_wait", |_| async {
        let ev = Event::new();
        let result = Rc::new(RefCell::new(Vec::new()));
        let c = |n| {
            let (ev, r) = (ev.clone(), result.clone());
            async move {
                ev.wait().await;
                r.borrow_mut().push(n);
            }
        };
        let (t1, t2) = (spawn(c(1)), spawn(c(2)));
        yield_now().await;
        assert!(result.borrow().is_empty());
        let t3 = spawn(c(3));
        ev.set();
        yield_now().await;
        assert_eq!(*result.borrow(), [3, 1, 2]);
        assert!(t1.done() && t2.done() && t3.done());
        // Set: waits return at once.
        ev.wait().await;
    });
}

/// test_clear_with_waiters: a waiter woken by `set` returns even if `clear` comes first.
#[test]
fn event_clear_after_set_still_releases_woken_waiters() {
    run("event_clear_with_waiters", |_| async {
        let ev = Event::new();
        let e = ev.clone();
        let t = spawn(async move { e.wait().await });
        yield_now().await;
        ev.set();
        ev.clear();
        assert!(!ev.is_set());
        ev.set();
        ev.set();
        yield_now().await;
        assert!(t.done());
        t.await.unwrap();
    });
}

#[test]
fn event_wait_cancel_leaves_no_waiter() {
    run("event_wait_cancel", |_| async {
        let ev = Event::new();
        let r = wait_for(ev.wait(), 0.01).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(format!("{ev:?}"), "Event { set: false, waiters: 0 }");
    });
}

// ---------------------------------------------------------------------------------------------
// Semaphore

#[test]
fn semaphore_counts_permits() {
    run("semaphore_counts", |_| async {
        let sem = Semaphore::new(0);
        assert!(sem.locked());
        sem.release().unwrap();
        assert!(!sem.locked());
        let g = sem.acquire().await;
        assert!(sem.locked());
        drop(g);
        assert_eq!(sem.value(), 1);
    });
}

/// test_acquire_cancel_before_awoken (gh-90155): two waiters cancelled before a release: the
/// permit goes to the third, not lost and not given twice.
#[test]
fn semaphore_cancelled_waiters_do_not_swallow_the_permit() {
    run("semaphore_cancel_before_awoken", |_| async {
        let sem = Semaphore::new(0);
        let acq = || {
            let s = sem.clone();
            spawn(async move { s.acquire().await.forget() })
        };
        let (t1, t2, t3, t4) = (acq(), acq(), acq(), acq());
        yield_now().await;
        t1.cancel();
        t2.cancel();
        sem.release().unwrap();
        yield_now().await;
        yield_now().await;
        assert!(t3.done());
        assert!(!t4.done());
        t3.cancel();
        t4.cancel();
        yield_now().await;
    });
}

/// test_acquire_hang: the first waiter is cancelled, then a release: the second gets it.
#[test]
fn semaphore_acquire_does_not_hang_after_a_cancel() {
    run("semaphore_acquire_hang", |_| async {
        let sem = Semaphore::new(0);
        let acq = || {
            let s = sem.clone();
            spawn(async move { s.acquire().await.forget() })
        };
        let (t1, t2) = (acq(), acq());
        yield_now().await;
        t1.cancel();
        sem.release().unwrap();
        yield_now().await;
        yield_now().await;
        assert!(sem.locked());
        assert!(t2.done());
    });
}

/// test_acquire_no_hang: a waiter cancelled after it was handed the permit gives it back.
#[test]
fn semaphore_woken_then_cancelled_waiter_returns_the_permit() {
    run("semaphore_acquire_no_hang", |_| async {
        let sem = Semaphore::new(1);
        let t2_slot: Rc<RefCell<Option<asyncio::TaskRef>>> = Rc::default();
        let (s, slot) = (sem.clone(), t2_slot.clone());
        let t1 = spawn(async move {
            {
                let _g = s.acquire().await;
                yield_now().await;
            }
            slot.borrow().as_ref().unwrap().cancel();
        });
        let s = sem.clone();
        let t2 = spawn(async move {
            let _g = s.acquire().await;
            unreachable!("t2 is cancelled before it runs with the permit");
        });
        *t2_slot.borrow_mut() = Some(t2.as_task_ref());
        t1.await.unwrap();
        assert_eq!(t2.await.unwrap_err().kind(), ErrorKind::Cancelled);
        let _g = wait_for(sem.acquire(), 1.0).await.unwrap();
    });
}

/// test_acquire_fifo_order: tasks that release and re-acquire queue behind the others.
#[test]
fn semaphore_acquire_fifo_order() {
    run("semaphore_fifo_order", |_| async {
        let sem = Semaphore::new(1);
        let result = Rc::new(RefCell::new(Vec::new()));
        let coro = |tag: &'static str| {
            let (sem, r) = (sem.clone(), result.clone());
            async move {
                for round in 1..=2 {
                    let _g = sem.acquire().await;
                    r.borrow_mut().push(format!("{tag}_{round}"));
                    asyncio::sleep(0.01).await.unwrap();
                }
            }
        };
        asyncio::gather([coro("c1"), coro("c2"), coro("c3")])
            .await
            .unwrap();
        assert_eq!(
            *result.borrow(),
            ["c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"]
        );
    });
}

/// test_acquire_fifo_order_2: a task that releases and re-acquires at once goes to the back.
#[test]
fn semaphore_acquire_fifo_order_2() {
    run("semaphore_fifo_order_2", |_| async {
        let sem = Semaphore::new(1);
        let result = Rc::new(RefCell::new(Vec::new()));
        let (s, r) = (sem.clone(), result.clone());
        let t1 = spawn(async move {
            s.acquire().await.forget();
            r.borrow_mut().push(1);
        });
        let (s, r) = (sem.clone(), result.clone());
        let t2 = spawn(async move {
            s.acquire().await.forget();
            r.borrow_mut().push(2);
            s.release().unwrap();
            s.acquire().await.forget();
            r.borrow_mut().push(4);
        });
        let (s, r) = (sem.clone(), result.clone());
        let t3 = spawn(async move {
            s.acquire().await.forget();
            r.borrow_mut().push(3);
        });
        yield_now().await;
        sem.release().unwrap();
        sem.release().unwrap();
        t1.await.unwrap();
        t2.await.unwrap();
        t3.await.unwrap();
        assert_eq!(*result.borrow(), [1, 2, 3, 4]);
    });
}

/// test_acquire_fifo_order_3: a cancelled waiter is skipped.
#[test]
fn semaphore_acquire_fifo_order_3() {
    run("semaphore_fifo_order_3", |_| async {
        let sem = Semaphore::new(0);
        let result = Rc::new(RefCell::new(Vec::new()));
        let c = |n| {
            let (s, r) = (sem.clone(), result.clone());
            spawn(async move {
                s.acquire().await.forget();
                r.borrow_mut().push(n);
            })
        };
        let (t1, t2, t3) = (c(1), c(2), c(3));
        yield_now().await;
        t1.cancel();
        yield_now().await;
        sem.release().unwrap();
        sem.release().unwrap();
        assert!(t1.await.is_err());
        t2.await.unwrap();
        t3.await.unwrap();
        assert_eq!(*result.borrow(), [2, 3]);
    });
}

#[test]
fn bounded_semaphore_refuses_extra_releases() {
    let sem = BoundedSemaphore::new(1);
    let err = sem.release().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert_eq!(err.to_string(), "BoundedSemaphore released too many times");
    let g = sem.try_acquire().unwrap();
    assert!(sem.locked());
    drop(g);
    assert_eq!(sem.value(), 1);
    assert!(sem.release().is_err());
}

/// The report: with async-lock's `Semaphore`, 2 of 4 consumers never got the permit.
/// Here every consumer gets its turn, round robin.
#[test]
fn semaphore_shares_the_permit_round_robin() {
    run("semaphore_round_robin", |_| async {
        let sem = Semaphore::new(1);
        let counts = Rc::new(RefCell::new([0usize; 4]));
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let (sem, counts) = (sem.clone(), counts.clone());
                spawn(async move {
                    loop {
                        let _g = sem.acquire().await;
                        counts.borrow_mut()[i] += 1;
                        yield_now().await;
                    }
                })
            })
            .collect();
        asyncio::sleep(0.0).await.unwrap();
        for _ in 0..40 {
            yield_now().await;
        }
        for t in &tasks {
            t.cancel();
        }
        let c = *counts.borrow();
        let (min, max) = (c.iter().min().unwrap(), c.iter().max().unwrap());
        assert!(max - min <= 1, "{c:?}");
        assert!(*min > 0, "{c:?}");
    });
}

/// Found by the property test: the lock is released (the head waiter is woken) and, before the
/// head runs, the *second* waiter's cancellation runs. Its exit must not wake the third waiter too
/// (asyncio's `_wake_up_first` only ever wakes the head), or two tasks hold the lock.
#[test]
fn lock_cancelling_a_later_waiter_does_not_wake_a_second_owner() {
    run("lock_second_owner", |_| async {
        let lock = Lock::new();
        lock.acquire().await.forget();
        let owners = Rc::new(Cell::new(0));
        let w = || {
            let (l, n) = (lock.clone(), owners.clone());
            spawn(async move {
                let _g = l.acquire().await;
                n.set(n.get() + 1);
                std::future::pending::<()>().await;
            })
        };
        let (t1, t2, t3) = (w(), w(), w());
        yield_now().await;
        // t2's step (its exit) runs before t1's (the acquire).
        t2.cancel();
        lock.release().unwrap();
        yield_now().await;
        yield_now().await;
        assert_eq!(owners.get(), 1);
        assert!(t1.done() || !t3.done());
        t1.cancel();
        yield_now().await;
        yield_now().await;
        assert_eq!(owners.get(), 2, "t3 gets the lock once t1 leaves");
        t3.cancel();
        yield_now().await;
    });
}
