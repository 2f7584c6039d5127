//! Pipe transports (`connect_read_pipe`, `connect_write_pipe`): pipes, FIFOs, socket pairs, a pty
//! and `/dev/null`; EOF, EPIPE, flow control, refusal of regular files, and the descriptor closed
//! exactly once.

mod net_support;

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use asyncio::{BaseProtocol, Error, ErrorKind, ExtraInfo, Protocol, Transport};
use net_support::{run, spin, wait_until, watchdog, TempDir};

/// Every callback, in order.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
    fn has(&self, what: &str) -> bool {
        self.0.borrow().iter().any(|e| e.starts_with(what))
    }
}

/// A protocol that logs its callbacks and collects data.
#[derive(Clone, Default)]
struct Rec {
    log: Log,
    data: Rc<RefCell<Vec<u8>>>,
}

impl BaseProtocol for Rec {
    fn connection_lost(&mut self, exc: Option<Error>) {
        let what = match exc {
            None => "lost".to_owned(),
            Some(e) => format!("lost:{:?}", e.io_error_kind()),
        };
        self.log.0.borrow_mut().push(what);
    }
    fn pause_writing(&mut self) {
        self.log.0.borrow_mut().push("pause".into());
    }
    fn resume_writing(&mut self) {
        self.log.0.borrow_mut().push("resume".into());
    }
}

impl Protocol for Rec {
    fn connection_made(&mut self, _t: Transport) {
        self.log.0.borrow_mut().push("made".into());
    }
    fn data_received(&mut self, data: &[u8]) {
        self.data.borrow_mut().extend_from_slice(data);
        let mut log = self.log.0.borrow_mut();
        if log.last().map(String::as_str) != Some("data") {
            log.push("data".into());
        }
    }
    fn eof_received(&mut self) -> bool {
        self.log.0.borrow_mut().push("eof".into());
        // Even `true` does not keep a read pipe open: a pipe has no half-close.
        true
    }
}

fn os_pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid two-element array for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0);
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// What `fd` refers to (device and inode), if it is open.
fn identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: a zeroed `stat` is a valid out-buffer; fstat only writes it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes; a closed fd gives EBADF.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

/// Whether `fd` still refers to the file it referred to when `id` was taken. Tests run in
/// parallel, so a closed number may already name another test's file.
fn still_open(fd: RawFd, id: Option<(u64, u64)>) -> bool {
    identity(fd) == id
}

#[test]
fn a_read_pipe_delivers_data_then_eof_then_connection_lost() {
    watchdog(|| {
        let (r, mut w) = os_pipe();
        let fd = r.as_raw_fd();
        let id = identity(fd);
        let rec = Rec::default();
        let p = rec.clone();
        run(|lp| async move {
            let (t, _) = lp.connect_read_pipe(move || p, r).await.unwrap();
            assert!(t.is_pipe());
            assert!(t.is_reading());
            assert!(!t.can_write_eof());
            assert_eq!(t.get_extra_info("pipe"), Some(ExtraInfo::Fd(fd)));
            assert_eq!(t.get_extra_info("socket"), None);
            assert_eq!(t.write(b"x").unwrap_err().kind(), ErrorKind::NotSupported);
            // The fd is the transport's: fd callbacks on it are refused.
            assert_eq!(
                lp.add_reader(fd, || {}).unwrap_err().kind(),
                ErrorKind::InvalidState
            );
            let writer = std::thread::spawn(move || {
                w.write_all(&vec![7u8; 300_000]).unwrap();
            });
            wait_until("lost", || rec.log.has("lost")).await;
            writer.join().unwrap();
            assert_eq!(rec.data.borrow().len(), 300_000);
            assert_eq!(rec.log.events(), ["made", "data", "eof", "lost"]);
            assert_eq!(t.fd(), None);
        });
        assert!(!still_open(fd, id), "the transport closes the pipe");
    });
}

#[test]
fn pause_reading_stops_delivery_until_resumed() {
    watchdog(|| {
        let (r, mut w) = os_pipe();
        let rec = Rec::default();
        let p = rec.clone();
        run(|lp| async move {
            let (t, _) = lp.connect_read_pipe(move || p, r).await.unwrap();
            t.pause_reading();
            assert!(!t.is_reading());
            w.write_all(b"held").unwrap();
            spin(5).await;
            assert!(rec.data.borrow().is_empty());
            t.resume_reading();
            wait_until("data", || rec.data.borrow().len() == 4).await;
            t.close();
            wait_until("lost", || rec.log.has("lost")).await;
        });
    });
}

#[test]
fn a_write_pipe_writes_everything_then_write_eof_closes_it() {
    watchdog(|| {
        let (mut r, w) = os_pipe();
        let fd = w.as_raw_fd();
        let id = identity(fd);
        let rec = Rec::default();
        let p = rec.clone();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all
        });
        run(|lp| async move {
            let (t, _) = lp.connect_write_pipe(move || p, w).await.unwrap();
            assert!(t.can_write_eof());
            assert!(!t.is_reading());
            let chunk: Vec<u8> = (0..=255).collect();
            for _ in 0..4000 {
                t.write(&chunk).unwrap();
            }
            t.writelines([&b"end"[..]]).unwrap();
            t.write_eof();
            assert!(t.is_closing());
            wait_until("lost", || rec.log.has("lost")).await;
            assert_eq!(rec.log.events().last().unwrap(), "lost");
        });
        let all = reader.join().unwrap();
        assert_eq!(all.len(), 4000 * 256 + 3);
        assert!(all.ends_with(b"end"));
        assert!(!still_open(fd, id));
    });
}

#[test]
fn a_write_pipe_pauses_a_fast_writer_for_a_slow_reader() {
    watchdog(|| {
        let (r, w) = os_pipe();
        let rec = Rec::default();
        let p = rec.clone();
        run(|lp| async move {
            let (t, _) = lp.connect_write_pipe(move || p, w).await.unwrap();
            t.set_write_buffer_limits(Some(64 * 1024), None).unwrap();
            // Nobody reads yet: the kernel's pipe buffer fills, then ours.
            while !rec.log.has("pause") {
                t.write(&[1u8; 16 * 1024]).unwrap();
            }
            assert!(t.get_write_buffer_size() > 64 * 1024);
            let reader = std::thread::spawn(move || {
                let mut r = r;
                let mut sink = Vec::new();
                r.read_to_end(&mut sink).unwrap();
                sink.len()
            });
            wait_until("resume", || rec.log.has("resume")).await;
            t.close();
            wait_until("lost", || rec.log.has("lost")).await;
            assert!(reader.join().unwrap() > 64 * 1024);
        });
    });
}

#[test]
fn a_write_pipe_whose_reader_left_reports_a_broken_pipe() {
    watchdog(|| {
        // Data buffered when the reader goes: connection_lost(BrokenPipe).
        let (r, w) = os_pipe();
        let rec = Rec::default();
        let p = rec.clone();
        run(|lp| async move {
            let (t, _) = lp.connect_write_pipe(move || p, w).await.unwrap();
            while t.get_write_buffer_size() == 0 {
                t.write(&[0u8; 64 * 1024]).unwrap();
            }
            drop(r);
            wait_until("lost", || rec.log.has("lost")).await;
            assert!(
                rec.log.has("lost:Some(BrokenPipe)"),
                "{:?}",
                rec.log.events()
            );
        });
        // Nothing buffered: the reader's close is a plain connection_lost(None).
        let (r, w) = os_pipe();
        let rec = Rec::default();
        let p = rec.clone();
        run(|lp| async move {
            let (_t, _) = lp.connect_write_pipe(move || p, w).await.unwrap();
            drop(r);
            wait_until("lost", || rec.log.has("lost")).await;
            assert_eq!(rec.log.events(), ["made", "lost"]);
        });
    });
}

#[test]
fn a_fifo_and_a_socket_pair_work_as_pipes() {
    watchdog(|| {
        let dir = TempDir::new("fifo");
        let path = dir.join("f");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let r = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let w = OpenOptions::new().write(true).open(&path).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let (fifo_in, pair_in) = (Rec::default(), Rec::default());
        let (p1, p2) = (fifo_in.clone(), pair_in.clone());
        run(|lp| async move {
            let (rt, _) = lp.connect_read_pipe(move || p1, r).await.unwrap();
            let (wt, _) = lp.connect_write_pipe(Rec::default, w).await.unwrap();
            wt.write(b"via fifo").unwrap();
            wt.write_eof();
            wait_until("fifo eof", || fifo_in.log.has("lost")).await;
            assert_eq!(&fifo_in.data.borrow()[..], b"via fifo");
            assert!(rt.is_closing());
            let (prt, _) = lp
                .connect_read_pipe(move || p2, OwnedFd::from(a))
                .await
                .unwrap();
            let (pwt, _) = lp.connect_write_pipe(Rec::default, b).await.unwrap();
            pwt.write(b"via socketpair").unwrap();
            pwt.close();
            wait_until("pair eof", || pair_in.log.has("lost")).await;
            assert_eq!(&pair_in.data.borrow()[..], b"via socketpair");
            assert!(prt.is_closing());
        });
    });
}

#[test]
fn a_pty_and_dev_null_work_as_character_devices() {
    watchdog(|| {
        // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on a fresh master descriptor.
        let (master, slave) = unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(m >= 0);
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
            let s = libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            assert!(s >= 0);
            (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
        };
        let null = OpenOptions::new().write(true).open("/dev/null").unwrap();
        let got = Rec::default();
        let g = got.clone();
        let null_rec = Rec::default();
        let n = null_rec.clone();
        run(|lp| async move {
            let (rt, _) = lp.connect_read_pipe(move || g, slave).await.unwrap();
            let (wt, _) = lp.connect_write_pipe(Rec::default, master).await.unwrap();
            wt.write(b"hello pty\n").unwrap();
            wait_until("pty line", || got.data.borrow().ends_with(b"\n")).await;
            assert!(got.data.borrow().starts_with(b"hello pty"));
            rt.close();
            wt.close();
            let (nt, _) = lp.connect_write_pipe(move || n, null).await.unwrap();
            nt.write(&[0u8; 1 << 20]).unwrap();
            assert_eq!(nt.get_write_buffer_size(), 0);
            nt.close();
            wait_until("null lost", || null_rec.log.has("lost")).await;
        });
    });
}

#[test]
fn a_regular_file_is_refused_and_closed() {
    watchdog(|| {
        let dir = TempDir::new("regular");
        let file = File::create(dir.join("plain")).unwrap();
        let fd = file.as_raw_fd();
        let id = identity(fd);
        run(|lp| async move {
            let Err(err) = lp.connect_read_pipe(Rec::default, file).await else {
                panic!("a regular file was accepted");
            };
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert_eq!(err.message(), "Pipe transport is for pipes/sockets only.");
        });
        assert!(!still_open(fd, id), "a refused pipe is closed, not leaked");
    });
}
