//! The README's "LoRa in one machine", as processes: a server, the `lora-gateway` program,
//! three `lora-node` programs joining its simulated air one after another (two lights and a
//! thermometer); the owner commands each light by its address behind the gateway and reads
//! the thermometer's reports. Then the gateway restarts and, with its nodes' addresses
//! learnt back from the server, commands reach them again.

// Every extension crate of lithosd, linked with it.
use lithosd as _;

use std::process::Stdio;
use std::time::Duration;

use lithos_client::{Client, ClientBuilder, Trust};
use lithos_core::{Element, Jid};
use lithos_server::{Config, RunningServer};
use lithos_tuxp_execution::ControllerExt;
use lithos_tuxp_operator::OperatorExt;
use lithos_tuxp_report::ReportsExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);

/// A program whose standard output lines arrive on a channel.
struct Program {
    _child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Program {
    fn start(exe: &str, args: &[String], dir: &std::path::Path) -> Program {
        let mut child = Command::new(exe)
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(l)) = out.next_line().await {
                eprintln!("{l}");
                let _ = tx.send(l);
            }
        });
        Program {
            _child: child,
            lines,
        }
    }

    /// The first line (from now) containing `what`.
    async fn wait_for(&mut self, what: &str) -> String {
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(l) = self.lines.recv().await {
                if l.contains(what) {
                    return Some(l);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(l)) => l,
            _ => panic!("no line with {what:?}"),
        }
    }
}

fn flash(repeat: &str) -> Element {
    Element::builder("flash", lithos_things_demo::light::NS)
        .attr("repeat", repeat)
        .build()
}

async fn alice(server: &RunningServer, cert: &std::path::Path) -> Client {
    let (c, events) = ClientBuilder::new("alice@localhost", "alice-password")
        .unwrap()
        .address(server.c2s_addrs[0].to_string())
        .trust(Trust::pinned_file(cert).unwrap())
        .connect()
        .await
        .unwrap();
    std::mem::forget(events);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn server_gateway_three_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(&format!(
        "domain = 'localhost'\ndata_dir = '{}'\n[things]\nlisten = ['127.0.0.1:0']\n\
         [http]\nlisten = []\n[c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = []\n{}",
        dir.path().display(),
        include_str!("../../controller/lithos-iot.toml")
    ))
    .unwrap();
    let server = RunningServer::start(config).await.unwrap();
    let creds = lithos_server::sasl::Credentials::new("alice-password", 4096).unwrap();
    server
        .handle()
        .storage()
        .accounts
        .create_account("alice", &creds)
        .await
        .unwrap();
    let cert = dir.path().join("tls/cert.pem");
    let alice = alice(&server, &cert).await;
    alice
        .authorize_thing("LGW-01-0A1B2C3E", "LORA-GATEWAY-KEY", T)
        .await
        .unwrap();
    let nodes = [
        ("SL-01-0A1B2C41", "LIGHT-KEY-0041", "light"),
        ("SL-01-0A1B2C42", "LIGHT-KEY-0042", "light"),
        ("STR-01-0A1B2C43", "TEMP-KEY-0043", "thermometer"),
    ];
    for (id, code, _) in nodes {
        alice.authorize_thing(id, code, T).await.unwrap();
    }

    let gateway_args = |air: &str| -> Vec<String> {
        [
            "--id",
            "LGW-01-0A1B2C3E",
            "--address",
            &server.thing_addrs[0].to_string(),
            "--pinned-cert",
            &cert.display().to_string(),
            "--air",
            air,
        ]
        .map(str::to_string)
        .to_vec()
    };
    let exe_gw = env!("CARGO_BIN_EXE_lora-gateway");
    let exe_node = env!("CARGO_BIN_EXE_lora-node");
    let mut gateway = Program::start(exe_gw, &gateway_args("127.0.0.1:0"), dir.path());
    let air = gateway.wait_for("air: ").await["air: ".len()..].to_string();
    gateway.wait_for("0 nodes known").await;

    let mut programs = Vec::new();
    for (i, (id, code, kind)) in nodes.iter().enumerate() {
        let mut node = Program::start(
            exe_node,
            &[
                "--air",
                &air,
                "--id",
                id,
                "--code",
                code,
                "--kind",
                kind,
                "--report-every",
                "1",
            ]
            .map(str::to_string),
            dir.path(),
        );
        let line = node.wait_for("configured").await;
        assert!(line.contains(&format!("LAN id {}", i + 1)), "{line}");
        programs.push(node);
    }

    // The owner commands each light by its address behind the gateway.
    let at = |lan: u8| Jid::new(&format!("lgw-01-0a1b2c3e@localhost/{lan}")).unwrap();
    alice.execute(at(1), flash("3"), T).await.unwrap();
    programs[0].wait_for("flash x3").await;
    alice.execute(at(2), flash("2"), T).await.unwrap();
    programs[1].wait_for("flash x2").await;
    // The thermometer's reports are stored under its LAN id.
    programs[2].wait_for("reported").await;
    let latest = alice
        .latest_reports(Jid::new("lgw-01-0a1b2c3e@localhost").unwrap(), T)
        .await
        .unwrap();
    assert!(latest.iter().any(|i| i.node == "3"), "{latest:?}");

    // The gateway restarts on the same air port: it learns its three nodes back from the
    // server, and they answer commands again (they kept their addresses).
    drop(gateway);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut gateway = Program::start(exe_gw, &gateway_args(&air), dir.path());
    gateway.wait_for("3 nodes known").await;
    // The nodes' programs lost the air with the old gateway; restarted, each goes on from
    // its state file with no DAC.
    programs.clear();
    let mut light = Program::start(
        exe_node,
        &["--air", &air, "--id", nodes[0].0, "--code", nodes[0].1].map(str::to_string),
        dir.path(),
    );
    light.wait_for("LAN id 1").await;
    alice.execute(at(1), flash("4"), T).await.unwrap();
    light.wait_for("flash x4").await;
}
