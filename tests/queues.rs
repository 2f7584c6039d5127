//! `Queue`, `LifoQueue`, `PriorityQueue`: ports of CPython's test_queues cases (order, maxsize,
//! blocking put/get, cancellation races that must not drop items, task_done/join, 3.13's
//! shutdown) and the FIFO fairness among blocked getters and putters.

mod locks_support;

use std::cell::RefCell;
use std::rc::Rc;

use asyncio::queues::{LifoQueue, PriorityQueue, Queue};
use asyncio::{wait_for, ErrorKind};
use locks_support::{run, spawn, yield_now};

#[test]
fn queue_orders() {
    run("queue_orders", |_| async {
        let q: Queue<i32> = Queue::new(0);
        for i in [1, 3, 2] {
            q.put_nowait(i).unwrap();
        }
        assert_eq!(q.qsize(), 3);
        let got: Vec<_> = (0..3).map(|_| q.get_nowait().unwrap()).collect();
        assert_eq!(got, [1, 3, 2]);
        let q: LifoQueue<i32> = LifoQueue::new(0);
        for i in [1, 3, 2] {
            q.put(i).await.unwrap();
        }
        let got: Vec<_> = (0..3).map(|_| q.get_nowait().unwrap()).collect();
        assert_eq!(got, [2, 3, 1]);
        let q: PriorityQueue<(u8, &str)> = PriorityQueue::new(0);
        for i in [(1, "a"), (3, "c"), (2, "b")] {
            q.put(i).await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(q.get().await.unwrap().1);
        }
        assert_eq!(got, ["a", "b", "c"]);
    });
}

#[test]
fn queue_empty_full_and_nowait_errors() {
    let q: Queue<i32> = Queue::new(1);
    assert!(q.empty() && !q.full());
    assert_eq!(q.get_nowait().unwrap_err().kind(), ErrorKind::QueueEmpty);
    q.put_nowait(1).unwrap();
    assert!(!q.empty() && q.full());
    assert_eq!(q.put_nowait(2).unwrap_err().kind(), ErrorKind::QueueFull);
    assert_eq!(q.maxsize(), 1);
    let unbounded: Queue<i32> = Queue::default();
    for i in 0..1000 {
        unbounded.put_nowait(i).unwrap();
    }
    assert!(!unbounded.full());
}

/// test_maxsize: a bounded queue makes putters wait for room.
#[test]
fn queue_maxsize_blocks_putters() {
    run("queue_maxsize", |_| async {
        let q: Queue<i32> = Queue::new(2);
        let have = Rc::new(RefCell::new(Vec::new()));
        let (q2, h) = (q.clone(), have.clone());
        let putter = spawn(async move {
            for i in 0..3 {
                q2.put(i).await.unwrap();
                h.borrow_mut().push(i);
            }
        });
        yield_now().await;
        assert_eq!(*have.borrow(), [0, 1]);
        assert!(q.full());
        assert_eq!(q.get().await.unwrap(), 0);
        putter.await.unwrap();
        assert_eq!(*have.borrow(), [0, 1, 2]);
        assert_eq!(q.get().await.unwrap(), 1);
        assert_eq!(q.get().await.unwrap(), 2);
    });
}

/// test_blocking_get_wait / test_get_with_putters.
#[test]
fn queue_blocking_get_waits_for_a_put() {
    run("queue_blocking_get", |_| async {
        let q: Queue<&str> = Queue::new(1);
        let q2 = q.clone();
        let getter = spawn(async move { q2.get().await.unwrap() });
        yield_now().await;
        assert!(!getter.done());
        q.put("a").await.unwrap();
        assert_eq!(getter.await.unwrap(), "a");
        // A full queue with a blocked putter: get frees a slot and wakes it.
        q.put_nowait("b").unwrap();
        let q2 = q.clone();
        let putter = spawn(async move { q2.put("c").await.unwrap() });
        yield_now().await;
        assert!(!putter.done());
        assert_eq!(q.get().await.unwrap(), "b");
        putter.await.unwrap();
        assert_eq!(q.get_nowait().unwrap(), "c");
    });
}

/// test_get_cancelled_race: a cancelled getter does not take the next item.
#[test]
fn queue_get_cancelled_race() {
    run("queue_get_cancelled_race", |_| async {
        let q: Queue<&str> = Queue::new(0);
        let g = || {
            let q = q.clone();
            spawn(async move { q.get().await.unwrap() })
        };
        let (t1, t2) = (g(), g());
        yield_now().await;
        t1.cancel();
        yield_now().await;
        assert!(t1.done());
        q.put("a").await.unwrap();
        yield_now().await;
        assert_eq!(t2.await.unwrap(), "a");
    });
}

/// test_get_cancel_drop_one_pending_reader and ..._many_pending_readers: a getter cancelled
/// after it was woken loses no item and its wake-up goes to the next getter.
#[test]
fn queue_cancelled_getters_drop_no_item() {
    run("queue_get_cancel_drop", |_| async {
        let q: Queue<i32> = Queue::new(0);
        let q2 = q.clone();
        let reader = spawn(async move { q2.get().await.unwrap() });
        yield_now().await;
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        reader.cancel();
        assert!(reader.await.unwrap_err().is_cancelled());
        assert_eq!(q.get().await.unwrap(), 1);

        let q: Queue<i32> = Queue::new(0);
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                spawn(async move { q.get().await.unwrap() })
            })
            .collect();
        yield_now().await;
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        readers[0].cancel();
        let mut got = Vec::new();
        for r in readers.into_iter().skip(1) {
            got.push(r.await.unwrap());
        }
        assert_eq!(got, [1, 2]);
        assert!(q.empty());
    });
}

/// test_put_cancelled_race: a cancelled putter gives its turn away and puts nothing.
#[test]
fn queue_put_cancelled_race() {
    run("queue_put_cancelled_race", |_| async {
        let q: Queue<&str> = Queue::new(1);
        let p = |v| {
            let q = q.clone();
            spawn(async move { q.put(v).await.unwrap() })
        };
        let (put_a, put_b, put_c) = (p("a"), p("b"), p("X"));
        yield_now().await;
        assert!(put_a.done());
        assert!(!put_b.done());
        put_c.cancel();
        yield_now().await;
        assert!(put_c.done());
        assert_eq!(q.get_nowait().unwrap(), "a");
        yield_now().await;
        assert_eq!(q.get_nowait().unwrap(), "b");
        put_b.await.unwrap();
        assert!(q.empty());
    });
}

/// A putter woken for a free slot and then cancelled passes the slot to the next putter.
#[test]
fn queue_woken_then_cancelled_putter_passes_the_slot_on() {
    run("queue_put_pass_on", |_| async {
        let q: Queue<i32> = Queue::new(1);
        q.put_nowait(0).unwrap();
        let p = |v| {
            let q = q.clone();
            spawn(async move { q.put(v).await.unwrap() })
        };
        let (t1, t2) = (p(1), p(2));
        yield_now().await;
        assert_eq!(q.get_nowait().unwrap(), 0); // wakes t1
        t1.cancel();
        yield_now().await;
        yield_now().await;
        assert!(t2.done());
        assert_eq!(q.get_nowait().unwrap(), 2);
    });
}

/// FIFO among blocked getters, and a newcomer `get()` does not take the item a woken getter
/// was woken for (asyncio lets it, and the woken getter goes to the back).
#[test]
fn queue_getters_are_served_in_order_and_newcomers_wait_their_turn() {
    run("queue_getter_fairness", |_| async {
        let q: Queue<i32> = Queue::new(0);
        let log = Rc::new(RefCell::new(Vec::new()));
        let g = |name: &'static str| {
            let (q, log) = (q.clone(), log.clone());
            spawn(async move {
                let v = q.get().await.unwrap();
                log.borrow_mut().push((name, v));
            })
        };
        let (a, b) = (g("a"), g("b"));
        yield_now().await;
        // c's first step runs before a's: it arrives while a is woken and must not take 1.
        let c = g("c");
        q.put_nowait(1).unwrap(); // for a
        yield_now().await;
        q.put_nowait(2).unwrap();
        q.put_nowait(3).unwrap();
        for t in [a, b, c] {
            t.await.unwrap();
        }
        assert_eq!(*log.borrow(), [("a", 1), ("b", 2), ("c", 3)]);
    });
}

/// Blocked putters are served in order too.
#[test]
fn queue_putters_are_served_in_order() {
    run("queue_putter_fairness", |_| async {
        let q: Queue<i32> = Queue::new(1);
        q.put_nowait(0).unwrap();
        let ts: Vec<_> = (1..=3)
            .map(|v| {
                let q = q.clone();
                spawn(async move { q.put(v).await.unwrap() })
            })
            .collect();
        yield_now().await;
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(q.get().await.unwrap());
        }
        assert_eq!(got, [0, 1, 2, 3]);
        for t in ts {
            t.await.unwrap();
        }
    });
}

/// test_task_done / test_join_empty_queue / test_task_done_underflow.
#[test]
fn queue_join_waits_for_task_done() {
    run("queue_join", |_| async {
        let q: Queue<i32> = Queue::new(0);
        q.join().await; // nothing unfinished
        let err = q.task_done().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert_eq!(err.to_string(), "task_done() called too many times");
        let total = Rc::new(RefCell::new(0));
        for i in 0..100 {
            q.put_nowait(i).unwrap();
        }
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (q, total) = (q.clone(), total.clone());
                spawn(async move {
                    loop {
                        let Ok(v) = q.get().await else { break };
                        *total.borrow_mut() += v;
                        yield_now().await;
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        q.join().await;
        assert_eq!(*total.borrow(), 4950);
        q.shutdown(false);
        for w in workers {
            w.await.unwrap();
        }
    });
}

/// 3.13's shutdown(): putters fail at once, getters drain what is left, then fail.
#[test]
fn queue_shutdown_lets_getters_drain() {
    run("queue_shutdown", |_| async {
        let q: Queue<i32> = Queue::new(1);
        q.put_nowait(1).unwrap();
        let q2 = q.clone();
        let putter = spawn(async move { q2.put(2).await });
        yield_now().await;
        q.shutdown(false);
        assert!(q.is_shutdown());
        assert_eq!(
            putter.await.unwrap().unwrap_err().kind(),
            ErrorKind::QueueShutDown
        );
        assert_eq!(
            q.put_nowait(3).unwrap_err().kind(),
            ErrorKind::QueueShutDown
        );
        assert_eq!(q.get().await.unwrap(), 1);
        assert_eq!(q.get().await.unwrap_err().kind(), ErrorKind::QueueShutDown);
        assert_eq!(q.get_nowait().unwrap_err().kind(), ErrorKind::QueueShutDown);
    });
}

/// shutdown(immediate=True): items are dropped, join returns, blocked getters fail.
#[test]
fn queue_shutdown_immediate_drops_items_and_releases_join() {
    run("queue_shutdown_immediate", |_| async {
        let q: Queue<i32> = Queue::new(0);
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        let q2 = q.clone();
        let joiner = spawn(async move { q2.join().await });
        let empty: Queue<i32> = Queue::new(0);
        let e2 = empty.clone();
        let getter = spawn(async move { e2.get().await });
        yield_now().await;
        q.shutdown(true);
        empty.shutdown(true);
        assert!(q.empty());
        joiner.await.unwrap();
        assert_eq!(
            getter.await.unwrap().unwrap_err().kind(),
            ErrorKind::QueueShutDown
        );
    });
}

#[test]
fn queue_get_under_timeout_loses_nothing() {
    run("queue_get_timeout", |_| async {
        let q: Queue<i32> = Queue::new(0);
        let r = wait_for(q.get(), 0.01).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
        q.put_nowait(7).unwrap();
        assert_eq!(wait_for(q.get(), 0.01).await.unwrap().unwrap(), 7);
        assert_eq!(
            format!("{q:?}"),
            "Queue { maxsize: 0, getters: 0, putters: 0, unfinished: 1, .. }"
        );
    });
}
