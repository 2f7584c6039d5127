//! Subprocesses: Python's `date` example with `create_subprocess_exec`, `communicate` through
//! `cat`, and the low-level protocol API (`subprocess_exec` with a `SubprocessProtocol`).
//!
//! ```text
//! cargo run --example subprocess
//! ```
//!
//! Each part asserts what it shows, so the example fails if the behaviour changes.

use std::cell::RefCell;
use std::rc::Rc;

use asyncio::subprocess::{create_subprocess_exec, Stdio, SubprocessOptions};
use asyncio::{get_running_loop, BaseProtocol, Error, SubprocessProtocol, SubprocessTransport};

fn main() -> Result<(), Error> {
    // ANCHOR: date_main
    let date = asyncio::run(get_date())??;
    println!("Current date: {date}");
    // ANCHOR_END: date_main
    asyncio::run(communicate())??;
    asyncio::run(protocol())??;
    Ok(())
}

// ANCHOR: date
async fn get_date() -> Result<String, Error> {
    // Create the subprocess; redirect the standard output into a pipe.
    let process = create_subprocess_exec(
        "date",
        ["+%Y-%m-%d %H:%M:%S"],
        SubprocessOptions::new().stdout(Stdio::Pipe),
    )
    .await?;

    // Read one line of output.
    let data = process.stdout.as_ref().expect("piped").readline().await?;
    let line = String::from_utf8_lossy(&data).trim_end().to_owned();

    // Wait for the subprocess exit.
    process.wait().await;
    Ok(line)
}
// ANCHOR_END: date

// ANCHOR: communicate
async fn communicate() -> Result<(), Error> {
    let options = SubprocessOptions::new()
        .stdin(Stdio::Pipe)
        .stdout(Stdio::Pipe)
        .stderr(Stdio::Pipe);
    let mut cat = create_subprocess_exec("cat", [] as [&str; 0], options).await?;
    let input = vec![b'x'; 1 << 20];
    // Writes stdin while reading stdout and stderr: no deadlock, whatever the sizes.
    let (stdout, stderr) = cat.communicate(Some(&input)).await?;
    assert_eq!(stdout.as_deref(), Some(&input[..]));
    assert_eq!(stderr.as_deref(), Some(&b""[..]));
    assert_eq!(cat.returncode(), Some(0));
    println!("cat gave back {} bytes", input.len());
    Ok(())
}
// ANCHOR_END: communicate

// ANCHOR: protocol
/// Collects the output of a child and what happened, in order.
struct DateProtocol {
    output: Vec<u8>,
    events: Rc<RefCell<Vec<&'static str>>>,
}

impl BaseProtocol for DateProtocol {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        self.events.borrow_mut().push("connection_lost");
    }
}

impl SubprocessProtocol for DateProtocol {
    fn connection_made(&mut self, _transport: SubprocessTransport) {
        self.events.borrow_mut().push("connection_made");
    }
    fn pipe_data_received(&mut self, _fd: i32, data: &[u8]) {
        self.output.extend_from_slice(data);
    }
    fn pipe_connection_lost(&mut self, _fd: i32, _exc: Option<Error>) {
        self.events.borrow_mut().push("pipe_connection_lost");
    }
    fn process_exited(&mut self) {
        self.events.borrow_mut().push("process_exited");
    }
}

async fn protocol() -> Result<(), Error> {
    let lp = get_running_loop()?;
    let events = Rc::new(RefCell::new(Vec::new()));
    let e = events.clone();
    let options = SubprocessOptions::new()
        .stdin(Stdio::DevNull)
        .stderr(Stdio::DevNull);
    let (transport, protocol) = lp
        .subprocess_exec(
            move || DateProtocol {
                output: Vec::new(),
                events: e,
            },
            "date",
            ["+%Y"],
            options,
        )
        .await?;
    let code = transport.wait().await;
    transport.close();
    let year = String::from_utf8_lossy(&protocol.borrow().output)
        .trim_end()
        .to_owned();
    println!("date exited with {code}, printed {year:?}");
    // connection_lost comes one callback after the exit.
    asyncio::sleep(0.0).await?;
    assert_eq!(
        *events.borrow(),
        [
            "connection_made",
            "pipe_connection_lost",
            "process_exited",
            "connection_lost"
        ]
    );
    Ok(())
}
// ANCHOR_END: protocol
