//! `lithos-loadgen`: drives an XMPP server with many clients and measures it from outside.
//!
//! Built on the lithos-core codecs rather than the full client, so the generator stays cheap.
//! Scenarios print one JSON line each.
//!
//! - `connect`: N clients log in with bounded parallelism; reports logins/s and login latency
//!   percentiles; then, with every client idle, the server's resident memory per connection
//!   (read from `/proc/<pid>/status`, so the server must run on this machine).
//!
//! Accounts `<prefix><i>` with password `--password` must exist (for example created with
//! `lithosd user add`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use lithos_core::{Element, StreamEvent, StreamHeader, XmlCodec, ns};
use lithos_server::sasl::scram::{ScramHash, client_final};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;
use tokio_util::either::Either;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Parser)]
#[command(name = "lithos-loadgen", about = "Load generator for XMPP servers")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N clients log in and stay idle; logins/s, latency, server memory per connection.
    Connect(ConnectArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Mech {
    Plain,
    ScramSha1,
    ScramSha256,
}

#[derive(clap::Args, Clone)]
struct ConnectArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:5222")]
    addr: SocketAddr,
    /// XMPP domain.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// Number of clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Logins in progress at once.
    #[arg(long, default_value_t = 100)]
    in_flight: usize,
    /// Account name prefix (accounts are <prefix>0, <prefix>1, ...).
    #[arg(long, default_value = "user")]
    prefix: String,
    /// Password of every account.
    #[arg(long, default_value = "pw")]
    password: String,
    /// SASL mechanism.
    #[arg(long, value_enum, default_value_t = Mech::Plain)]
    mech: Mech,
    /// Negotiate STARTTLS (the server's certificate is not checked: a benchmark tool).
    #[arg(long)]
    tls: bool,
    /// The server's process id, to read its memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds to hold the idle connections before measuring memory.
    #[arg(long, default_value_t = 3)]
    settle: u64,
}

type Io = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

type Conn = Framed<Io, XmlCodec>;

async fn next_element(c: &mut Conn) -> Result<Element, String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), c.next()).await {
            Err(_) => return Err("timeout".into()),
            Ok(None) => return Err("closed".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(StreamEvent::Element(e)))) => return Ok(e),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn open(c: &mut Conn, domain: &str) -> Result<Element, String> {
    c.codec_mut().reset_decoder();
    c.send(StreamEvent::from(
        StreamHeader::client().to(domain.to_string()),
    ))
    .await
    .map_err(|e| e.to_string())?;
    next_element(c).await
}

async fn send(c: &mut Conn, el: Element) -> Result<(), String> {
    c.send(StreamEvent::Element(el))
        .await
        .map_err(|e| e.to_string())
}

/// Logs one client in and binds a resource.
async fn login(
    args: &ConnectArgs,
    tls: Option<&tokio_rustls::TlsConnector>,
    i: usize,
) -> Result<Conn, String> {
    let tcp = TcpStream::connect(args.addr)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let mut c = Framed::new(Either::Left(tcp), XmlCodec::new());
    open(&mut c, &args.domain).await?;
    if let Some(connector) = tls {
        send(&mut c, Element::bare("starttls", ns::XMPP_TLS)).await?;
        let p = next_element(&mut c).await?;
        if p.name() != "proceed" {
            return Err(format!("no proceed: {p}"));
        }
        let Either::Left(tcp) = c.into_inner() else {
            return Err("tls twice".into());
        };
        let name = rustls::pki_types::ServerName::try_from(args.domain.clone())
            .map_err(|e| e.to_string())?;
        let s = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        c = Framed::new(Either::Right(s), XmlCodec::new());
        open(&mut c, &args.domain).await?;
    }
    let user = format!("{}{i}", args.prefix);
    match args.mech {
        Mech::Plain => {
            send(
                &mut c,
                Element::builder("auth", ns::XMPP_SASL)
                    .attr("mechanism", "PLAIN")
                    .text(B64.encode(format!("\0{user}\0{}", args.password)))
                    .build(),
            )
            .await?;
        }
        Mech::ScramSha1 | Mech::ScramSha256 => {
            let (hash, name) = match args.mech {
                Mech::ScramSha1 => (ScramHash::Sha1, "SCRAM-SHA-1"),
                _ => (ScramHash::Sha256, "SCRAM-SHA-256"),
            };
            let nonce: [u8; 12] = rand::random();
            let bare = format!("n={user},r={}", B64.encode(nonce));
            send(
                &mut c,
                Element::builder("auth", ns::XMPP_SASL)
                    .attr("mechanism", name)
                    .text(B64.encode(format!("n,,{bare}")))
                    .build(),
            )
            .await?;
            let ch = next_element(&mut c).await?;
            let first = String::from_utf8(B64.decode(ch.text()).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            let (fin, _) =
                client_final(hash, &args.password, &bare, &first).map_err(|e| e.to_string())?;
            send(
                &mut c,
                Element::builder("response", ns::XMPP_SASL)
                    .text(B64.encode(fin))
                    .build(),
            )
            .await?;
        }
    }
    let r = next_element(&mut c).await?;
    if r.name() != "success" {
        return Err(format!("auth failed: {r}"));
    }
    open(&mut c, &args.domain).await?;
    send(
        &mut c,
        Element::builder("iq", ns::JABBER_CLIENT)
            .attr("type", "set")
            .attr("id", "b")
            .child(Element::bare("bind", ns::XMPP_BIND))
            .build(),
    )
    .await?;
    let b = next_element(&mut c).await?;
    if b.attr("type") != Some("result") {
        return Err(format!("bind failed: {b}"));
    }
    Ok(c)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn connect(args: ConnectArgs) {
    let tls = args.tls.then(connector);
    let before = args.server_pid.and_then(rss_kib);
    let sem = Arc::new(Semaphore::new(args.in_flight));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let args = args.clone();
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = login(&args, tls.as_ref(), i).await;
            drop(permit);
            r.map(|c| (c, t.elapsed()))
        }));
    }
    let mut conns = Vec::with_capacity(args.clients);
    let mut latencies = Vec::with_capacity(args.clients);
    let mut errors = 0usize;
    let mut first_error = None;
    for t in tasks {
        match t.await.expect("task") {
            Ok((c, d)) => {
                conns.push(c);
                latencies.push(d.as_secs_f64() * 1000.0);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = args.server_pid.and_then(rss_kib);
    let per_conn = match (before, after) {
        (Some(b), Some(a)) if !conns.is_empty() => Some((a as f64 - b as f64) / conns.len() as f64),
        _ => None,
    };
    println!(
        "{{\"scenario\":\"connect\",\"clients\":{},\"logged_in\":{},\"errors\":{},\"tls\":{},\"mech\":\"{}\",\"logins_per_s\":{:.1},\"login_p50_ms\":{:.2},\"login_p99_ms\":{:.2},\"server_rss_before_kib\":{},\"server_rss_after_kib\":{},\"rss_per_connection_kib\":{}{}}}",
        args.clients,
        conns.len(),
        errors,
        args.tls,
        match args.mech {
            Mech::Plain => "PLAIN",
            Mech::ScramSha1 => "SCRAM-SHA-1",
            Mech::ScramSha256 => "SCRAM-SHA-256",
        },
        conns.len() as f64 / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        before.map_or("null".into(), |v| v.to_string()),
        after.map_or("null".into(), |v| v.to_string()),
        per_conn.map_or("null".into(), |v| format!("{v:.2}")),
        first_error.map_or(String::new(), |e| format!(",\"first_error\":{e:?}")),
    );
    drop(conns);
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match cli.scenario {
            Scenario::Connect(a) => connect(a).await,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_picks_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn rss_of_this_process_is_readable() {
        let kib = rss_kib(std::process::id()).expect("VmRSS in /proc/self/status");
        assert!(kib > 100, "implausible RSS {kib} KiB");
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
