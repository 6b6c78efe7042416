//! Sends one chat message and, with `--wait-reply`, prints the first message that comes back.
//!
//! ```sh
//! echo 'password' | cargo run -p lithos-example-client --bin send-message -- \
//!     --jid alice@localhost --pinned-cert lithos-data/tls/cert.pem \
//!     --address 127.0.0.1:5222 bob@localhost "hello"
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lithos_client::Event;
use lithos_core::Jid;

/// Sends a chat message.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    connection: lithos_example_client::Connection,
    /// Wait this many seconds for a reply from the recipient and print it.
    #[arg(long, value_name = "SECONDS")]
    wait_reply: Option<u64>,
    /// The recipient.
    to: String,
    /// The text.
    body: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    lithos_example_client::init_logging();
    let cli = Cli::parse();
    let to = match Jid::new(&cli.to) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("send-message: {}: {e}", cli.to);
            return ExitCode::FAILURE;
        }
    };
    let builder = match cli.connection.builder() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("send-message: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (client, mut events) = match builder.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("send-message: {}", lithos_example_client::explain(&e));
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = client.send_message(to.clone(), &cli.body).await {
        eprintln!("send-message: {e}");
        return ExitCode::FAILURE;
    }
    let mut code = ExitCode::SUCCESS;
    if let Some(secs) = cli.wait_reply {
        let reply = tokio::time::timeout(Duration::from_secs(secs), async {
            while let Some(e) = events.recv().await {
                if let Event::Message(m) = e
                    && m.from.as_ref().is_some_and(|f| f.bare_eq(&to))
                    && let Some(body) = m.body()
                {
                    return Some(body);
                }
            }
            None
        })
        .await;
        match reply {
            Ok(Some(body)) => println!("{body}"),
            _ => {
                eprintln!("send-message: no reply within {secs} s");
                code = ExitCode::FAILURE;
            }
        }
    }
    client.close().await;
    code
}
