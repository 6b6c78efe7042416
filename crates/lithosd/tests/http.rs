//! The HTTP listener: `/health` and `/metrics` (the OpenMetrics text format), whose counters
//! move with the traffic.

mod common;

use common::{TestServer, stanza};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` over a fresh connection: the status, the headers (lowercase names) and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<(String, String)>, String) {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// Checks the exposition's shape (OpenMetrics: `# TYPE`/`# HELP` lines, samples
/// `name{labels} value`, `# EOF` last) and returns its samples.
fn samples(text: &str) -> Vec<(String, f64)> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "{text}");
    let mut out = Vec::new();
    for l in &lines[..lines.len() - 1] {
        if let Some(comment) = l.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap();
            assert!(["TYPE", "HELP", "UNIT"].contains(&kind), "{l}");
            continue;
        }
        let (name, value) = l
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {l}"));
        let metric = name.split('{').next().unwrap();
        assert!(
            metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{l}"
        );
        if let Some(labels) = name.strip_prefix(metric) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{l}"
            );
        }
        out.push((
            name.to_string(),
            value.parse().unwrap_or_else(|_| panic!("{l}")),
        ));
    }
    out
}

fn value(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} not in {samples:?}"))
        .1
}

#[tokio::test]
async fn health_and_metrics_follow_the_traffic() {
    let s = TestServer::start("").await;
    s.add_user("juliet", "j").await;
    s.add_user("romeo", "r").await;
    let http = s.http_addr();

    let (status, headers, body) = get(http, "/health").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers.contains(&("content-type".into(), "application/json".into())),
        "{headers:?}"
    );
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    let (status, headers, body) = get(http, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("application/openmetrics-text")),
        "{headers:?}"
    );
    let before = samples(&body);
    let received = "lithos_stanzas_received_total{kind=\"message\"}";
    let routed = "lithos_stanzas_routed_total{kind=\"message\"}";
    assert_eq!(value(&before, "lithos_sessions"), 0.0);

    let mut j = s.login("juliet", "j", "balcony").await;
    let mut r = s.login("romeo", "r", "orchard").await;
    for i in 0..3 {
        j.send(stanza(&format!(
            "<message to='romeo@localhost/orchard' type='chat' id='m{i}'><body>{i}</body></message>"
        )))
        .await;
    }
    r.recv_where(|e| e.attr("id") == Some("m2")).await;

    let after = samples(&get(http, "/metrics").await.2);
    assert_eq!(value(&after, received) - value(&before, received), 3.0);
    assert!(value(&after, routed) - value(&before, routed) >= 3.0);
    assert_eq!(value(&after, "lithos_sessions"), 2.0);
    assert!(value(&after, "lithos_connections") >= 2.0);

    let (status, _, _) = get(http, "/nowhere").await;
    assert_eq!(status, 404);
}

/// `docs/grafana-dashboard.json` queries only metrics the server exposes (with every module
/// of `lithosd` linked, as here): a renamed metric breaks this test, not a dashboard.
#[tokio::test]
async fn the_grafana_dashboard_queries_what_metrics_exposes() {
    let s = TestServer::start("").await;
    let exposed = get(s.http_addr(), "/metrics").await.2;
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana-dashboard.json"
    ))
    .unwrap();
    let mut names: Vec<&str> = dashboard
        .match_indices("lithos_")
        .map(|(i, _)| {
            let rest = &dashboard[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|n| *n != "lithos_")
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 8, "{names:?}");
    for n in names {
        let sample = exposed
            .lines()
            .any(|l| l.starts_with(n) && l[n.len()..].starts_with(['{', ' ']));
        assert!(
            sample,
            "the dashboard queries {n}, which /metrics does not show:\n{exposed}"
        );
    }
}

/// The console's page at `/` (with the served domain, a content security policy and the
/// bundled script it loads), and the API refused over plain HTTP unless configured.
#[tokio::test]
async fn the_console_is_served_and_the_api_wants_https() {
    let s = TestServer::start("").await;
    let http = s.http_addr();
    let (status, headers, body) = get(http, "/").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<meta name=\"lithos-domain\" content=\"localhost\">"),
        "{body}"
    );
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-security-policy" && v.contains("default-src 'self'")),
        "{headers:?}"
    );
    let (status, headers, body) = get(http, "/console/console.js").await;
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/javascript"))
    );
    assert!(body.contains("urn:lithos:tuxp:directory"));

    // From loopback, plain HTTP counts as encrypted: the API asks for credentials.
    let (status, headers, body) = get(http, "/api/me").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        headers.iter().any(|(k, _)| k == "www-authenticate"),
        "{headers:?}"
    );
    let (status, _, body) = get(http, "/api/no-such-route").await;
    assert_eq!(status, 404, "{body}");

    // Otherwise plain HTTP gets no API, credentials or not.
    let s =
        TestServer::start("[http]\nlisten = ['127.0.0.1:0']\nloopback_is_secure = false\n").await;
    let (status, _, body) = get(s.http_addr(), "/api/me").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("HTTPS"), "{body}");
}
