//! asyncio's queues: a producer/consumer pipeline with `Queue`, `task_done`/`join` and
//! `shutdown`, plus `PriorityQueue` and `LifoQueue`.
//!
//! ```text
//! cargo run --example queues
//! ```
//!
//! Each part asserts what it shows, so the example fails if the behaviour changes.

use asyncio::queues::{LifoQueue, PriorityQueue, Queue};
use asyncio::{get_running_loop, sleep, Error, ErrorKind};

fn main() -> Result<(), Error> {
    asyncio::run(async {
        pipeline().await?;
        orders().await?;
        Ok(())
    })?
}

// ANCHOR: pipeline
async fn pipeline() -> Result<(), Error> {
    let lp = get_running_loop()?;
    // A bounded queue: the producer waits when the workers fall behind.
    let queue: Queue<u64> = Queue::new(4);
    let workers: Vec<_> = (0..3)
        .map(|id| {
            let queue = queue.clone();
            lp.create_task(async move {
                let mut done = 0;
                // get() fails with QueueShutDown once the queue is shut down and empty.
                while let Ok(n) = queue.get().await {
                    sleep(0.0001 * n as f64).await?;
                    done += 1;
                    queue.task_done()?;
                }
                println!("worker {id} handled {done} items");
                Ok::<_, Error>(done)
            })
        })
        .collect::<Result<_, _>>()?;
    for n in 0..30 {
        queue.put(n % 5).await?;
    }
    queue.join().await; // every item was marked task_done()
    queue.shutdown(false);
    let handled: u32 = asyncio::gather_tasks(workers)
        .await?
        .into_iter()
        .sum::<Result<u32, Error>>()?;
    assert_eq!(handled, 30);
    let err = queue.put_nowait(1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QueueShutDown);
    Ok(())
}
// ANCHOR_END: pipeline

// ANCHOR: orders
async fn orders() -> Result<(), Error> {
    let jobs: PriorityQueue<(u8, &str)> = PriorityQueue::new(0);
    jobs.put_nowait((2, "write the report"))?;
    jobs.put_nowait((1, "fix the build"))?;
    jobs.put_nowait((3, "lunch"))?;
    assert_eq!(jobs.get().await?, (1, "fix the build"));

    let stack: LifoQueue<&str> = LifoQueue::new(2);
    stack.put("first").await?;
    stack.put("second").await?;
    assert!(stack.full());
    assert_eq!(
        stack.put_nowait("third").unwrap_err().kind(),
        ErrorKind::QueueFull
    );
    assert_eq!(stack.get_nowait()?, "second");
    println!("priority and LIFO orders as in Python");
    Ok(())
}
// ANCHOR_END: orders
