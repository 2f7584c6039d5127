//! Errors and the exception handler: matching on `ErrorKind`, and catching what nobody awaits
//! (a panicking callback, a task's panic that was never retrieved, a task destroyed while pending)
//! with a custom exception handler.
//!
//! ```text
//! cargo run --example errors
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use asyncio::{Error, ErrorKind, EventLoop, ExceptionContext, ExceptionHandler};

fn main() -> Result<(), Error> {
    kinds()?;
    handler()?;
    Ok(())
}

// ANCHOR: kinds
fn kinds() -> Result<(), Error> {
    let event_loop = EventLoop::new()?;

    // Bad arguments are errors, not panics.
    let err = event_loop.call_later(f64::NAN, || ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    println!("call_later(NaN): {:?}: {err}", err.kind());

    // Running a loop from inside itself is refused.
    let lp = event_loop.clone();
    let inner = event_loop.run_until_complete(async move { lp.run_until_complete(async {}) })?;
    let err = inner.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    println!("nested run: {:?}: {err}", err.kind());

    // Every operation on a closed loop is ErrorKind::Closed, with CPython's message.
    event_loop.close()?;
    let err = event_loop.call_soon(|| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    println!("closed loop: {:?}: {err}", err.kind());
    Ok(())
}
// ANCHOR_END: kinds

// ANCHOR: handler
fn handler() -> Result<(), Error> {
    // The loop catches panics, but Rust's panic hook still prints them; keep this output short.
    std::panic::set_hook(Box::new(|_| {}));

    let event_loop = EventLoop::new()?;
    let seen: Rc<RefCell<Vec<ExceptionContext>>> = Rc::default();
    let s = seen.clone();
    let handler: ExceptionHandler = Rc::new(move |_lp, context| {
        s.borrow_mut().push(context.clone());
    });
    event_loop.set_exception_handler(Some(handler));

    // 1. A callback panics: the loop reports it and goes on.
    event_loop.call_soon(|| panic!("boom in a callback"))?;
    // 2. A detached task panics: nobody can await it, so the handler hears of it.
    drop(event_loop.create_task(async { panic!("boom in a task") })?);
    // 3. A task still pending when the loop closes is dropped, and reported.
    drop(event_loop.create_task(asyncio::sleep(3600.0))?);

    event_loop.run_until_complete(asyncio::sleep(0.01))??;
    event_loop.close()?;
    let _ = std::panic::take_hook();

    for context in seen.borrow().iter() {
        let kind = context.exception.as_ref().map(Error::kind);
        println!("exception handler: {:?} ({kind:?})", context.message);
    }
    let messages: Vec<_> = seen.borrow().iter().map(|c| c.message.clone()).collect();
    assert!(messages[0].starts_with("Exception in callback"));
    assert_eq!(messages[1], "Task exception was never retrieved");
    assert_eq!(messages[2], "Task was destroyed but it is pending!");

    // The default handler writes `render()` to the `log` target "asyncio" (stderr without a
    // logger). Here it is, for the first context:
    println!("--- rendered ---\n{}", seen.borrow()[0].render());
    Ok(())
}
// ANCHOR_END: handler
