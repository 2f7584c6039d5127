//! The command line of the echo server examples: `--host`, `--port` and `--max-seconds`.

use asyncio::{Error, ErrorKind};

/// `--host`, `--port` and `--max-seconds`.
pub struct Args {
    /// Where to listen (default 127.0.0.1).
    pub host: String,
    /// The port (default 8888).
    pub port: u16,
    /// Stop after this many seconds (default: serve until SIGINT or SIGTERM).
    pub max_seconds: Option<f64>,
}

/// Parses the process's arguments; `program` names the example in the usage message.
pub fn parse_args(program: &str) -> Result<Args, Error> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 8888,
        max_seconds: None,
    };
    let mut it = std::env::args().skip(1);
    let bad = |what: &str| Error::new(ErrorKind::InvalidArgument, what.to_owned());
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| bad("a flag needs a value"))?;
        match flag.as_str() {
            "--host" => args.host = value,
            "--port" => args.port = value.parse().map_err(|_| bad("bad --port"))?,
            "--max-seconds" => {
                args.max_seconds = Some(value.parse().map_err(|_| bad("bad --max-seconds"))?)
            }
            _ => {
                return Err(bad(&format!(
                    "usage: {program} [--host H] [--port P] [--max-seconds N]"
                )))
            }
        }
    }
    Ok(args)
}
