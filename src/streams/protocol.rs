//! The state a [`StreamReader`](super::StreamReader) and its
//! [`StreamWriter`](super::StreamWriter) share, and the [`Protocol`] that feeds it (asyncio's
//! `StreamReaderProtocol` with its `FlowControlMixin`).

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::protocols::{BaseProtocol, Protocol};
use crate::runtime::core::EventLoop;
use crate::transports::Transport;

/// A byte buffer read from the front: `data[start..]` is the unread part.
#[derive(Default)]
pub(crate) struct Buffer {
    data: Vec<u8>,
    start: usize,
}

impl Buffer {
    pub(crate) fn len(&self) -> usize {
        self.data.len() - self.start
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.data[self.start..]
    }

    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    /// Removes and returns the first `n` bytes (at most [`len`](Buffer::len)).
    /// When that is the whole buffer, and the buffer's allocation is not much larger, the
    /// buffer's own `Vec` is handed out instead of copied (the next `extend` allocates anew).
    pub(crate) fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.len());
        if self.start == 0 && n == self.data.len() && self.data.capacity() <= 2 * n {
            return std::mem::take(&mut self.data);
        }
        let out = self.data[self.start..self.start + n].to_vec();
        self.consume(n);
        out
    }

    /// Drops the first `n` bytes (at most [`len`](Buffer::len)).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 && self.start * 2 > self.data.len() {
            self.data.drain(..self.start);
            self.start = 0;
        }
    }

    pub(crate) fn take_all(&mut self) -> Vec<u8> {
        let n = self.len();
        self.take(n)
    }
}

/// The mutable part of [`Shared`].
#[derive(Default)]
pub(crate) struct State {
    pub(crate) buffer: Buffer,
    pub(crate) eof: bool,
    pub(crate) exception: Option<Error>,
    pub(crate) read_waker: Option<Waker>,
    pub(crate) transport: Option<Transport>,
    /// Reading is paused on the transport because the buffer is over twice the limit.
    pub(crate) reading_paused: bool,
    /// The transport asked the protocol to stop writing (`pause_writing`).
    pub(crate) write_paused: bool,
    pub(crate) drain_wakers: Vec<Waker>,
    pub(crate) connection_lost: bool,
    pub(crate) lost_exc: Option<Error>,
    pub(crate) closed_wakers: Vec<Waker>,
    /// The stream is a server's (for `StreamWriter::start_tls`).
    pub(crate) server_side: bool,
}

impl State {
    /// Ends the registration of the read polled with `waker`, left from an earlier wait: the
    /// read is being polled now and registers again only if it waits, so data that comes
    /// meanwhile (or that the read itself buffers) need not wake its task again.
    pub(crate) fn end_wait(&mut self, waker: &Waker) {
        if self.read_waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.read_waker = None;
        }
    }
}

/// What a reader, a writer and their protocol share. Loop-thread only.
pub(crate) struct Shared {
    pub(crate) lp: EventLoop,
    pub(crate) limit: usize,
    pub(crate) st: RefCell<State>,
}

fn push_waker(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

fn wake_all(list: Vec<Waker>) {
    for w in list {
        w.wake();
    }
}

impl Shared {
    pub(crate) fn new(lp: &EventLoop, limit: usize) -> Rc<Shared> {
        Rc::new(Shared {
            lp: lp.clone(),
            limit,
            st: RefCell::new(State::default()),
        })
    }

    /// The reader's stored exception, if any.
    pub(crate) fn exception(&self) -> Option<Error> {
        self.st.borrow().exception.clone()
    }

    /// asyncio's `feed_data`: buffers `data`, wakes the reader, pauses the transport when the
    /// buffer is over twice the limit.
    pub(crate) fn feed_data(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let (waker, pause) = {
            let mut st = self.st.borrow_mut();
            st.buffer.extend(data);
            let pause = if !st.reading_paused && st.buffer.len() > 2 * self.limit {
                st.reading_paused = true;
                st.transport.clone()
            } else {
                None
            };
            (st.read_waker.take(), pause)
        };
        if let Some(t) = pause {
            t.pause_reading();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// asyncio's `feed_eof`.
    pub(crate) fn feed_eof(&self) {
        let waker = {
            let mut st = self.st.borrow_mut();
            st.eof = true;
            st.read_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// asyncio's `set_exception`: later reads fail with `exc`.
    pub(crate) fn set_exception(&self, exc: Error) {
        let waker = {
            let mut st = self.st.borrow_mut();
            st.exception = Some(exc);
            st.read_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// asyncio's `_maybe_resume_transport`: resumes reading once the buffer is at or under
    /// the limit.
    pub(crate) fn maybe_resume(&self) {
        self.resume_reading_if(|st| st.buffer.len() <= self.limit);
    }

    /// Registers the reader's waker for more data (asyncio's `_wait_for_data`). Resumes a
    /// paused transport first: the caller needs more than the buffer holds.
    pub(crate) fn wait_for_data(&self, cx: &Context<'_>) {
        self.resume_reading_if(|st| {
            st.read_waker = Some(cx.waker().clone());
            true
        });
    }

    /// Resumes the paused transport when `cond` (run under the state borrow) says so; the
    /// transport is called after the borrow ends.
    fn resume_reading_if(&self, cond: impl FnOnce(&mut State) -> bool) {
        let resume = {
            let mut st = self.st.borrow_mut();
            if cond(&mut st) && st.reading_paused {
                st.reading_paused = false;
                st.transport.clone()
            } else {
                None
            }
        };
        if let Some(t) = resume {
            t.resume_reading();
        }
    }

    /// Ends one poll of a read: `Some(out)` is ready (and the transport resumes if the buffer
    /// is back under the limit), `None` waits for more data.
    pub(crate) fn ready_or_wait<T>(&self, out: Option<T>, cx: &Context<'_>) -> Poll<T> {
        match out {
            Some(out) => {
                // The read is over: its registration from an earlier wait ends too, and the
                // transport resumes if the buffer is back under the limit.
                self.resume_reading_if(|st| {
                    st.end_wait(cx.waker());
                    st.buffer.len() <= self.limit
                });
                Poll::Ready(out)
            }
            None => {
                self.wait_for_data(cx);
                Poll::Pending
            }
        }
    }

    /// asyncio's `_drain_helper`: ready unless the protocol is paused for writing; an error
    /// once the connection is lost.
    pub(crate) fn poll_drain(&self, cx: &Context<'_>) -> Poll<Result<()>> {
        let mut st = self.st.borrow_mut();
        if st.connection_lost {
            return Poll::Ready(Err(connection_lost_error()));
        }
        if !st.write_paused {
            return Poll::Ready(Ok(()));
        }
        push_waker(&mut st.drain_wakers, cx.waker());
        Poll::Pending
    }

    /// Ready once `connection_lost` ran, with its error if it had one.
    pub(crate) fn poll_closed(&self, cx: &Context<'_>) -> Poll<Result<()>> {
        let mut st = self.st.borrow_mut();
        if st.connection_lost {
            return Poll::Ready(match &st.lost_exc {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            });
        }
        push_waker(&mut st.closed_wakers, cx.waker());
        Poll::Pending
    }
}

impl Shared {
    /// The protocol's `connection_lost`: EOF or the error to the reader, and wakes `drain` and
    /// `wait_closed`.
    pub(crate) fn connection_lost(&self, exc: Option<Error>) {
        match &exc {
            None => self.feed_eof(),
            Some(e) => self.set_exception(e.clone()),
        }
        let (drain, closed) = {
            let mut st = self.st.borrow_mut();
            st.connection_lost = true;
            st.lost_exc = exc;
            st.write_paused = false;
            (
                std::mem::take(&mut st.drain_wakers),
                std::mem::take(&mut st.closed_wakers),
            )
        };
        wake_all(drain);
        wake_all(closed);
    }

    /// The protocol's `pause_writing`: `drain` waits from now on.
    pub(crate) fn pause_writing(&self) {
        self.st.borrow_mut().write_paused = true;
    }

    /// The protocol's `resume_writing`: wakes the waiting `drain`s.
    pub(crate) fn resume_writing(&self) {
        let wakers = {
            let mut st = self.st.borrow_mut();
            st.write_paused = false;
            std::mem::take(&mut st.drain_wakers)
        };
        wake_all(wakers);
    }
}

/// The error `drain` gives once the connection is lost (asyncio's
/// `ConnectionResetError('Connection lost')`).
pub(crate) fn connection_lost_error() -> Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "Connection lost").into()
}

/// What a server's protocol does on `connection_made`: build the reader and writer and start
/// the client task.
pub(crate) type OnConnect = Box<dyn FnOnce(Rc<Shared>, Transport)>;

/// asyncio's `StreamReaderProtocol`: feeds a [`Shared`] from the transport's callbacks and
/// tracks `pause_writing` / `resume_writing` for `drain`.
pub(crate) struct StreamReaderProtocol {
    shared: Rc<Shared>,
    on_connect: Option<OnConnect>,
}

impl StreamReaderProtocol {
    pub(crate) fn new(shared: Rc<Shared>, on_connect: Option<OnConnect>) -> Self {
        StreamReaderProtocol { shared, on_connect }
    }
}

impl BaseProtocol for StreamReaderProtocol {
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.shared.connection_lost(exc);
    }

    fn pause_writing(&mut self) {
        self.shared.pause_writing();
    }

    fn resume_writing(&mut self) {
        self.shared.resume_writing();
    }
}

impl Protocol for StreamReaderProtocol {
    fn connection_made(&mut self, transport: Transport) {
        {
            // Every byte of the transport comes to this stream's reader, which may read the
            // fd itself while its buffer is empty (one copy instead of three).
            transport.allow_read_direct();
            let mut st = self.shared.st.borrow_mut();
            st.transport = Some(transport.clone());
        }
        if let Some(cb) = self.on_connect.take() {
            cb(self.shared.clone(), transport);
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        self.shared.feed_data(data);
    }

    fn eof_received(&mut self) -> bool {
        self.shared.feed_eof();
        // Keep the transport half-open: the writer may still write (asyncio returns True
        // when not over SSL).
        true
    }
}
