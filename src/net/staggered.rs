//! Happy Eyeballs (RFC 8305) as asyncio does it: `staggered_race` over connection attempts, and
//! the interleaving of resolved addresses by family.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::error::{Error, Result};
use crate::net::AddrInfo;
use crate::task::{sleep, Sleep};

/// One boxed connection attempt.
pub(crate) type Attempt<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

/// Runs `attempts` with staggered starts: the first at once; each next one when the previous
/// failed or `delay` seconds after the previous started, whichever comes first. The first
/// success wins and the attempts still running are dropped (cancelled). Returns every failure
/// when all fail.
///
/// # Errors
/// The errors of all attempts, in start order (the caller combines them).
pub(crate) async fn staggered_race<'a, T, F>(
    attempts: Vec<F>,
    delay: f64,
) -> std::result::Result<T, Vec<Error>>
where
    F: FnOnce() -> Attempt<'a, T>,
{
    let mut queue = attempts.into_iter();
    let mut running: Vec<Attempt<'a, T>> = Vec::new();
    let mut errors = Vec::new();
    let mut timer: Option<Sleep> = None;
    let mut start_next = true;
    std::future::poll_fn(|cx| loop {
        if start_next {
            start_next = false;
            if let Some(make) = queue.next() {
                running.push(make());
                timer = Some(sleep(delay));
            }
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].as_mut().poll(cx) {
                Poll::Ready(Ok(v)) => return Poll::Ready(Ok(v)),
                Poll::Ready(Err(e)) => {
                    errors.push(e);
                    drop(running.remove(i));
                    // A failure starts the next attempt at once.
                    start_next = true;
                }
                Poll::Pending => i += 1,
            }
        }
        if start_next && queue.len() > 0 {
            continue;
        }
        start_next = false;
        if running.is_empty() && queue.len() == 0 {
            return Poll::Ready(Err(std::mem::take(&mut errors)));
        }
        if queue.len() > 0 {
            if let Some(t) = timer.as_mut() {
                match Pin::new(t).poll(cx) {
                    Poll::Ready(Ok(())) => {
                        start_next = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) => {
                        // No running loop or a NaN delay: fall back to one at a time.
                        errors.push(e);
                        timer = None;
                    }
                    Poll::Pending => {}
                }
            }
        }
        return Poll::Pending;
    })
    .await
}

/// asyncio's `_interleave_addrinfos`: group by family in first-seen order, put
/// `first_family_count` addresses of the first family first, then alternate one per family.
pub(crate) fn interleave(infos: Vec<AddrInfo>, first_family_count: usize) -> Vec<AddrInfo> {
    let mut groups: Vec<(i32, std::collections::VecDeque<AddrInfo>)> = Vec::new();
    for info in infos {
        match groups.iter_mut().find(|(f, _)| *f == info.family) {
            Some((_, g)) => g.push_back(info),
            None => groups.push((info.family, std::collections::VecDeque::from([info]))),
        }
    }
    let mut out = Vec::new();
    if let Some((_, first)) = groups.first_mut() {
        for _ in 0..first_family_count.saturating_sub(1) {
            match first.pop_front() {
                Some(i) => out.push(i),
                None => break,
            }
        }
    }
    loop {
        let mut any = false;
        for (_, g) in groups.iter_mut() {
            if let Some(i) = g.pop_front() {
                out.push(i);
                any = true;
            }
        }
        if !any {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::{EventLoop, VirtualClock};
    use std::cell::RefCell;
    use std::rc::Rc;

    fn virtual_loop() -> (EventLoop, VirtualClock) {
        let clock = VirtualClock::new();
        let lp = EventLoop::builder()
            .clock(Rc::new(clock.clone()))
            .build()
            .unwrap();
        (lp, clock)
    }

    /// An attempt that logs its start (with the virtual time) and its drop, and then does what
    /// `outcome` says: `None` hangs forever, `Some(Ok(v))` succeeds after `after` seconds,
    /// `Some(Err(()))` fails after `after` seconds.
    fn attempt(
        log: &Rc<RefCell<Vec<String>>>,
        clock: &VirtualClock,
        name: &'static str,
        after: f64,
        outcome: Option<std::result::Result<u32, ()>>,
    ) -> impl FnOnce() -> Attempt<'static, u32> {
        let (log, clock) = (log.clone(), clock.clone());
        move || {
            log.borrow_mut()
                .push(format!("start {name} at {}", clock.now()));
            struct OnDrop(Rc<RefCell<Vec<String>>>, &'static str);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    self.0.borrow_mut().push(format!("drop {}", self.1));
                }
            }
            let guard = OnDrop(log, name);
            Box::pin(async move {
                let _guard = guard;
                sleep(after).await?;
                match outcome {
                    None => std::future::pending().await,
                    Some(Ok(v)) => Ok(v),
                    Some(Err(())) => Err(Error::new(ErrorKind::Io, name)),
                }
            })
        }
    }

    #[test]
    fn a_hanging_attempt_is_overtaken_after_the_delay_and_then_cancelled() {
        let (lp, clock) = virtual_loop();
        let log = Rc::new(RefCell::new(Vec::new()));
        let attempts = vec![
            attempt(&log, &clock, "a", 0.0, None),
            attempt(&log, &clock, "b", 0.1, Some(Ok(2))),
            attempt(&log, &clock, "c", 0.0, Some(Ok(3))),
        ];
        let out = lp
            .run_until_complete(staggered_race(attempts, 0.25))
            .unwrap();
        assert_eq!(out.ok(), Some(2));
        assert_eq!(
            *log.borrow(),
            ["start a at 0", "start b at 0.25", "drop b", "drop a"]
        );
        assert!((clock.now() - 0.35).abs() < 1e-9);
        lp.close().unwrap();
    }

    #[test]
    fn a_failure_starts_the_next_attempt_at_once_and_all_errors_are_kept() {
        let (lp, clock) = virtual_loop();
        let log = Rc::new(RefCell::new(Vec::new()));
        let attempts = vec![
            attempt(&log, &clock, "a", 0.01, Some(Err(()))),
            attempt(&log, &clock, "b", 0.02, Some(Err(()))),
        ];
        let errors = lp
            .run_until_complete(staggered_race(attempts, 10.0))
            .unwrap()
            .unwrap_err();
        let names: Vec<_> = errors.iter().map(|e| e.message().to_owned()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            *log.borrow(),
            ["start a at 0", "drop a", "start b at 0.01", "drop b"]
        );
        lp.close().unwrap();
    }

    fn info(family: i32, port: u16) -> AddrInfo {
        AddrInfo {
            family,
            socktype: libc::SOCK_STREAM,
            protocol: 0,
            canonname: None,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    #[test]
    fn addresses_interleave_by_family() {
        let (v4, v6) = (libc::AF_INET, libc::AF_INET6);
        let infos = vec![
            info(v6, 1),
            info(v6, 2),
            info(v6, 3),
            info(v4, 4),
            info(v4, 5),
        ];
        let ports = |v: Vec<AddrInfo>| v.iter().map(|i| i.addr.port()).collect::<Vec<_>>();
        assert_eq!(ports(interleave(infos.clone(), 1)), [1, 4, 2, 5, 3]);
        assert_eq!(ports(interleave(infos.clone(), 2)), [1, 2, 4, 3, 5]);
        assert_eq!(ports(interleave(Vec::new(), 1)), Vec::<u16>::new());
    }
}
