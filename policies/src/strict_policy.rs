//! [`StrictEventLoopPolicy`]: a policy that never creates a loop implicitly (Python 3.14's
//! `get_event_loop`).

use std::fmt;
use std::sync::Arc;

use asyncio::{
    ChildWatcher, DefaultEventLoopPolicy, Error, ErrorKind, EventLoop, EventLoopPolicy,
    PolicyWrapper, Result,
};

/// A policy whose `get_event_loop` returns the loop set for this thread and never creates one,
/// on any thread, the main thread included: Python 3.14's behaviour, opt-in.
///
/// Without a loop set through [`set_event_loop`](asyncio::set_event_loop), `get_event_loop`
/// fails with [`ErrorKind::NoCurrentLoop`] and asyncio's message, "There is no current event
/// loop in thread 'MainThread'." (the thread's name elsewhere). Inside a running loop the module
/// function [`asyncio::get_event_loop`] still returns the running loop, as always. Everything
/// else (`set_event_loop`, `new_event_loop`, child watchers, executors) is the default
/// policy's.
///
/// Use it to find code that relies on implicit loop creation before it meets a stricter
/// runtime, or to make "which loop?" always an explicit decision: obtain loops with
/// [`asyncio::run`], [`asyncio::Runner`] or `new_event_loop` + `set_event_loop`.
///
/// ```
/// use asyncio::{EventLoopPolicy, ErrorKind};
/// use asyncio_policies::StrictEventLoopPolicy;
///
/// let policy = StrictEventLoopPolicy::new();
/// let err = policy.get_event_loop().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NoCurrentLoop);
/// assert!(err.to_string().starts_with("There is no current event loop in thread"));
///
/// let event_loop = policy.new_event_loop()?;
/// policy.set_event_loop(Some(event_loop.clone()))?;
/// assert!(policy.get_event_loop()?.ptr_eq(&event_loop));
/// policy.set_event_loop(None)?;
/// event_loop.close()?;
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct StrictEventLoopPolicy {
    base: DefaultEventLoopPolicy,
}

impl StrictEventLoopPolicy {
    /// A strict policy over a fresh [`DefaultEventLoopPolicy`].
    pub fn new() -> Self {
        Self::with_base(DefaultEventLoopPolicy::new())
    }

    /// A strict policy over `base` (for example one made with
    /// [`DefaultEventLoopPolicy::with_executor`]).
    pub fn with_base(base: DefaultEventLoopPolicy) -> Self {
        StrictEventLoopPolicy { base }
    }
}

impl Default for StrictEventLoopPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StrictEventLoopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrictEventLoopPolicy")
            .field("base", &self.base)
            .finish()
    }
}

impl PolicyWrapper for StrictEventLoopPolicy {
    fn base(&self) -> &DefaultEventLoopPolicy {
        &self.base
    }

    fn get_event_loop(&self) -> Result<EventLoop> {
        // The default returns this thread's loop when one is set, and otherwise asks its `this`
        // policy for a new loop only on the main thread before any `set_event_loop`: the one
        // case where it would create one. `NeverCreate` turns exactly that case into the error.
        self.base.get_event_loop_with(&NeverCreate)
    }
}

/// The "outermost policy" handed to the default `get_event_loop` by
/// [`StrictEventLoopPolicy`]: its `new_event_loop` refuses, so the default cannot create a loop.
struct NeverCreate;

fn no_current_loop() -> Error {
    let thread = if asyncio::unix::is_main_thread() {
        "MainThread".to_owned()
    } else {
        let current = std::thread::current();
        match current.name() {
            Some(name) => name.to_owned(),
            None => format!("{:?}", current.id()),
        }
    };
    Error::new(
        ErrorKind::NoCurrentLoop,
        format!("There is no current event loop in thread '{thread}'."),
    )
}

impl EventLoopPolicy for NeverCreate {
    fn get_event_loop(&self) -> Result<EventLoop> {
        Err(no_current_loop())
    }
    fn set_event_loop(&self, _event_loop: Option<EventLoop>) -> Result<()> {
        Err(no_current_loop())
    }
    fn new_event_loop(&self) -> Result<EventLoop> {
        Err(no_current_loop())
    }
    fn get_child_watcher(&self) -> Result<Arc<dyn ChildWatcher>> {
        Err(Error::new(
            ErrorKind::NotSupported,
            "internal policy has no child watcher",
        ))
    }
    fn set_child_watcher(&self, _watcher: Option<Arc<dyn ChildWatcher>>) -> Result<()> {
        Err(Error::new(
            ErrorKind::NotSupported,
            "internal policy has no child watcher",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_internal_policy_refuses_everything() {
        assert_eq!(
            NeverCreate.new_event_loop().unwrap_err().kind(),
            ErrorKind::NoCurrentLoop
        );
        assert_eq!(
            NeverCreate.get_event_loop().unwrap_err().kind(),
            ErrorKind::NoCurrentLoop
        );
        assert!(NeverCreate.set_event_loop(None).is_err());
        assert_eq!(
            NeverCreate.get_child_watcher().err().map(|e| e.kind()),
            Some(ErrorKind::NotSupported)
        );
        assert!(NeverCreate.set_child_watcher(None).is_err());
    }

    #[test]
    fn the_message_names_the_thread() {
        let msg = std::thread::Builder::new()
            .name("named".into())
            .spawn(|| no_current_loop().to_string())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(msg, "There is no current event loop in thread 'named'.");
    }
}
