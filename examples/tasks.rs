//! Tasks and futures: `create_task`, detaching by dropping the handle, cancellation as `Drop`,
//! `LoopFuture`, and the helpers `wait_for`, `shield` and `wait`.
//!
//! ```text
//! cargo run --example tasks
//! ```
//!
//! Each part asserts what it shows, so the example fails if the behaviour changes.

use std::cell::Cell;
use std::rc::Rc;

use asyncio::{get_running_loop, sleep, Error, ErrorKind, ReturnWhen};

fn main() -> Result<(), Error> {
    asyncio::run(async {
        tasks().await?;
        detached().await?;
        cancellation().await?;
        futures().await?;
        helpers().await?;
        Ok(())
    })?
}

// ANCHOR: tasks
async fn tasks() -> Result<(), Error> {
    let lp = get_running_loop()?;
    let task = lp.create_task(async {
        sleep(0.01).await?;
        Ok::<_, Error>(6 * 7)
    })?;
    task.set_name("answer");
    assert!(!task.done());
    // Awaiting a Task gives Result<T, Error>; here T is itself a Result.
    let answer = task.await??;
    println!("task 'answer' returned {answer}");
    assert_eq!(answer, 42);
    Ok(())
}
// ANCHOR_END: tasks

// ANCHOR: detached
async fn detached() -> Result<(), Error> {
    let lp = get_running_loop()?;
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    // The handle is dropped at once: the task is detached, not cancelled.
    drop(lp.create_task(async move {
        sleep(0.01).await.ok();
        r.set(true);
    })?);
    sleep(0.02).await?;
    println!("a detached task still ran: {}", ran.get());
    assert!(ran.get());
    Ok(())
}
// ANCHOR_END: detached

// ANCHOR: cancellation
/// Set when dropped: stands for the `finally:` block of a Python coroutine.
struct Finally(Rc<Cell<bool>>);

impl Drop for Finally {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

async fn cancellation() -> Result<(), Error> {
    let lp = get_running_loop()?;
    let cleaned_up = Rc::new(Cell::new(false));
    let guard = Finally(cleaned_up.clone());
    let task = lp.create_task(async move {
        let _guard = guard;
        sleep(3600.0).await?;
        Ok::<_, Error>("finished")
    })?;
    sleep(0.0).await?; // let the task start
    assert!(task.cancel()); // a request: the future is dropped at the task's next step
    assert!(!cleaned_up.get());
    let outcome = task.await;
    assert!(cleaned_up.get());
    let err = outcome.expect_err("the task was cancelled");
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    println!(
        "cancelled task: Drop ran, awaiting it gave {:?}",
        err.kind()
    );
    Ok(())
}
// ANCHOR_END: cancellation

// ANCHOR: futures
async fn futures() -> Result<(), Error> {
    let lp = get_running_loop()?;
    let fut = lp.create_future::<String>();
    // Done callbacks are scheduled with call_soon when the result is set, never called inline.
    fut.add_done_callback(|f| println!("done callback sees {:?}", f.result()))?;
    let setter = fut.clone();
    lp.call_later(0.01, move || {
        let _ = setter.set_result("set by a timer".to_owned());
    })?;
    let value = fut.clone().await?;
    println!("future resolved to {value:?}");
    // A second result is refused.
    let again = fut.set_result("again".to_owned()).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::InvalidState);
    sleep(0.0).await?; // let the done callback run
    Ok(())
}
// ANCHOR_END: futures

// ANCHOR: helpers
async fn helpers() -> Result<(), Error> {
    let lp = get_running_loop()?;

    // wait_for: Python's argument order; the future is dropped when time runs out.
    let err = asyncio::wait_for(sleep(10.0), 0.01).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);

    // Python's wait_for(task, t) cancels the task on timeout; a plain Task handle would only be
    // detached when dropped, so wrap it in cancel_on_drop().
    let task = lp.create_task(sleep(10.0))?;
    let probe = task.as_task_ref();
    let err = asyncio::wait_for(task.cancel_on_drop(), 0.01)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    sleep(0.0).await?; // the cancelled task takes its last step
    assert!(probe.cancelled());
    println!("wait_for(task.cancel_on_drop(), t): the task was cancelled on timeout");

    // shield: the work runs as its own task, so a timeout around it does not stop it.
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    let shielded = asyncio::shield(async move {
        sleep(0.02).await.ok();
        f.set(true);
    });
    let err = asyncio::timeout(0.01, shielded).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    sleep(0.02).await?;
    assert!(finished.get());
    println!("shield: the timeout fired, the shielded work still finished");

    // wait: split tasks into (done, pending) without cancelling anything.
    let fast = lp.create_task(sleep(0.01))?;
    let slow = lp.create_task(sleep(0.05))?;
    let (done, pending) = asyncio::wait(vec![fast, slow], ReturnWhen::FirstCompleted, None).await?;
    println!(
        "wait(FIRST_COMPLETED): {} done, {} pending",
        done.len(),
        pending.len()
    );
    assert_eq!((done.len(), pending.len()), (1, 1));
    for task in pending {
        task.cancel();
    }
    Ok(())
}
// ANCHOR_END: helpers
