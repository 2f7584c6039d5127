//! One `StreamWriter` shared by several tasks (asyncio's usual pattern): clones write through
//! one transport, drain together, and a `close()` through one is seen by all.
//!
//! ```text
//! cargo run --example shared_writer
//! ```

use asyncio::streams::{open_connection, start_server};
use asyncio::{Address, Error};

fn main() -> Result<(), Error> {
    asyncio::run(async {
        // ANCHOR: shared
        let server = start_server(
            |reader, writer| async move {
                // Two tasks answer through clones of the one writer.
                let lp = asyncio::get_running_loop()?;
                let tasks = ["ping\n", "pong\n"].map(|line| {
                    let writer = writer.clone();
                    lp.create_task(async move {
                        writer.write(line.as_bytes())?;
                        writer.drain().await // both may wait; both are woken
                    })
                });
                for task in tasks {
                    task?.await??;
                }
                writer.close(); // every clone sees it
                drop(reader);
                Ok::<_, Error>(())
            },
            "127.0.0.1",
            0,
        )
        .await?;
        // ANCHOR_END: shared
        let address = server.sockets()[0].address.clone();
        let port = address
            .as_ref()
            .and_then(Address::as_inet)
            .map_or(0, |a| a.port());
        let (reader, _writer) = open_connection("127.0.0.1", port).await?;
        let got = reader.read_to_eof().await?;
        assert_eq!(got, b"ping\npong\n");
        println!("shared writer: {:?}", String::from_utf8_lossy(&got));
        server.close();
        Ok(())
    })?
}
