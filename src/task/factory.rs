//! The task factory (`loop.set_task_factory`): a hook every `create_task` goes through.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::runtime::core::EventLoop;

/// A task's future with its output type erased: what a [`TaskFactory`] receives and returns.
pub type TaskBody = Pin<Box<dyn Future<Output = ()>>>;

/// asyncio's task factory: called by every [`EventLoop::create_task`] (and so by `gather`,
/// `TaskGroup`, ...) with the loop and the task's future, it returns the future the task runs.
///
/// Python's factory builds the `Task` object itself; in Rust a task's type follows its
/// future's, so the factory decorates the future instead: wrap it (to time or trace each
/// step, to count tasks, to run code before and after), then return it. The future it returns
/// must run `body` to completion, or the task ends with
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked).
pub type TaskFactory = Rc<dyn Fn(&EventLoop, TaskBody) -> TaskBody>;

impl EventLoop {
    /// Installs `factory` for the tasks created from now on (`None`: the default, plain tasks).
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// let event_loop = asyncio::EventLoop::new()?;
    /// let created = Rc::new(Cell::new(0));
    /// let c = created.clone();
    /// event_loop.set_task_factory(Some(Rc::new(move |_lp: &asyncio::EventLoop, body| {
    ///     c.set(c.get() + 1);
    ///     body // run as it is
    /// })));
    /// let task = event_loop.create_task(async { 5 })?;
    /// assert_eq!(event_loop.run_until_complete(task)??, 5);
    /// // The task, and the one run_until_complete wraps around it (asyncio's ensure_future).
    /// assert_eq!(created.get(), 2);
    /// assert!(event_loop.get_task_factory().is_some());
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn set_task_factory(&self, factory: Option<TaskFactory>) {
        *self.inner.task_factory.borrow_mut() = factory;
    }

    /// The factory installed with [`set_task_factory`](EventLoop::set_task_factory), if any.
    pub fn get_task_factory(&self) -> Option<TaskFactory> {
        self.inner.task_factory.borrow().clone()
    }
}

/// Runs `future` through `factory`: the erased body stores the output where the task's own
/// future picks it up.
pub(crate) fn through_factory<F: Future + 'static>(
    lp: &EventLoop,
    factory: &TaskFactory,
    future: F,
) -> FactoryFuture<F::Output> {
    let slot: Rc<RefCell<Option<F::Output>>> = Rc::new(RefCell::new(None));
    let out = slot.clone();
    let body: TaskBody = Box::pin(async move {
        let v = future.await;
        *out.borrow_mut() = Some(v);
    });
    FactoryFuture {
        body: factory(lp, body),
        slot,
    }
}

/// The future of a task made through a factory.
pub(crate) struct FactoryFuture<T> {
    body: TaskBody,
    slot: Rc<RefCell<Option<T>>>,
}

impl<T> Future for FactoryFuture<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.body.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => match self.slot.borrow_mut().take() {
                Some(v) => Poll::Ready(v),
                // Caught by the task and reported as its `Panicked` error, like any failure of
                // user code.
                None => panic!("the task factory's future ended without running the task's future"),
            },
        }
    }
}
