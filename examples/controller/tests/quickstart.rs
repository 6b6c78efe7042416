//! The controller program against lithosd and a thing: authorize, command, see each outcome.

// Every extension crate of lithosd, linked with it.
use lithosd as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lithos_client::Trust;
use lithos_server::{Config, RunningServer};
use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};

fn controller(addr: &str, cert: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_controller"))
        .args(["--jid", "alice@localhost", "--address", addr])
        .arg("--pinned-cert")
        .arg(cert)
        .args(args)
        .env("LITHOS_PASSWORD", "alice-password")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_then_command() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(&format!(
        "domain = 'localhost'\ndata_dir = '{}'\n[things]\nlisten = ['127.0.0.1:0']\n\
         [http]\nlisten = []\n[c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = []\n{}",
        dir.path().display(),
        include_str!("../lithos-iot.toml")
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
    let addr = server.c2s_addrs[0].to_string();
    let cert = dir.path().join("tls/cert.pem");
    let run = |args: &'static [&'static str]| {
        let (addr, cert) = (addr.clone(), cert.clone());
        tokio::task::spawn_blocking(move || controller(&addr, &cert, args))
    };

    let (code, out) = run(&["flash", "SL-01-0A1B2C3D"]).await.unwrap();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("error item-not-found"), "{out}");
    let (code, out) = run(&["authorize", "SL-01-0A1B2C3D", "--key", "HELLO-THING-KEY"])
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");

    let flashes = Arc::new(AtomicUsize::new(0));
    let counter = flashes.clone();
    let (thing, _events) = ThingRuntime::new("SL-01-0A1B2C3D", "HELLO-THING-KEY", "localhost")
        .address(server.thing_addrs[0].to_string())
        .trust(Trust::pinned_file(&cert).unwrap())
        .on_action(
            lithos_things_demo::light::NS,
            "flash",
            action_handler(move |_| {
                let c = counter.clone();
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok(None)
                }
            }),
        )
        .start()
        .await
        .unwrap();
    let (code, out) = run(&["flash", "SL-01-0A1B2C3D", "--repeat", "3"])
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("executed in"), "{out}");
    assert_eq!(flashes.load(Ordering::SeqCst), 1);
    let (code, out) = run(&["on", "SL-01-0A1B2C3D"]).await.unwrap();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("service-unavailable"), "{out}");
    let (code, out) = run(&["locate", "SL-01-0A1B2C3D"]).await.unwrap();
    assert_eq!(
        (code, out.trim()),
        (0, "SL-01-0A1B2C3D: sl-01-0a1b2c3d@localhost")
    );
    thing.close().await;
    let (code, out) = run(&["flash", "SL-01-0A1B2C3D"]).await.unwrap();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("recipient-unavailable"), "{out}");
}
