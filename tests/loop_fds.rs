//! Watching file descriptors (spec R33-R34): `add_reader`/`add_writer` callbacks go through the
//! ready queue (so they obey the per-iteration snapshot and see cancellation), one reader and one
//! writer per fd (a second add replaces and cancels the first), `remove_*` answers whether it
//! removed something, and bad descriptors are errors, never panics.

mod loop_support;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use asyncio::{ErrorKind, EventLoop, Handle};
use loop_support::{
    run_once, run_while, strs, virtual_loop, wait_running, watchdog, CountingSelector, DropCounter,
    Recorder,
};

fn pair_with_data() -> (UnixStream, UnixStream) {
    let (a, mut b) = UnixStream::pair().unwrap();
    b.write_all(b"x").unwrap();
    (a, b)
}

/// A call counter and a callback that increments it.
fn counter() -> (Rc<Cell<u32>>, impl FnMut() + 'static) {
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    (calls, move || c.set(c.get() + 1))
}

/// Runs `lp` until another thread stops it, about 50 ms after the loop started running.
fn run_for_a_while(lp: &EventLoop) {
    run_while(lp, |handle| {
        wait_running(&handle);
        std::thread::sleep(Duration::from_millis(50));
        handle.stop();
    });
}

#[test]
fn a_ready_reader_is_queued_behind_callbacks_already_ready() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let rec = Recorder::new();
        let (a, _b) = pair_with_data();
        let fd = a.as_raw_fd();
        let (l, r) = (lp.clone(), rec.clone());
        lp.add_reader(fd, move || {
            r.push(format!("reader@{}", l.iteration_count()));
            l.remove_reader(fd).unwrap();
        })
        .unwrap();
        let (l, r) = (lp.clone(), rec.clone());
        lp.call_soon(move || {
            r.push(format!("soon@{}", l.iteration_count()));
            let (l2, r2) = (l.clone(), r.clone());
            l.call_soon(move || r2.push(format!("scheduled@{}", l2.iteration_count())))
                .unwrap();
        })
        .unwrap();
        let start = lp.iteration_count();
        lp.run_until_complete(async {}).unwrap();
        assert_eq!(
            rec.get(),
            vec![
                format!("soon@{}", start + 1),
                format!("reader@{}", start + 1),
                format!("scheduled@{}", start + 2),
            ]
        );
        lp.close().unwrap();
    });
}

#[test]
fn a_reader_removed_earlier_in_its_batch_does_not_run() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (a, _b) = pair_with_data();
        let fd = a.as_raw_fd();
        let (called, count) = counter();
        let h = lp.add_reader(fd, count).unwrap();
        // Ready before the poll, so it runs before the reader in the same batch.
        let l = lp.clone();
        let removed = Rc::new(Cell::new(false));
        let rm = removed.clone();
        lp.call_soon(move || rm.set(l.remove_reader(fd).unwrap()))
            .unwrap();
        run_once(&lp);
        assert!(removed.get());
        assert_eq!(called.get(), 0);
        assert!(h.cancelled());
        lp.close().unwrap();
    });
}

#[test]
fn readers_are_level_triggered() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"abc").unwrap();
        let fd = a.as_raw_fd();
        let got = Rc::new(RefCell::new(Vec::new()));
        let (l, g) = (lp.clone(), got.clone());
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        lp.add_reader(fd, move || {
            c.set(c.get() + 1);
            // Read one byte per call: the fd stays readable until drained.
            let mut byte = [0u8; 1];
            a.read_exact(&mut byte).unwrap();
            g.borrow_mut().push(byte[0]);
            if g.borrow().len() == 3 {
                l.remove_reader(fd).unwrap();
                l.stop();
            }
        })
        .unwrap();
        let start = lp.iteration_count();
        lp.run_forever().unwrap();
        assert_eq!(&*got.borrow(), b"abc");
        assert_eq!(calls.get(), 3);
        assert_eq!(lp.iteration_count(), start + 3);
        drop(b);
        lp.close().unwrap();
    });
}

#[test]
fn a_second_add_reader_replaces_and_cancels_the_first() {
    // R33: one reader per fd.
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (a, _b) = pair_with_data();
        let fd = a.as_raw_fd();
        let rec = Recorder::new();
        let drops = DropCounter::new();
        let (r, t) = (rec.clone(), drops.token());
        let first = lp
            .add_reader(fd, move || {
                let _t = &t;
                r.push("first");
            })
            .unwrap();
        let (l, r) = (lp.clone(), rec.clone());
        let second = lp
            .add_reader(fd, move || {
                r.push("second");
                l.stop();
            })
            .unwrap();
        assert!(first.cancelled());
        assert!(!second.cancelled());
        // The replaced closure was dropped at once.
        assert_eq!(drops.dropped(), 1);
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["second"]));
        assert!(lp.remove_reader(fd).unwrap());
        assert!(second.cancelled());
        assert!(!lp.remove_reader(fd).unwrap());
        assert!(!lp.remove_reader(fd).unwrap());
        lp.close().unwrap();
    });
}

#[test]
fn writers_fire_when_writable_and_replace_like_readers() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (a, mut b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let rec = Recorder::new();
        let r = rec.clone();
        let first = lp.add_writer(fd, move || r.push("first")).unwrap();
        let (l, r, mut w) = (lp.clone(), rec.clone(), a);
        let second = lp
            .add_writer(fd, move || {
                r.push("second");
                w.write_all(b"hi").unwrap();
                assert!(l.remove_writer(fd).unwrap());
                l.stop();
            })
            .unwrap();
        assert!(first.cancelled());
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["second"]));
        assert!(second.cancelled());
        assert!(!lp.remove_writer(fd).unwrap());
        let mut buf = [0u8; 2];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        lp.close().unwrap();
    });
}

#[test]
fn reader_and_writer_on_one_fd_are_independent() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (a, _b) = pair_with_data();
        let fd = a.as_raw_fd();
        let (reads, count_read) = counter();
        let (writes, count_write) = counter();
        let r = reads.clone();
        lp.add_reader(fd, count_read).unwrap();
        lp.add_writer(fd, count_write).unwrap();
        run_once(&lp);
        assert_eq!((reads.get(), writes.get()), (1, 1));
        // Removing the reader keeps the writer.
        assert!(lp.remove_reader(fd).unwrap());
        assert!(!lp.remove_reader(fd).unwrap());
        run_once(&lp);
        assert_eq!((reads.get(), writes.get()), (1, 2));
        // And the other way round.
        lp.add_reader(fd, move || r.set(r.get() + 1)).unwrap();
        assert!(lp.remove_writer(fd).unwrap());
        assert!(!lp.remove_writer(fd).unwrap());
        run_once(&lp);
        assert_eq!((reads.get(), writes.get()), (2, 2));
        assert!(lp.remove_reader(fd).unwrap());
        // Nothing left: the loop no longer polls the fd.
        run_once(&lp);
        assert_eq!((reads.get(), writes.get()), (2, 2));
        lp.close().unwrap();
    });
}

#[test]
fn a_peer_hangup_makes_the_reader_ready() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (mut a, b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let eof = Rc::new(Cell::new(false));
        let (l, e) = (lp.clone(), eof.clone());
        lp.add_reader(fd, move || {
            let mut buf = [0u8; 8];
            e.set(a.read(&mut buf).unwrap() == 0);
            l.remove_reader(fd).unwrap();
            l.stop();
        })
        .unwrap();
        drop(b);
        lp.run_forever().unwrap();
        assert!(eof.get());
        lp.close().unwrap();
    });
}

#[test]
fn bad_descriptors_are_errors_not_panics() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        for fd in [-1, -42, RawFd::MIN] {
            let e = lp.add_reader(fd, || ()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{fd}");
            let e = lp.add_writer(fd, || ()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{fd}");
            assert!(!lp.remove_reader(fd).unwrap());
            assert!(!lp.remove_writer(fd).unwrap());
        }
        // A number that cannot be an open descriptor: the OS says EBADF.
        let unused: RawFd = RawFd::MAX - 1;
        let e = lp.add_reader(unused, || ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        assert!(!lp.remove_reader(unused).unwrap());
        // A regular file cannot be polled: the OS says EPERM.
        let file = std::fs::File::open("Cargo.toml").unwrap();
        let e = lp.add_reader(file.as_raw_fd(), || ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert!(!lp.remove_reader(file.as_raw_fd()).unwrap());
        // The loop still works and polls nothing stale.
        lp.run_until_complete(async {}).unwrap();
        let (a, _b) = pair_with_data();
        let l = lp.clone();
        lp.add_reader(a.as_raw_fd(), move || l.stop()).unwrap();
        lp.run_forever().unwrap();
        assert!(lp.remove_reader(a.as_raw_fd()).unwrap());
        lp.close().unwrap();
    });
}

#[test]
fn a_failed_writer_registration_keeps_the_existing_reader() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (a, _b) = pair_with_data();
        let fd = a.as_raw_fd();
        let (reads, count_read) = counter();
        lp.add_reader(fd, count_read).unwrap();
        // Adding a writer to a valid, registered fd works; a bad fd next to it fails alone.
        assert!(lp.add_writer(RawFd::MAX - 1, || ()).is_err());
        run_once(&lp);
        assert_eq!(reads.get(), 1);
        assert!(lp.remove_reader(fd).unwrap());
        lp.close().unwrap();
    });
}

#[test]
fn remove_reader_drops_the_callback() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (a, _b) = UnixStream::pair().unwrap();
        let drops = DropCounter::new();
        let t = drops.token();
        let h = lp
            .add_reader(a.as_raw_fd(), move || {
                let _t = &t;
            })
            .unwrap();
        assert!(lp.remove_reader(a.as_raw_fd()).unwrap());
        assert_eq!(drops.dropped(), 1);
        assert!(h.cancelled());
        lp.close().unwrap();
    });
}

#[test]
fn a_reader_may_replace_or_remove_itself_from_its_callback() {
    watchdog(|| {
        let (lp, _) = virtual_loop();
        let (a, _b) = pair_with_data();
        let fd = a.as_raw_fd();
        let rec = Recorder::new();
        let drops = DropCounter::new();
        let (l, r, t) = (lp.clone(), rec.clone(), drops.token());
        lp.add_reader(fd, move || {
            let _t = &t;
            r.push("first");
            let (l2, r2) = (l.clone(), r.clone());
            l.add_reader(fd, move || {
                r2.push("second");
                assert!(l2.remove_reader(fd).unwrap());
                l2.stop();
            })
            .unwrap();
        })
        .unwrap();
        lp.run_forever().unwrap();
        assert_eq!(rec.get(), strs(&["first", "second"]));
        // The replaced closure is gone once its run is over (no handle kept it).
        assert_eq!(drops.dropped(), 1);
        assert!(!lp.remove_reader(fd).unwrap());
        lp.close().unwrap();
    });
}

#[test]
fn cancelling_a_reader_handle_stops_and_unregisters_it() {
    // CPython's _process_events removes a reader whose handle was cancelled, so a cancelled
    // watcher on a ready fd neither runs nor keeps waking the selector.
    watchdog(|| {
        let (lp, stats) = CountingSelector::event_loop();
        let (a, _b) = pair_with_data();
        let fd = a.as_raw_fd();
        let (called, count) = counter();
        let h: Handle = lp.add_reader(fd, count).unwrap();
        h.cancel();
        assert!(h.cancelled());
        run_for_a_while(&lp);
        assert_eq!(called.get(), 0);
        // Not a busy loop: the readable fd does not wake the selector again and again.
        assert!(stats.count() <= 5, "{} selects", stats.count());
        // It was unregistered along the way.
        assert!(!lp.remove_reader(fd).unwrap());
        lp.close().unwrap();
    });
}

#[test]
fn cancelling_a_writer_handle_stops_and_unregisters_it() {
    watchdog(|| {
        let (lp, stats) = CountingSelector::event_loop();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let (reads, count_read) = counter();
        let (writes, count_write) = counter();
        // A reader on a quiet fd stays; the cancelled writer goes.
        lp.add_reader(fd, count_read).unwrap();
        let h = lp.add_writer(fd, count_write).unwrap();
        h.cancel();
        run_for_a_while(&lp);
        assert_eq!((reads.get(), writes.get()), (0, 0));
        assert!(stats.count() <= 5, "{} selects", stats.count());
        assert!(!lp.remove_writer(fd).unwrap());
        assert!(lp.remove_reader(fd).unwrap());
        lp.close().unwrap();
    });
}
