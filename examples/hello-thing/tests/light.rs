//! The hello-thing program against lithosd: it registers once (credentials saved), runs
//! what it is sent, and stops on `<stop/>` after answering.

// Every extension crate of lithosd, linked with it.
use lithosd as _;
use std::process::Stdio;
use std::time::Duration;

use lithos_client::{ClientBuilder, Trust};
use lithos_core::{Jid, Payload};
use lithos_server::{Config, RunningServer};
use lithos_tuxp_execution::ControllerExt;

#[tokio::test(flavor = "multi_thread")]
async fn registers_runs_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(&format!(
        "domain = 'localhost'\ndata_dir = '{}'\n[things]\nlisten = ['127.0.0.1:0']\n\
         [http]\nlisten = []\n[c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = []\n[modules.operator]\noperators = ['alice']\n",
        dir.path().display()
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
    let (alice, _e) = ClientBuilder::new("alice@localhost/app", "alice-password")
        .unwrap()
        .address(server.c2s_addrs[0].to_string())
        .trust(Trust::pinned_file(&cert).unwrap())
        .connect()
        .await
        .unwrap();
    lithos_tuxp_operator::OperatorExt::authorize_thing(
        &alice,
        "SL-01-0A1B2C3D",
        "HELLO-THING-KEY",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let creds_file = dir.path().join("light.credentials");
    let start_thing = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hello-thing"))
            .args(["--id", "SL-01-0A1B2C3D", "--address"])
            .arg(server.thing_addrs[0].to_string())
            .arg("--pinned-cert")
            .arg(&cert)
            .arg("--credentials-file")
            .arg(&creds_file)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let thing_jid = Jid::new("sl-01-0a1b2c3d@localhost").unwrap();
    let online = |server: &RunningServer| {
        server
            .handle()
            .sessions()
            .is_online("sl-01-0a1b2c3d@localhost")
    };
    for round in 0..2 {
        // The second round logs in with the saved credentials (the authorization was
        // used up: registering again would be refused).
        let mut thing = start_thing();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !online(&server) {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: not online"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let flash = lithos_things_demo::light::Flash { repeat: 2 }.into_element();
        alice
            .execute(thing_jid.clone(), flash, Duration::from_secs(5))
            .await
            .unwrap();
        alice
            .execute(
                thing_jid.clone(),
                lithos_tuxp_edge::Stop.into_element(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), thing.wait())
            .await
            .expect("the thing stops")
            .unwrap();
        assert!(status.success());
        let out = thing.stdout.take();
        drop(out);
        assert!(creds_file.exists());
        while online(&server) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
