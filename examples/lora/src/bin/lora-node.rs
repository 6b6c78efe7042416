//! A simulated mud node on the air a `lora-gateway` serves: it gets its address by LoRa-DAC
//! (its owner's operator must have authorized its thing id with its registration code),
//! keeps it in a state file, then works as a light (`flash`, `turn-on`, `turn-off`) or a
//! thermometer (a `celsius-degree` report, acknowledged, every few seconds).
//!
//! ```sh
//! cargo run -p lithos-example-lora --bin lora-node -- --air 127.0.0.1:7700 \
//!     --id SL-01-0A1B2C41 --code LIGHT-KEY-0041 --kind light
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use lithos_core::Payload;
use lithos_lora_sim::air::RemoteRadio;
use lithos_mud::NodeBuilder;
use lithos_things_demo::{light, temperature};
use lithos_tuxp_lora_dac::DAC_CLIENT;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// A simple light (`SL-01`).
    Light,
    /// A temperature reporter (`STR-01`).
    Thermometer,
}

/// A simulated LoRa node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Where the gateway serves the air.
    #[arg(long, default_value = "127.0.0.1:7700")]
    air: std::net::SocketAddr,
    /// The node's thing id (at most 16 characters).
    #[arg(long)]
    id: String,
    /// Its registration code (at most 32 characters).
    #[arg(long)]
    code: String,
    /// What it is.
    #[arg(long, value_enum, default_value = "light")]
    kind: Kind,
    /// Where it keeps its address (default `<id>.state`).
    #[arg(long)]
    state_file: Option<std::path::PathBuf>,
    /// A thermometer's report interval, in seconds.
    #[arg(long, default_value_t = 5)]
    report_every: u64,
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("lora-node: {e}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let radio = match RemoteRadio::connect(cli.air, DAC_CLIENT).await {
        Ok(r) => r,
        Err(e) => return fail(format!("the air at {}: {e}", cli.air)),
    };
    let id = cli.id.clone();
    let mut builder = NodeBuilder::new(&cli.id, &cli.code).state_file(
        cli.state_file
            .clone()
            .unwrap_or_else(|| format!("{}.state", cli.id).into()),
    );
    if let Kind::Light = cli.kind {
        let (a, b, c) = (id.clone(), id.clone(), id.clone());
        builder = builder
            .on_action(light::NS, "flash", move |action| {
                let repeat = action.attr("repeat").unwrap_or("1");
                println!("{a}: flash x{repeat}");
                0
            })
            .on_action(light::NS, "turn-on", move |_| {
                println!("{b}: on");
                0
            })
            .on_action(light::NS, "turn-off", move |_| {
                println!("{c}: off");
                0
            });
    }
    let node = match builder.start(radio).await {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let a = node.allocation();
    println!(
        "{id}: configured, LAN id {} at {} (uplink {})",
        a.lan_id, a.address, a.uplink
    );
    let mut tick = tokio::time::interval(Duration::from_secs(cli.report_every.max(1)));
    let mut n: u32 = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = node.reset() => {
                println!("{id}: reset by the gateway; start again to get a new address");
                break;
            }
            _ = tick.tick(), if matches!(cli.kind, Kind::Thermometer) => {
                n += 1;
                let value = 20.0 + (n % 10) as f32 / 2.0;
                let data = temperature::CelsiusDegree { value }.into_element();
                match node.report(data, true).await {
                    Ok(()) => println!("{id}: reported {value} °C"),
                    Err(e) => println!("{id}: report of {value} °C failed: {e}"),
                }
            }
        }
    }
    ExitCode::SUCCESS
}
