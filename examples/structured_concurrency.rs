//! Structured concurrency: `task_group` (asyncio's `TaskGroup`), `gather!` over different
//! types, `gather_tasks` under a timeout, `return_exceptions`, `as_completed` and `to_thread`.
//!
//! ```text
//! cargo run --example structured_concurrency
//! ```
//!
//! Each part asserts what it shows, so the example fails if the behaviour changes.

use asyncio::{get_running_loop, sleep, task_group, Error, ErrorKind, ExceptionGroup};

fn main() -> Result<(), Error> {
    asyncio::run(async {
        group().await?;
        group_failure().await?;
        gathering().await?;
        completion().await?;
        threads().await?;
        Ok(())
    })?
}

// ANCHOR: group
async fn group() -> Result<(), Error> {
    // async with asyncio.TaskGroup() as tg: ...
    let (a, b) = task_group(|tg| async move {
        let a = tg.create_task(async {
            sleep(0.002).await?;
            Ok("slow")
        })?;
        let b = tg.create_task(async { Ok("fast") })?;
        Ok((a, b))
    })
    .await?;
    // The block ends only when every child has.
    println!("task group: {} and {}", a.result()??, b.result()??);
    Ok(())
}
// ANCHOR_END: group

// ANCHOR: group_failure
async fn group_failure() -> Result<(), Error> {
    let err = task_group(|tg| async move {
        tg.create_task(async {
            sleep(3600.0).await?; // cancelled when its sibling fails
            Ok(())
        })?;
        tg.create_task(async {
            sleep(0.001).await?;
            Err::<(), _>(Error::new(ErrorKind::InvalidArgument, "bad input"))
        })?;
        Ok(())
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExceptionGroup);
    // except* InvalidArgument: the individual errors are in the group.
    let errors = ExceptionGroup::of(&err)
        .map(|g| g.errors().to_vec())
        .unwrap_or_default();
    println!("task group failed: {err}: {errors:?}");
    assert_eq!(errors.len(), 1);
    Ok(())
}
// ANCHOR_END: group_failure

// ANCHOR: gathering
async fn gathering() -> Result<(), Error> {
    // Different output types: a tuple, as futures::join! gives.
    let (n, text) = asyncio::gather!(async { 42 }, async { "text" }).await?;
    assert_eq!((n, text), (42, "text"));

    // wait_for(gather(*tasks), t): the tasks themselves are cancelled on timeout.
    let lp = get_running_loop()?;
    let tasks = (0..3)
        .map(|_| lp.create_task(sleep(3600.0)))
        .collect::<Result<Vec<_>, _>>()?;
    let probes: Vec<_> = tasks.iter().map(|t| t.as_task_ref()).collect();
    let err = asyncio::wait_for(asyncio::gather_tasks(tasks), 0.001)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    sleep(0.0).await?; // their cancelled last step
    assert!(probes.iter().all(|t| t.cancelled()));

    // return_exceptions=True: every outcome, errors (cancelled, panicked) in place.
    let tasks = (0..3)
        .map(|i| lp.create_task(async move { i }))
        .collect::<Result<Vec<_>, _>>()?;
    tasks[1].cancel();
    let outcomes = asyncio::gather_tasks(tasks).return_exceptions().await?;
    let kinds: Vec<_> = outcomes
        .iter()
        .map(|r| r.as_ref().err().map(Error::kind))
        .collect();
    assert_eq!(kinds, [None, Some(ErrorKind::Cancelled), None]);
    println!("gather!: ({n}, {text:?}); return_exceptions: {kinds:?}");
    Ok(())
}
// ANCHOR_END: gathering

// ANCHOR: completion
async fn completion() -> Result<(), Error> {
    let mut done = asyncio::as_completed(
        [3u32, 1, 2].map(|ms| async move {
            sleep(0.001 * ms as f64).await?;
            Ok::<_, Error>(ms)
        }),
        Some(1.0),
    );
    let mut order = Vec::new();
    while let Some(outcome) = done.next().await {
        order.push(outcome??);
    }
    println!("as_completed: {order:?}");
    assert_eq!(order, [1, 2, 3]);
    Ok(())
}
// ANCHOR_END: completion

// ANCHOR: threads
async fn threads() -> Result<(), Error> {
    // await asyncio.to_thread(blocking): the loop keeps running meanwhile.
    let digest = asyncio::to_thread(|| {
        std::thread::sleep(std::time::Duration::from_millis(2));
        (1..=100u64).fold(1u64, |acc, n| acc.wrapping_mul(n).wrapping_add(31))
    })
    .await?;
    println!("to_thread: {digest:#x}");
    Ok(())
}
// ANCHOR_END: threads
