//! A simulated simple light (model `SL-01`). The first run registers it (an operator must
//! have authorized its id) and saves its credentials; later runs log in with them. It runs
//! `flash`, `turn-on` and `turn-off`, and the edge built-ins `stop` and `shutdown-system`
//! (answered first, then acted on).
//!
//! ```sh
//! cargo run -p lithos-example-hello-thing -- --id SL-01-0A1B2C3D \
//!     --address 127.0.0.1:6222 --pinned-cert lithos-data/tls/cert.pem
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use lithos_client::{Event, Trust, WireFormat};
use lithos_core::{Element, Payload};
use lithos_things_demo::light::{self, Flash};
use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};

/// A simulated simple light.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The thing id (`SL-01-` and eight letters or digits).
    #[arg(long)]
    id: String,
    /// The registration key the device holds.
    #[arg(long, default_value = "HELLO-THING-KEY")]
    key: String,
    /// The XMPP domain.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// The server's things port.
    #[arg(long, default_value = "127.0.0.1:6222")]
    address: String,
    /// Trust exactly this server certificate (PEM).
    #[arg(long, value_name = "PEM")]
    pinned_cert: Option<std::path::PathBuf>,
    /// Where to keep the credentials (default `<id>.credentials`).
    #[arg(long)]
    credentials_file: Option<std::path::PathBuf>,
    /// Speak binary XMPP (BXMPP).
    #[arg(long)]
    bxmpp: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let trust = match &cli.pinned_cert {
        Some(p) => match Trust::pinned_file(p) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("hello-thing: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Trust::System,
    };
    let on = Arc::new(AtomicBool::new(false));
    let (on1, on2) = (on.clone(), on.clone());
    let (quit, mut quitting) = tokio::sync::watch::channel(false);
    let (quit1, quit2) = (quit.clone(), quit);
    let runtime = ThingRuntime::new(&cli.id, &cli.key, &cli.domain)
        .address(cli.address.clone())
        .trust(trust)
        .format(if cli.bxmpp {
            WireFormat::Bxmpp
        } else {
            WireFormat::Xml
        })
        .credentials_file(
            cli.credentials_file
                .clone()
                .unwrap_or_else(|| format!("{}.credentials", cli.id).into()),
        )
        .on_action(
            light::NS,
            "flash",
            action_handler(|action: Element| async move {
                let f = Flash::from_element(action).map_err(|e| e.to_stanza_error())?;
                println!("light: flashing {} time(s)", f.repeat);
                Ok(None)
            }),
        )
        .on_action(
            light::NS,
            "turn-on",
            action_handler(move |_| {
                let on = on1.clone();
                async move {
                    on.store(true, Ordering::SeqCst);
                    println!("light: on");
                    Ok(None)
                }
            }),
        )
        .on_action(
            light::NS,
            "turn-off",
            action_handler(move |_| {
                let on = on2.clone();
                async move {
                    on.store(false, Ordering::SeqCst);
                    println!("light: off");
                    Ok(None)
                }
            }),
        )
        // The built-ins answer first, then act (the thing is about to go away).
        .on_action(
            lithos_tuxp_edge::NS,
            "stop",
            action_handler(move |_| {
                let quit = quit1.clone();
                async move {
                    println!("light: stopping");
                    let _ = quit.send(true);
                    Ok(None)
                }
            }),
        )
        .on_action(
            lithos_tuxp_edge::NS,
            "shutdown-system",
            action_handler(move |action: Element| {
                let quit = quit2.clone();
                async move {
                    let restart = action.has_child("restart", lithos_tuxp_edge::NS);
                    println!(
                        "light: would {} the system now (simulated)",
                        if restart { "restart" } else { "shut down" }
                    );
                    let _ = quit.send(true);
                    Ok(None)
                }
            }),
        );
    let (client, mut events) = match runtime.start().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hello-thing: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("light {} online as {}", cli.id, client.jid());
    loop {
        tokio::select! {
            _ = quitting.changed() => {
                // Let the answer go out before leaving.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                break;
            }
            _ = tokio::signal::ctrl_c() => break,
            e = events.recv() => match e {
                Some(Event::Disconnected { reason, .. }) => {
                    eprintln!("hello-thing: disconnected: {}", reason.unwrap_or_default());
                    return ExitCode::FAILURE;
                }
                None => break,
                _ => {}
            },
        }
    }
    client.close().await;
    ExitCode::SUCCESS
}
