//! Authorizes things, commands them, and says how each command ended: executed (with the
//! round-trip time), error (the condition and why), or timeout.
//!
//! ```sh
//! export LITHOS_PASSWORD='alice passphrase'
//! controller --jid alice@localhost --pinned-cert lithos-data/tls/cert.pem authorize SL-01-0A1B2C3D --key HELLO-THING-KEY
//! controller --jid alice@localhost --pinned-cert lithos-data/tls/cert.pem flash SL-01-0A1B2C3D --repeat 3
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use lithos_client::{ClientBuilder, RequestError, Trust, WireFormat};
use lithos_core::{Element, Jid, Payload};
use lithos_things_demo::light::{Flash, TurnOff, TurnOn};
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_location::LocationExt;
use lithos_tuxp_operator::OperatorExt;

/// Authorize, command and locate things.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The account to act as (an operator to authorize; the owner or a grantee to command).
    #[arg(long)]
    jid: String,
    /// The server's client port.
    #[arg(long, default_value = "127.0.0.1:5222")]
    address: String,
    /// Trust exactly this server certificate (PEM).
    #[arg(long, value_name = "PEM")]
    pinned_cert: Option<std::path::PathBuf>,
    /// How long a command may take before it counts as timed out, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    deadline_ms: u64,
    /// Speak binary XMPP (BXMPP).
    #[arg(long)]
    bxmpp: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Allow a thing to register (for the server's validity time) with the registration key
    /// it will present (on its label, or given to it when it was made); you will own it.
    Authorize {
        thing_id: String,
        /// The thing's registration key.
        #[arg(long)]
        key: String,
    },
    /// Withdraw your pending authorization.
    Cancel { thing_id: String },
    /// Allow another account to command your thing.
    Grant { thing_id: String, account: String },
    /// Withdraw a grant.
    Revoke { thing_id: String, account: String },
    /// Where a thing is addressed.
    Locate { thing_id: String },
    /// Flash a light.
    Flash {
        /// The thing id (or its JID).
        thing: String,
        /// How many times.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
    },
    /// Turn a light on.
    On { thing: String },
    /// Turn a light off.
    Off { thing: String },
    /// Stop the thing's program.
    Stop { thing: String },
}

fn password() -> String {
    std::env::var("LITHOS_PASSWORD").unwrap_or_else(|_| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        line.trim_end_matches(['\r', '\n']).to_string()
    })
}

/// A thing id or JID → the JID to command.
fn address(thing: &str, domain: &str) -> Result<Jid, String> {
    let text = if thing.contains('@') {
        thing.to_string()
    } else {
        format!("{thing}@{domain}")
    };
    Jid::new(&text).map_err(|e| format!("{thing}: {e}"))
}

fn report(what: &str, r: Result<Option<Element>, RequestError>, took: Duration) -> ExitCode {
    match r {
        Ok(result) => {
            let extra = result.map(|p| format!(", result {p}")).unwrap_or_default();
            let verb = if what.contains(" on ") {
                "executed"
            } else {
                "done"
            };
            println!(
                "{what}: {verb} in {:.1} ms{extra}",
                took.as_secs_f64() * 1000.0
            );
            ExitCode::SUCCESS
        }
        Err(RequestError::Stanza(e)) => {
            println!(
                "{what}: error {}{}",
                e.condition,
                e.text
                    .as_ref()
                    .map(|(_, t)| format!(" ({t})"))
                    .unwrap_or_default()
            );
            ExitCode::from(2)
        }
        Err(RequestError::Timeout) => {
            println!("{what}: timeout, not executed (the thing will refuse it if it arrives late)");
            ExitCode::from(3)
        }
        Err(RequestError::Disconnected) => {
            println!("{what}: disconnected before an answer");
            ExitCode::from(4)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut b = match ClientBuilder::new(&cli.jid, &password()) {
        Ok(b) => b.address(cli.address.clone()),
        Err(e) => {
            eprintln!("controller: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(p) = &cli.pinned_cert {
        match Trust::pinned_file(p) {
            Ok(t) => b = b.trust(t),
            Err(e) => {
                eprintln!("controller: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if cli.bxmpp {
        b = b.format(WireFormat::Bxmpp);
    }
    let (client, _events) = match b.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("controller: {e}");
            return ExitCode::FAILURE;
        }
    };
    let domain = client.jid().domain().to_string();
    let deadline = Duration::from_millis(cli.deadline_ms);
    let start = Instant::now();
    let code = match cli.command {
        Command::Authorize { thing_id, key } => report(
            "authorize",
            client
                .authorize_thing(&thing_id, &key, deadline)
                .await
                .map(|_| None),
            start.elapsed(),
        ),
        Command::Cancel { thing_id } => report(
            "cancel",
            client
                .cancel_authorization(&thing_id, deadline)
                .await
                .map(|_| None),
            start.elapsed(),
        ),
        Command::Grant { thing_id, account } | Command::Revoke { thing_id, account }
            if Jid::new(&account).is_err() =>
        {
            eprintln!("controller: {account}: not an address ({thing_id})");
            ExitCode::FAILURE
        }
        Command::Grant { thing_id, account } => report(
            "grant",
            client
                .set_grant(
                    &thing_id,
                    Jid::new(&account).expect("checked"),
                    false,
                    deadline,
                )
                .await
                .map(|_| None),
            start.elapsed(),
        ),
        Command::Revoke { thing_id, account } => report(
            "revoke",
            client
                .set_grant(
                    &thing_id,
                    Jid::new(&account).expect("checked"),
                    true,
                    deadline,
                )
                .await
                .map(|_| None),
            start.elapsed(),
        ),
        Command::Locate { thing_id } => match client.locate_things(&[&thing_id], deadline).await {
            Ok(found) => {
                for (id, jid) in found {
                    println!("{id}: {jid}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => report("locate", Err(e), start.elapsed()),
        },
        Command::Flash { thing, repeat } => {
            execute(
                &client,
                &thing,
                &domain,
                Flash { repeat }.into_element(),
                deadline,
            )
            .await
        }
        Command::On { thing } => {
            execute(&client, &thing, &domain, TurnOn.into_element(), deadline).await
        }
        Command::Off { thing } => {
            execute(&client, &thing, &domain, TurnOff.into_element(), deadline).await
        }
        Command::Stop { thing } => {
            execute(
                &client,
                &thing,
                &domain,
                lithos_tuxp_edge::Stop.into_element(),
                deadline,
            )
            .await
        }
    };
    client.close().await;
    code
}

async fn execute(
    client: &lithos_client::Client,
    thing: &str,
    domain: &str,
    action: Element,
    deadline: Duration,
) -> ExitCode {
    let to = match address(thing, domain) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("controller: {e}");
            return ExitCode::FAILURE;
        }
    };
    let what = format!("{} on {to}", action.name());
    let start = Instant::now();
    let r = client.execute(to, action, deadline).await;
    report(&what, r, start.elapsed())
}
