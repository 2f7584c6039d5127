//! asyncio's synchronization primitives: `Lock`, `Event`, `Condition`, `Semaphore`,
//! `BoundedSemaphore` and `Barrier`, each shared between tasks by cloning (`Rc` inside); and
//! the thread-safe `Semaphore` and `Event` shared by two loops on two threads.
//!
//! ```text
//! cargo run --example synchronization
//! ```
//!
//! Each part asserts what it shows, so the example fails if the behaviour changes.

use std::cell::RefCell;
use std::rc::Rc;

use asyncio::locks::{Barrier, BoundedSemaphore, Condition, Event, Lock, Semaphore};
use asyncio::{gather, get_running_loop, sleep, Error, ErrorKind};

fn main() -> Result<(), Error> {
    asyncio::run(async {
        lock().await?;
        event().await?;
        condition().await?;
        semaphore().await?;
        barrier().await?;
        Ok::<_, Error>(())
    })??;
    across_threads()
}

// ANCHOR: lock
async fn lock() -> Result<(), Error> {
    let lock = Lock::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let workers = (0..3).map(|i| {
        let (lock, log) = (lock.clone(), log.clone());
        async move {
            // `async with lock:` — the guard releases the lock when dropped.
            let _guard = lock.acquire().await;
            log.borrow_mut().push(format!("{i} in"));
            sleep(0.001).await?;
            log.borrow_mut().push(format!("{i} out"));
            Ok::<_, Error>(())
        }
    });
    gather(workers).await?;
    // One at a time, in the order they asked.
    assert_eq!(
        *log.borrow(),
        ["0 in", "0 out", "1 in", "1 out", "2 in", "2 out"]
    );
    println!("lock: {:?}", log.borrow());
    Ok(())
}
// ANCHOR_END: lock

// ANCHOR: event
async fn event() -> Result<(), Error> {
    let lp = get_running_loop()?;
    let ready = Event::new();
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let ready = ready.clone();
            lp.create_task(async move {
                ready.wait().await;
                i
            })
        })
        .collect::<Result<_, _>>()?;
    sleep(0.001).await?;
    ready.set(); // wakes every waiter
    let woken = asyncio::gather_tasks(waiters).await?;
    println!("event: woke {woken:?}");
    assert_eq!(woken, [0, 1, 2]);
    Ok(())
}
// ANCHOR_END: event

// ANCHOR: condition
async fn condition() -> Result<(), Error> {
    let lp = get_running_loop()?;
    let cond = Condition::new();
    let items = Rc::new(RefCell::new(Vec::<u32>::new()));
    let consumer = {
        let (cond, items) = (cond.clone(), items.clone());
        lp.create_task(async move {
            let guard = cond.acquire().await;
            // `await cond.wait_for(lambda: len(items) >= 3)`: the lock is released while
            // waiting and held again when the predicate is checked.
            let _guard = cond.wait_for(guard, || items.borrow().len() >= 3).await?;
            Ok::<_, Error>(items.borrow().iter().sum::<u32>())
        })?
    };
    for n in 1..=3 {
        let _guard = cond.acquire().await;
        items.borrow_mut().push(n);
        cond.notify(1)?;
    }
    let sum = consumer.await??;
    println!("condition: the consumer saw 3 items, sum {sum}");
    assert_eq!(sum, 6);
    Ok(())
}
// ANCHOR_END: condition

// ANCHOR: semaphore
async fn semaphore() -> Result<(), Error> {
    // At most two "downloads" at a time.
    let sem = Semaphore::new(2);
    let running = Rc::new(RefCell::new((0, 0))); // (now, peak)
    let jobs = (0..6).map(|_| {
        let (sem, running) = (sem.clone(), running.clone());
        async move {
            let _permit = sem.acquire().await;
            {
                let mut r = running.borrow_mut();
                r.0 += 1;
                r.1 = r.1.max(r.0);
            }
            sleep(0.001).await?;
            running.borrow_mut().0 -= 1;
            Ok::<_, Error>(())
        }
    });
    gather(jobs).await?;
    println!("semaphore: peak concurrency {}", running.borrow().1);
    assert_eq!(running.borrow().1, 2);

    // A BoundedSemaphore refuses a release that was not matched by an acquire.
    let bounded = BoundedSemaphore::new(1);
    let err = bounded.release().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    println!("bounded semaphore: {err}");
    Ok(())
}
// ANCHOR_END: semaphore

// ANCHOR: barrier
async fn barrier() -> Result<(), Error> {
    let barrier = Barrier::new(3)?;
    let arrivals = (0..3).map(|i| {
        let barrier = barrier.clone();
        async move {
            sleep(0.001 * i as f64).await?;
            barrier.wait().await // the arrival index
        }
    });
    let mut indices = gather(arrivals)
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    indices.sort();
    assert_eq!(indices, [0, 1, 2]);
    // abort() breaks it for everyone until reset().
    barrier.abort();
    let err = barrier.wait().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenBarrier);
    barrier.reset();
    println!("barrier: indices {indices:?}; after abort: {err}");
    Ok(())
}
// ANCHOR_END: barrier

// ANCHOR: threadsafe
fn across_threads() -> Result<(), Error> {
    use asyncio::locks::threadsafe;
    use asyncio::EventLoop;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // One cap of two "downloads" shared by two loops on two threads, and a start signal.
    let cap = threadsafe::Semaphore::new(2);
    let start = threadsafe::Event::new();
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0))); // (now, peak)
    let (a, thread_a) = EventLoop::spawn_thread()?;
    let (b, thread_b) = EventLoop::spawn_thread()?;
    let jobs = (0..6)
        .map(|i| {
            let (cap, start, running) = (cap.clone(), start.clone(), running.clone());
            let on = if i % 2 == 0 { &a } else { &b };
            // The closure is sent; the coroutine is built on the loop's thread (`sleep` is not
            // `Send`, the primitives are).
            on.run_coroutine_threadsafe_with(move || async move {
                start.wait().await;
                let _permit = cap.acquire().await;
                let now = running.0.fetch_add(1, Ordering::SeqCst) + 1;
                running.1.fetch_max(now, Ordering::SeqCst);
                sleep(0.001).await?;
                running.0.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Error>(i)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    start.set(); // from the main thread: wakes the waiters on both loops
    let done = jobs
        .into_iter()
        .map(|job| job.result(None)?)
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(done, [0, 1, 2, 3, 4, 5]);
    let peak = running.1.load(Ordering::SeqCst);
    assert!(peak <= 2);
    println!("threadsafe semaphore: 6 jobs on two loops, peak concurrency {peak}");
    for (handle, thread) in [(a, thread_a), (b, thread_b)] {
        handle.stop();
        thread.join().expect("loop thread")?;
    }
    Ok(())
}
// ANCHOR_END: threadsafe
