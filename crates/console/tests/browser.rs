//! The console in a real browser: Debian's headless Chromium, driven over WebDriver
//! (chromedriver), against a server with HTTPS on its `[http]` listener. The operator logs
//! in, sees a simulated light come online, presses `flash` and sees *executed*; the light
//! tells of an event and the notification shows; a thermometer's report appears in its plot
//! within a second of being sent; the operator authorizes a new thing id and sees it
//! pending; the light goes away, the console shows it offline, and the next `flash` ends in
//! the stanza error. A screenshot is saved for CI (`target/ci-artifacts/console.png`).
//!
//! Needs `chromium` and `chromium-driver` (Debian packages). Without them the test says so
//! and stops, unless `LITHOS_REQUIRE_BROWSER` is set (CI sets it), where it fails.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use lithos_core::Element;
use lithos_core::codec::WireFormat;
use lithos_testkit::things::{self, KEY, T};
use lithos_tuxp_notification::NotifierExt;
use lithos_tuxp_operator::OperatorExt;
use lithos_tuxp_report::{Qos, ReporterExt};

// The modules the console talks to, linked into this test's server.
use lithos_console as _;
use lithos_tuxp_directory as _;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver and a session of headless Chromium, or `None` (after saying why) when they
/// are not installed and the browser is not required.
async fn browser() -> Option<(Driver, Browser)> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !std::path::Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "{} not installed (Debian packages chromium and chromium-driver): the console's browser test cannot run",
            missing.join(" and ")
        );
        if std::env::var_os("LITHOS_REQUIRE_BROWSER").is_some() {
            panic!("{why}");
        }
        eprintln!("SKIPPED: {why}");
        return None;
    }
    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = tempfile_dir();
    let caps: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    // The test server's certificate is self-signed.
                    "--ignore-certificate-errors",
                    format!("--user-data-dir={profile}"),
                ],
            }
        }))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(b) => return Some((driver, b)),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no WebDriver session with chromedriver: {e}"),
        }
    }
}

/// A fresh directory for Chromium's profile (left to the OS's temporary cleanup).
fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!(
        "lithos-console-chromium-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

/// Polls `f` every 50 ms until it gives `Some`, or panics with `what` after `within`.
async fn until<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Types `text` into the element `css` finds.
async fn type_into(b: &Browser, css: &str, text: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

/// Clicks the element `css` finds.
async fn click(b: &Browser, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Clicks the card's `flash` and waits for the outcome's text once its result is no longer
/// `pending` nor one of `not`.
async fn flash_outcome(b: &Browser, card: &str, not: &[&str]) -> String {
    click(b, &format!("{card} button[data-action='flash']")).await;
    until(Duration::from_secs(10), "flash's outcome", || async {
        let r = attr(b, &format!("{card} .outcome"), "data-result").await?;
        (r != "pending" && !not.contains(&r.as_str())).then_some(())?;
        text(b, &format!("{card} .outcome")).await
    })
    .await
}

/// The text of the first element `css` finds, if any.
async fn text(b: &Browser, css: &str) -> Option<String> {
    let e = b.find(Locator::Css(css)).await.ok()?;
    e.text().await.ok()
}

async fn attr(b: &Browser, css: &str, name: &str) -> Option<String> {
    let e = b.find(Locator::Css(css)).await.ok()?;
    e.attr(name).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_commands_a_light_and_plots_a_thermometer() {
    let Some((_driver, b)) = browser().await else {
        return;
    };
    let s = things::start(
        "[http]\nlisten = ['127.0.0.1:0']\ntls = true\n[modules.report]\nhistory_days = 1\n",
    )
    .await;
    let (alice, _ae) = s.user("alice", WireFormat::Xml).await;
    // A light, online before the operator logs in.
    let (light_id, light, flashes) = things::light(&s, &alice, "0C0C0C01", WireFormat::Xml).await;
    let light_name = light.jid().local().unwrap().to_string();
    // A thermometer with a report in its history already.
    let thermo_id = "STR-01-0C0C0C02";
    alice.authorize_thing(thermo_id, KEY, T).await.unwrap();
    let (thermo, _te) = things::runtime(&s, thermo_id, WireFormat::Xml)
        .start()
        .await
        .unwrap();
    let thermo_name = thermo.jid().local().unwrap().to_string();
    let celsius = |v: &str| {
        Element::builder("celsius-degree", lithos_things_demo::temperature::NS)
            .attr("value", v.to_string())
            .build()
    };
    thermo
        .report(celsius("19.5"), Qos::AtLeastOnce)
        .await
        .unwrap();

    let url = format!("https://localhost:{}/", s.http_addr().port());
    b.goto(&url).await.unwrap();
    type_into(&b, "#jid", "alice@localhost").await;
    type_into(&b, "#password", "alice-password").await;
    click(&b, "#login").await;
    let status = until(Duration::from_secs(10), "the login", || async {
        text(&b, "#status")
            .await
            .filter(|s| s == "connected" || s.contains("failed"))
    })
    .await;
    assert_eq!(status, "connected");

    // The light is listed, online, with its model's actions.
    let card = format!(".thing[data-name='{light_name}']");
    let state = until(Duration::from_secs(5), "the light's card", || async {
        text(&b, &format!("{card} .state")).await
    })
    .await;
    assert_eq!(state, "online");
    let h3 = text(&b, &format!("{card} h3")).await.unwrap();
    assert_eq!(h3, light_id);

    // flash: executed, and the light really flashed.
    let outcome = flash_outcome(&b, &card, &[]).await;
    assert!(
        outcome.starts_with("flash: executed in ") && outcome.ends_with(" ms"),
        "{outcome}"
    );
    assert_eq!(flashes.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The light tells of an event: the notification shows as it arrives.
    light
        .notify(
            Element::builder("switch-state-changed", lithos_things_demo::light::NS)
                .attr("previous", "0")
                .attr("current", "2")
                .build(),
            true,
        )
        .await
        .unwrap();
    let note = until(Duration::from_secs(5), "the notification", || async {
        text(&b, "#notifications li").await
    })
    .await;
    assert!(
        note.contains(&light_id)
            && note.contains("switch-state-changed")
            && note.contains("current=2"),
        "{note}"
    );

    // A report the thermometer sends now is plotted within a second.
    let plot = format!(
        ".thing[data-name='{thermo_name}'] .plot[data-key='{{{}}}celsius-degree']",
        lithos_things_demo::temperature::NS
    );
    let before: usize = until(
        Duration::from_secs(5),
        "the history in the plot",
        || async {
            let n: usize = attr(&b, &plot, "data-points").await?.parse().ok()?;
            (n >= 1).then_some(n)
        },
    )
    .await;
    let sent = Instant::now();
    thermo
        .report(celsius("21.25"), Qos::AtLeastOnce)
        .await
        .unwrap();
    until(Duration::from_secs(3), "the live point", || async {
        let n: usize = attr(&b, &plot, "data-points").await?.parse().ok()?;
        (n > before).then_some(())
    })
    .await;
    let took = sent.elapsed();
    eprintln!("report to plotted point: {took:?}");
    assert_eq!(attr(&b, &plot, "data-last").await.as_deref(), Some("21.25"));
    assert!(
        took < Duration::from_secs(1),
        "the point appeared {took:?} after the report"
    );

    // The operator authorizes a new thing and sees it pending.
    type_into(&b, "#auth-thing-id", "SL-01-0C0C0C09").await;
    type_into(&b, "#auth-key", "a-registration-key").await;
    click(&b, "#authorize-form button").await;
    until(
        Duration::from_secs(5),
        "the pending authorization",
        || async { text(&b, "#pending li[data-thing-id='SL-01-0C0C0C09']").await },
    )
    .await;

    let shot = b.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("console.png"), shot).unwrap();

    // The light goes away: the console shows it offline, and flash ends in the error.
    light.close().await;
    until(Duration::from_secs(5), "the light offline", || async {
        (text(&b, &format!("{card} .state")).await.as_deref() == Some("offline")).then_some(())
    })
    .await;
    let outcome = flash_outcome(&b, &card, &["executed"]).await;
    assert!(
        outcome.starts_with("flash: error recipient-unavailable"),
        "{outcome}"
    );
    assert_eq!(flashes.load(std::sync::atomic::Ordering::SeqCst), 1);

    b.close().await.unwrap();
    drop(s);
}
