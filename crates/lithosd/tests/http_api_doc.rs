//! `docs/http-api.md`, run: every `curl` example in it, in order, against a real `lithosd`
//! process over HTTPS, with a light and a thermometer online. Each example's status must be
//! the one its last comment gives (`# 200`), and its JSON answer must have the keys of the
//! JSON block the document shows after it (at the top level, and in the first element of
//! each list both have). Among them: no credentials get 401, a non-administrator on an
//! administrative route 403, a token acts as its account, a command is executed by the
//! light.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::process;
use lithos_client::{ClientBuilder, Trust};
use lithos_core::Element;
use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};
use lithos_tuxp_operator::OperatorExt;
use lithos_tuxp_report::{Qos, ReporterExt};

const KEY: &str = "REGISTRATION-KEY";
const T: Duration = Duration::from_secs(10);

/// One example: the shell command, the status it documents, the JSON it shows (if any).
#[derive(Debug)]
struct Example {
    command: String,
    status: u16,
    json: Option<serde_json::Value>,
}

/// The examples of the document: `sh` blocks that run curl and end with `# <status>`, each
/// with the `json` block that follows it before the next `sh` block.
fn examples(doc: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let lang = match line.strip_prefix("```") {
            Some(l) if !l.is_empty() => l.trim(),
            _ => continue,
        };
        let mut body = Vec::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push(l);
        }
        match lang {
            "sh" if body.iter().any(|l| l.trim_start().starts_with("curl ")) => {
                let status = body
                    .iter()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("# "))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("an example without its status: {body:?}"));
                let command = body
                    .iter()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n");
                out.push(Example {
                    command,
                    status,
                    json: None,
                });
            }
            "json" => {
                if let Some(last) = out.last_mut().filter(|e| e.json.is_none()) {
                    let text = body.join("\n");
                    last.json = Some(
                        serde_json::from_str(&text.replace('…', ""))
                            .unwrap_or_else(|e| panic!("the document's JSON: {e}\n{text}")),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

/// The keys of an object, and of the first object of each list it holds.
fn shape(v: &serde_json::Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    if let Some(o) = v.as_object() {
        for (k, v) in o {
            keys.insert(k.clone());
            if let Some(first) = v.as_array().and_then(|a| a.first()) {
                for inner in shape(first) {
                    keys.insert(format!("{k}[].{inner}"));
                }
            }
        }
    }
    keys
}

/// Compares the shapes where both have a list's first element.
fn same_shape(doc: &serde_json::Value, got: &serde_json::Value) -> Result<(), String> {
    let (d, g) = (shape(doc), shape(got));
    let top = |s: &BTreeSet<String>| -> BTreeSet<String> {
        s.iter().filter(|k| !k.contains("[].")).cloned().collect()
    };
    if top(&d) != top(&g) {
        return Err(format!(
            "keys {:?} documented, {:?} answered",
            top(&d),
            top(&g)
        ));
    }
    for k in d.iter().filter(|k| k.contains("[].")) {
        let list = k.split("[].").next().unwrap();
        let got_has_items = g.iter().any(|x| x.starts_with(&format!("{list}[].")));
        if got_has_items && !g.contains(k) {
            return Err(format!("{k} documented, not answered: {g:?}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_curl_examples_work() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/http-api.md"),
    )
    .unwrap();
    let examples = examples(&doc);
    assert!(examples.len() >= 15, "{} examples", examples.len());
    assert!(
        std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "curl is needed (Debian package curl)"
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (http, c2s, things) = (
        process::free_port(),
        process::free_port(),
        process::free_port(),
    );
    let config = dir.join("lithos.toml");
    std::fs::write(
        &config,
        format!(
            "domain = 'localhost'\ndata_dir = '{}'\n[things]\nlisten = ['127.0.0.1:{things}']\n\
             [c2s]\nlisten = ['127.0.0.1:{c2s}']\ndirect_tls = []\n\
             [http]\nlisten = ['127.0.0.1:{http}']\ntls = true\nadmins = ['alice']\n\
             [modules.operator]\noperators = ['alice']\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    process::add_user(&config, "alice", "alice-password");
    process::add_user(&config, "bob", "bob-password");
    let log = dir.join("lithosd.log");
    let mut child = process::spawn(&config, &log);
    process::wait_listening(things, &log).await;
    process::wait_listening(http, &log).await;
    let cert = dir.join("data/tls/cert.pem");
    let trust = Trust::pinned_file(&cert).unwrap();

    // A light that flashes, and a thermometer with one report.
    let (alice, _ae) = ClientBuilder::new("alice@localhost/setup", "alice-password")
        .unwrap()
        .address(format!("127.0.0.1:{c2s}"))
        .trust(trust.clone())
        .connect()
        .await
        .unwrap();
    let runtime = |id: &str| {
        ThingRuntime::new(id, KEY, "localhost")
            .address(format!("127.0.0.1:{things}"))
            .trust(trust.clone())
    };
    alice
        .authorize_thing("SL-01-0F0F0F01", KEY, T)
        .await
        .unwrap();
    alice
        .authorize_thing("STR-01-0F0F0F02", KEY, T)
        .await
        .unwrap();
    let flashes = Arc::new(AtomicUsize::new(0));
    let counter = flashes.clone();
    let (light, _le) = runtime("SL-01-0F0F0F01")
        .on_action(
            lithos_things_demo::light::NS,
            "flash",
            action_handler(move |_| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(None)
                }
            }),
        )
        .start()
        .await
        .unwrap();
    let (sensor, _se) = runtime("STR-01-0F0F0F02").start().await.unwrap();
    sensor
        .report(
            Element::builder("celsius-degree", lithos_things_demo::temperature::NS)
                .attr("value", "21.5")
                .build(),
            Qos::AtLeastOnce,
        )
        .await
        .unwrap();

    let mut env: Vec<(String, String)> = vec![
        ("LITHOS".into(), format!("https://localhost:{http}")),
        ("CERT".into(), cert.display().to_string()),
        ("THING".into(), light.jid().local().unwrap().to_string()),
        ("SENSOR".into(), sensor.jid().local().unwrap().to_string()),
    ];
    let body_file = dir.join("body.json");
    for ex in &examples {
        let command = format!(
            "{} -o '{}' -w '%{{http_code}}'",
            ex.command,
            body_file.display()
        );
        let _ = std::fs::remove_file(&body_file);
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&command)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        let status: u16 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "{}\n{}\n{}",
                    ex.command,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let body = std::fs::read_to_string(&body_file).unwrap_or_default();
        assert_eq!(
            status,
            ex.status,
            "{}\nanswered {body}\nlog: {}",
            ex.command,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        if let Some(doc_json) = &ex.json {
            let got: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {body}", ex.command));
            if let Err(e) = same_shape(doc_json, &got) {
                panic!("{}\n{e}\nanswered {body}", ex.command);
            }
            // The token the example issued serves the examples after it.
            if let Some(t) = got.get("token").and_then(|t| t.as_str()) {
                env.push(("TOKEN".into(), t.to_string()));
                env.push(("TOKEN_ID".into(), got["id"].as_str().unwrap().to_string()));
            }
            if got.get("outcome").is_some() {
                assert_eq!(got["outcome"], "executed", "{body}");
            }
        }
    }
    assert_eq!(
        flashes.load(Ordering::SeqCst),
        1,
        "the command flashed the light"
    );

    // /metrics counted it: the command's round trip, the two things' sessions, the storage.
    let out = std::process::Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&cert)
        .arg(format!("https://localhost:{http}/metrics"))
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&out.stdout);
    for line in [
        "lithos_command_round_trip_seconds_count 1",
        "lithos_sessions_by_listener{listener=\"thing\",format=\"xml\"} 2",
        "lithos_commands_total{outcome=\"forwarded\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    let storage_ops: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lithos_storage_operation_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no storage histogram in\n{metrics}"));
    assert!(storage_ops > 10.0, "{storage_ops}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn shapes_compare_keys_and_first_items() {
    let doc: serde_json::Value = serde_json::json!({"a": 1, "l": [{"x": 1, "y": 2}]});
    assert!(same_shape(&doc, &serde_json::json!({"a": 2, "l": []})).is_ok());
    assert!(same_shape(&doc, &serde_json::json!({"a": 2, "l": [{"x": 1, "y": 3}]})).is_ok());
    assert!(same_shape(&doc, &serde_json::json!({"a": 2, "l": [{"x": 1}]})).is_err());
    assert!(same_shape(&doc, &serde_json::json!({"l": []})).is_err());
}
