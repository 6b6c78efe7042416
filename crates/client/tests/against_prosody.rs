//! The client against Prosody, a third-party server: SCRAM over STARTTLS, a message each way,
//! a ping, and service discovery. Run by `tests/interop/run-prosody.sh` (in CI), which starts
//! Prosody and sets `LITHOS_PROSODY=host:port,cert.pem`; ignored otherwise.

use std::time::Duration;

use lithos_client::{ClientBuilder, Event, Mechanism, Trust};
use lithos_core::Jid;
use lithos_core::stanza::Presence;
use lithos_disco::DiscoExt;
use lithos_ping::PingExt;

const T: Duration = Duration::from_secs(10);

#[tokio::test]
#[ignore = "needs a running Prosody: tests/interop/run-prosody.sh"]
async fn talks_to_prosody() {
    let env = std::env::var("LITHOS_PROSODY").expect("LITHOS_PROSODY=host:port,cert.pem");
    let (addr, cert) = env
        .split_once(',')
        .expect("LITHOS_PROSODY=host:port,cert.pem");
    let builder = |jid: &str, pw: &str, mech: Mechanism| {
        ClientBuilder::new(jid, pw)
            .unwrap()
            .address(addr)
            .trust(Trust::pinned_file(cert).unwrap())
            .mechanisms(vec![mech])
    };
    let (juliet, _je) = builder(
        "juliet@localhost/balcony",
        "juliet-pw-1",
        Mechanism::ScramSha1,
    )
    .connect()
    .await
    .expect("SCRAM-SHA-1 over STARTTLS");
    let (romeo, mut re) = builder(
        "romeo@localhost/orchard",
        "romeo-pw-1",
        Mechanism::ScramSha1,
    )
    .connect()
    .await
    .expect("SCRAM-SHA-1 over STARTTLS");
    println!(
        "logged in to Prosody as {} and {}",
        juliet.jid(),
        romeo.jid()
    );
    // SCRAM-SHA-256 too, where the server offers it.
    match builder(
        "juliet@localhost/two",
        "juliet-pw-1",
        Mechanism::ScramSha256,
    )
    .connect()
    .await
    {
        Ok((c, _)) => {
            println!("SCRAM-SHA-256 accepted");
            c.close().await;
        }
        Err(lithos_client::ConnectError::NoMechanism(offered)) => {
            println!("SCRAM-SHA-256 not offered (offered: {offered:?})");
        }
        Err(e) => panic!("SCRAM-SHA-256: {e}"),
    }
    // A wrong password is refused with Prosody's SASL condition.
    let e = builder("juliet@localhost", "wrong", Mechanism::ScramSha1)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, lithos_client::ConnectError::Auth { .. }), "{e}");

    romeo.send_presence(Presence::available()).await.unwrap();
    juliet
        .send_message(
            Jid::new("romeo@localhost/orchard").unwrap(),
            "Wherefore art thou",
        )
        .await
        .unwrap();
    let m = tokio::time::timeout(T, async {
        loop {
            if let Some(Event::Message(m)) = re.recv().await {
                return m;
            }
        }
    })
    .await
    .expect("romeo receives juliet's message");
    assert_eq!(m.body().as_deref(), Some("Wherefore art thou"));
    println!("message delivered through Prosody");

    let rtt = juliet
        .ping(Jid::new("localhost").unwrap(), T)
        .await
        .unwrap();
    println!("ping to Prosody: {rtt:?}");
    // Prosody routes an iq to a full JID: romeo's client answers the ping itself.
    romeo
        .ping(Jid::new("juliet@localhost/balcony").unwrap(), T)
        .await
        .unwrap();
    let info = juliet
        .disco_info(Jid::new("localhost").unwrap(), T)
        .await
        .unwrap();
    assert!(info.has_feature("urn:xmpp:ping"), "{info:?}");
    println!("disco#info of Prosody: {} features", info.features.len());
    juliet.close().await;
    romeo.close().await;
}
