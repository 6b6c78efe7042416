//! A LoRa gateway (model `LGW-01`) with its radio simulated: an edge thing that registers
//! by IBTR (an operator must have authorized its id), serves a simulated LoRa network to
//! node programs on a loopback port (`lora-node --air`), gives new nodes addresses
//! (LoRa-DAC) and adds them to the server, carries its nodes' commands down and their
//! notifications and reports up. After a restart it learns its nodes back from the server.
//!
//! ```sh
//! cargo run -p lithos-example-lora --bin lora-gateway -- --id LGW-01-0A1B2C3E \
//!     --pinned-cert lithos-data/tls/cert.pem --air 127.0.0.1:7700
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lithos_client::{Trust, WireFormat};
use lithos_gateway::dac::Dac;
use lithos_lora_sim::{Conditions, RadioNetwork};
use lithos_tuxp_execution::thing::ThingRuntime;
// The BXMPP tables of the nodes' models (their actions become LAN frames here).
use lithos_things_demo as _;

/// A LoRa gateway over a simulated radio network.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The gateway's thing id (`LGW-01-` and eight letters or digits).
    #[arg(long)]
    id: String,
    /// The registration key the gateway holds.
    #[arg(long, default_value = "LORA-GATEWAY-KEY")]
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
    /// Where node programs join the simulated air (loopback; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:7700")]
    air: std::net::SocketAddr,
    /// The air's seed: the same seed, the same losses.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of frames the air loses (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Fraction of frames the air duplicates (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    duplication: f64,
    /// Delay of every frame on the air, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Speak binary XMPP (BXMPP) to the server.
    #[arg(long)]
    bxmpp: bool,
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("lora-gateway: {e}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.air.ip().is_loopback() {
        return fail("the simulated air listens on loopback only");
    }
    let trust = match &cli.pinned_cert {
        Some(p) => match Trust::pinned_file(p) {
            Ok(t) => t,
            Err(e) => return fail(e),
        },
        None => Trust::System,
    };
    let conditions = Conditions::perfect()
        .delayed(Duration::from_millis(cli.delay_ms), Duration::ZERO)
        .lossy(cli.loss, cli.duplication);
    if let Err(e) = conditions.validate() {
        return fail(e);
    }
    let net = RadioNetwork::new(cli.seed, conditions);
    let listener = match tokio::net::TcpListener::bind(cli.air).await {
        Ok(l) => l,
        Err(e) => return fail(format!("the air on {}: {e}", cli.air)),
    };
    match listener.local_addr() {
        Ok(a) => println!("air: {a}"),
        Err(e) => return fail(e),
    }
    tokio::spawn(lithos_lora_sim::air::serve(net.clone(), listener));

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
        );
    // Its radios, LAN router, DAC service and working modes, on the simulated air; what DAC
    // does is printed.
    let gw = lithos_gateway::simulated::start(&net, runtime, |dac, router| match dac {
        Dac::Allocated(id) => println!("dac: allocated LAN id {id}"),
        Dac::Configured => {
            for id in router.lan_ids() {
                if let Some(node) = router.node(id) {
                    println!(
                        "node {id}: {} at {}",
                        node.thing_id.unwrap_or_default(),
                        node.address
                    );
                }
            }
        }
        Dac::NotConfigured => println!("dac: the server refused a node (not-configured)"),
        _ => {}
    })
    .await;
    let gw = match gw {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    let client = gw.client;
    println!(
        "gateway: online as {}, {} nodes known",
        client.jid(),
        gw.synced
    );
    let _ = tokio::signal::ctrl_c().await;
    client.close().await;
    ExitCode::SUCCESS
}
