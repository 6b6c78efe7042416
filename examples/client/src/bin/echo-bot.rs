//! An echo bot: answers every chat message with the same text, accepts every subscription
//! request (so people can add it to their roster), and answers pings and disco queries.
//!
//! ```sh
//! echo 'bot password' | cargo run -p lithos-example-client --bin echo-bot -- \
//!     --jid bot@localhost --address 127.0.0.1:5222 --pinned-cert lithos-data/tls/cert.pem
//! ```

use std::process::ExitCode;

use clap::Parser;
use lithos_client::Event;
use lithos_core::stanza::{Message, MessageType, Presence, PresenceType};

/// Echoes chat messages back to their senders until stopped (Ctrl-C).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    connection: lithos_example_client::Connection,
    /// Stop after answering this many messages (default: never).
    #[arg(long)]
    max_messages: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    lithos_example_client::init_logging();
    let cli = Cli::parse();
    let builder = match cli.connection.builder() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("echo-bot: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (client, mut events) = match builder.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("echo-bot: {}", lithos_example_client::explain(&e));
            return ExitCode::FAILURE;
        }
    };
    eprintln!("echo-bot: online as {}", client.jid());
    if let Err(e) = client.send_presence(Presence::available()).await {
        eprintln!("echo-bot: {e}");
        return ExitCode::FAILURE;
    }
    let mut answered = 0u64;
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = tokio::signal::ctrl_c() => break,
        };
        match event {
            Some(Event::Message(m))
                if m.type_ == MessageType::Chat || m.type_ == MessageType::Normal =>
            {
                let (Some(from), Some(body)) = (m.from.clone(), m.body()) else {
                    continue;
                };
                let mut reply = Message::chat(from.clone(), body);
                reply.type_ = m.type_;
                reply.id = Some(client.next_id().into());
                if client.send(reply).await.is_err() {
                    break;
                }
                answered += 1;
                eprintln!("echo-bot: echoed a message from {from}");
                if cli.max_messages.is_some_and(|max| answered >= max) {
                    break;
                }
            }
            Some(Event::Presence(p)) if p.type_ == PresenceType::Subscribe => {
                // Accept, and ask back, so that both sides see each other.
                let Some(from) = p.from.map(|f| f.to_bare()) else {
                    continue;
                };
                let _ = client
                    .send(Presence::of_type(
                        PresenceType::Subscribed,
                        Some(from.clone()),
                    ))
                    .await;
                let _ = client
                    .send(Presence::of_type(PresenceType::Subscribe, Some(from)))
                    .await;
            }
            Some(Event::Disconnected { reason, .. }) => {
                eprintln!("echo-bot: disconnected: {}", reason.unwrap_or_default());
                return ExitCode::FAILURE;
            }
            Some(_) => {}
            None => break,
        }
    }
    client.close().await;
    ExitCode::SUCCESS
}
