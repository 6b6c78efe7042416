//! The two programs against an in-process lithosd: send-message asks, echo-bot answers.

// Every extension crate of lithosd, linked with it.
use lithosd as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use lithos_server::{Config, RunningServer};

#[tokio::test(flavor = "multi_thread")]
async fn send_message_gets_the_bots_echo() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(&format!(
        "domain = 'localhost'\ndata_dir = '{}'\n[things]\nlisten = ['127.0.0.1:0']\n[http]\nlisten = []\n[c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = []\n",
        dir.path().display()
    ))
    .unwrap();
    let server = RunningServer::start(config).await.unwrap();
    let accounts = &server.handle().storage().accounts;
    for (u, p) in [("bot", "bot-password"), ("alice", "alice-password")] {
        let c = lithos_server::sasl::Credentials::new(p, 4096).unwrap();
        accounts.create_account(u, &c).await.unwrap();
    }
    let addr = server.c2s_addrs[0].to_string();
    let cert = dir.path().join("tls/cert.pem");

    let mut bot = Command::new(env!("CARGO_BIN_EXE_echo-bot"))
        .args([
            "--jid",
            "bot@localhost/echo",
            "--address",
            &addr,
            "--max-messages",
            "1",
        ])
        .arg("--pinned-cert")
        .arg(&cert)
        .env("LITHOS_PASSWORD", "bot-password")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the bot is online before writing to it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.handle().sessions().is_online("bot@localhost") {
        assert!(
            std::time::Instant::now() < deadline,
            "the bot did not come online"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = tokio::task::spawn_blocking({
        let (addr, cert) = (addr.clone(), cert.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_send-message"))
                .args([
                    "--jid",
                    "alice@localhost",
                    "--address",
                    &addr,
                    "--wait-reply",
                    "10",
                ])
                .arg("--pinned-cert")
                .arg(&cert)
                .args(["bot@localhost", "is anybody there?"])
                .env("LITHOS_PASSWORD", "alice-password")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "is anybody there?"
    );
    let status = tokio::task::spawn_blocking(move || bot.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "the bot stops after --max-messages");

    // Without a trusted certificate, the error says what to do.
    let out = Command::new(env!("CARGO_BIN_EXE_send-message"))
        .args([
            "--jid",
            "alice@localhost",
            "--address",
            &addr,
            "bot@localhost",
            "x",
        ])
        .env("LITHOS_PASSWORD", "alice-password")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--pinned-cert"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
