//! `lithos-loadgen`: drives an XMPP server with many clients and measures it from outside.
//!
//! Built on the lithos-core codecs rather than the full client, so the generator stays cheap.
//! Scenarios print one JSON line each.
//!
//! - `connect`: N clients log in with bounded parallelism; reports logins/s and login latency
//!   percentiles and the server's CPU milliseconds per 1,000 logins; then, with every client
//!   idle, the server's resident memory per connection (read from `/proc/<pid>/status`, so
//!   the server must run on this machine).
//!
//! - `register`: creates the accounts by in-band registration (XEP-0077), for servers set up
//!   to allow it (the same way on every server compared).
//! - `messages`: P pairs, each sending M messages with W in flight (or at a fixed offered
//!   rate): delivered messages/s, one-way latency percentiles from a timestamp in the body,
//!   loss, duplicates and reordering (checked per pair, not assumed), the server's CPU
//!   milliseconds per 1,000 messages (from `/proc/<pid>/stat`), the generator's own, and
//!   the share of the whole machine's CPU that was busy meanwhile (`machine_busy_pct`, from
//!   `/proc/stat`: near 100, latency is queueing for a core).
//!
//! - `latency`: the `messages` exchange first at its maximum rate (not printed), then at
//!   half of it: latency p50/p99/p99.9 at that offered rate, printed with the maximum.
//! - `things` (Lithos only, the TUXP protocols): an operator authorizes N temperature
//!   reporters and a light, which register in band on the things port; the reporters send
//!   M reports each at QoS 0, then at QoS 1 with W in flight; the operator then executes C
//!   commands on the light, one at a time. Reports/s per level, server CPU per 1,000
//!   reports, command round trip p50/p99.
//! - `reports` (Lithos) and `mqtt` (an MQTT broker): the two sides of the ingest comparison
//!   (`benches/compare-mqtt.sh`): N devices send M readings each at QoS 0 or 1, W in flight,
//!   optionally with one consumer taking every reading live. Readings/s, server CPU per
//!   1,000, server memory per connected device, acknowledgement latency p50/p99.
//! - `muc`: N occupants in one room, S of them sending groupchat messages (W in flight
//!   each): delivered stanzas/s, server CPU per 1,000 delivered, latency, loss.
//! - `pubsub`: N subscribers of one node, the first publishing M items (W in flight):
//!   delivered notifications/s, server CPU per 1,000 delivered, publish-to-notification
//!   latency p50/p99, loss.
//! - `gateway` (Lithos only): commands one at a time to a light directly and to 255
//!   simulated LoRa nodes through a gateway run in this process (round trip p50/p99 and the
//!   hop's difference), commands/s with W in flight, then reports/s from 255 nodes through a
//!   gateway at QoS 1.
//!
//! `--websocket PATH` speaks XMPP over WebSocket (RFC 7395) to an HTTP listener instead of
//! over TCP. `--format bxmpp` speaks BXMPP instead of XML (Lithos only; the generator links `lithosd`
//! for its keyword tables, not to run a server).
//!
//! The generator raises its open-file limit to the hard limit, and past 20,000 connections
//! to a loopback server it opens them from 127.0.0.2, 127.0.0.3, ... (one source address
//! and destination have only the ephemeral port range, about 28,000 ports).
//!
//! Accounts `<prefix><i>` with password `--password` must exist (created with `register`,
//! or for example with `lithosd user add`).

// Every extension crate of lithosd, linked with it.
use lithosd as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use lithos_core::Payload;
use lithos_core::codec::StreamCodec;
use lithos_core::{Element, StreamEvent, StreamHeader, WireFormat, ns};
use lithos_server::sasl::scram::{ScramHash, client_final};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;
use tokio_util::either::Either;

mod conn;
mod fanout;
mod gateway;
mod ingest;
mod mqtt;
mod muc;
mod pubsub;
mod things;

// The generator shares the machine with the server it measures: every cycle it spends is
// one the server does not get, so it uses the allocator the server uses.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Creates the accounts by in-band registration (XEP-0077), for servers set up to allow it.
    Register(RegisterArgs),
    /// Pairs exchange messages; throughput, one-way latency, loss, duplicates, order, CPU.
    Messages(MessagesArgs),
    /// The message exchange at half of its measured maximum rate: latency under load
    Latency(MessagesArgs),
    /// Things report at QoS 0 and 1, and a controller commands one (Lithos only)
    Things(things::ThingsArgs),
    /// Things report at one QoS level, optionally followed live by their owner (Lithos only)
    Reports(things::ReportsArgs),
    /// MQTT devices publish readings to a broker, optionally with one consumer
    Mqtt(mqtt::MqttArgs),
    /// Fan-out through one multi-user chat room (XEP-0045)
    Muc(muc::MucArgs),
    /// Fan-out through one publish-subscribe node (XEP-0060)
    Pubsub(pubsub::PubsubArgs),
    /// Commands and reports through a LoRa gateway to 255 simulated nodes (Lithos only)
    Gateway(gateway::GatewayArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Mech {
    Plain,
    ScramSha1,
    ScramSha256,
}

/// Where and how to log in (shared by every scenario).
#[derive(clap::Args, Clone)]
struct Target {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:5222")]
    addr: SocketAddr,
    /// XMPP domain.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// Account name prefix (accounts are `<prefix>0`, `<prefix>1`, ...).
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
    /// The server's process id, to read its memory and CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Wire format (BXMPP: Lithos only).
    #[arg(long, value_enum, default_value_t = Format::Xml)]
    format: Format,
    /// Speak XMPP over WebSocket (RFC 7395) to this path of `--addr`, an HTTP listener:
    /// `/xmpp-websocket` for Lithos and Prosody, `/websocket` for ejabberd's usual set-up.
    #[arg(long)]
    websocket: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Xml,
    Bxmpp,
}

impl From<Format> for WireFormat {
    fn from(f: Format) -> WireFormat {
        match f {
            Format::Xml => WireFormat::Xml,
            Format::Bxmpp => WireFormat::Bxmpp,
        }
    }
}

#[derive(clap::Args, Clone)]
struct ConnectArgs {
    #[command(flatten)]
    target: Target,
    /// Number of clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Logins in progress at once.
    #[arg(long, default_value_t = 100)]
    in_flight: usize,
    /// Seconds to hold the idle connections before measuring memory: by default long enough
    /// for a server's sessions to go quiet and for its allocator to give back what the login
    /// burst freed (jemalloc, in `lithosd`, returns dirty pages over 10 s).
    #[arg(long, default_value_t = 12)]
    settle: u64,
}

#[derive(clap::Args, Clone)]
struct RegisterArgs {
    #[command(flatten)]
    target: Target,
    /// Number of accounts (`<prefix>0` ... `<prefix>N-1`), created by in-band registration.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Registrations in progress at once.
    #[arg(long, default_value_t = 20)]
    in_flight: usize,
}

#[derive(clap::Args, Clone)]
struct MessagesArgs {
    #[command(flatten)]
    target: Target,
    /// Pairs of clients; pair i is `<prefix>(2i)` sending to `<prefix>(2i+1)`.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Messages each pair exchanges.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Messages in flight per pair (sent, not yet received).
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Offer a fixed total rate (messages/s) instead of as fast as the window allows.
    #[arg(long)]
    rate: Option<f64>,
    /// XEP-0198 stream management on every client: senders ask for an acknowledgement
    /// every 5 stanzas, receivers answer the server's requests with their count.
    #[arg(long)]
    sm: bool,
}

/// How often a sender asks for an acknowledgement with `--sm`.
const SM_REQUEST_EVERY: usize = 5;

/// Turns stream management on for a logged-in client, without resumption (a benchmark never
/// resumes, and a held session would outlive the run); stanzas read meanwhile are dropped:
/// nobody sends to it yet.
async fn enable_sm(c: &mut Conn) -> Result<(), String> {
    send(
        c,
        lithos_sm::Enable {
            resume: false,
            max: None,
        }
        .into_element(),
    )
    .await?;
    loop {
        let el = next_element(c).await?;
        if lithos_sm::Enabled::matches(&el) {
            return Ok(());
        }
        if lithos_sm::Failed::matches(&el) {
            return Err(format!("stream management refused: {el}"));
        }
    }
}

pub(crate) type Io = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

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

pub(crate) use conn::Conn;

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
    c.reset_decoder();
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
    args: &Target,
    tls: Option<&tokio_rustls::TlsConnector>,
    i: usize,
) -> Result<Conn, String> {
    let mut c = secure(args, tls).await?;
    authenticate(args, &mut c, i).await?;
    Ok(c)
}

/// Connections per loopback source address. A source address and a destination share the
/// ephemeral port range (32768–60999 by default): about 28,000 connections.
const PER_SOURCE: usize = 20_000;

/// Connections this generator has opened, to spread them over source addresses.
static OPENED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The source address of the generator's `n`th connection to `server`: the kernel's choice
/// for the first [`PER_SOURCE`], then 127.0.0.2, 127.0.0.3, ... when the server is on
/// loopback (the whole of 127/8 is).
fn source_for(n: usize, server: SocketAddr) -> Option<SocketAddr> {
    let SocketAddr::V4(a) = server else {
        return None;
    };
    let k = n / PER_SOURCE;
    if !a.ip().is_loopback() || k == 0 || k > 253 {
        return None;
    }
    Some(SocketAddr::from(([127, 0, 0, 1 + k as u8], 0)))
}

/// Opens a TCP connection to `server` from the source [`source_for`] picks.
async fn dial(server: SocketAddr) -> std::io::Result<TcpStream> {
    let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match source_for(n, server) {
        None => TcpStream::connect(server).await,
        Some(source) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(source)?;
            socket.connect(server).await
        }
    }
}

/// A connection with TLS negotiated if asked (and the features read).
async fn secure(args: &Target, tls: Option<&tokio_rustls::TlsConnector>) -> Result<Conn, String> {
    let tcp = dial(args.addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    if let Some(path) = &args.websocket {
        if tls.is_some() {
            return Err("--tls with --websocket: wss is not supported".into());
        }
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}{path}", args.addr)
            .into_client_request()
            .map_err(|e| e.to_string())?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tokio_tungstenite::tungstenite::http::HeaderValue::from_static("xmpp"),
        );
        let (ws, _) = tokio_tungstenite::client_async(req, tcp)
            .await
            .map_err(|e| format!("WebSocket upgrade: {e}"))?;
        let mut c = Conn::Ws(Box::new(ws));
        open(&mut c, &args.domain).await?;
        return Ok(c);
    }
    let mut c = Conn::Stream(Box::new(Framed::new(
        Either::Left(tcp),
        StreamCodec::new(args.format.into()),
    )));
    open(&mut c, &args.domain).await?;
    if let Some(connector) = tls {
        send(&mut c, Element::bare("starttls", ns::XMPP_TLS)).await?;
        let p = next_element(&mut c).await?;
        if p.name() != "proceed" {
            return Err(format!("no proceed: {p}"));
        }
        let Conn::Stream(framed) = c else {
            return Err("STARTTLS on a WebSocket".into());
        };
        let Either::Left(tcp) = framed.into_inner() else {
            return Err("tls twice".into());
        };
        let name = rustls::pki_types::ServerName::try_from(args.domain.clone())
            .map_err(|e| e.to_string())?;
        let s = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        c = Conn::Stream(Box::new(Framed::new(
            Either::Right(s),
            StreamCodec::new(args.format.into()),
        )));
        open(&mut c, &args.domain).await?;
    }
    Ok(c)
}

/// SASL as `<prefix><i>`, then resource binding.
async fn authenticate(args: &Target, c: &mut Conn, i: usize) -> Result<(), String> {
    authenticate_as(args, c, &format!("{}{i}", args.prefix), "lg").await
}

/// SASL as `user` with `args.password`, then binding `resource`.
async fn authenticate_as(
    args: &Target,
    c: &mut Conn,
    user: &str,
    resource: &str,
) -> Result<(), String> {
    match args.mech {
        Mech::Plain => {
            send(
                c,
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
                c,
                Element::builder("auth", ns::XMPP_SASL)
                    .attr("mechanism", name)
                    .text(B64.encode(format!("n,,{bare}")))
                    .build(),
            )
            .await?;
            let ch = next_element(c).await?;
            let first = String::from_utf8(B64.decode(ch.text()).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            let (fin, _) =
                client_final(hash, &args.password, &bare, &first).map_err(|e| e.to_string())?;
            send(
                c,
                Element::builder("response", ns::XMPP_SASL)
                    .text(B64.encode(fin))
                    .build(),
            )
            .await?;
        }
    }
    let r = next_element(c).await?;
    if r.name() != "success" {
        return Err(format!("auth failed: {r}"));
    }
    let features = open(c, &args.domain).await?;
    send(
        c,
        Element::builder("iq", ns::JABBER_CLIENT)
            .attr("type", "set")
            .attr("id", "b")
            .child(
                Element::builder("bind", ns::XMPP_BIND)
                    .child(
                        Element::builder("resource", ns::XMPP_BIND)
                            .text(resource.to_string())
                            .build(),
                    )
                    .build(),
            )
            .build(),
    )
    .await?;
    let b = next_element(c).await?;
    if b.attr("type") != Some("result") {
        return Err(format!("bind failed: {b}"));
    }
    // Servers that still ask for an RFC 3921 session (ejabberd, Prosody offer it optional).
    if let Some(sess) = features.get_child("session", ns::XMPP_SESSION.as_ref())
        && !sess.has_child("optional", ns::XMPP_SESSION.as_ref())
    {
        send(
            c,
            Element::builder("iq", ns::JABBER_CLIENT)
                .attr("type", "set")
                .attr("id", "s")
                .child(Element::bare("session", ns::XMPP_SESSION))
                .build(),
        )
        .await?;
        next_element(c).await?;
    }
    Ok(())
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

/// This process's open-file limit, once raised.
static FILE_LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

async fn connect(args: ConnectArgs) {
    if let Some(&limit) = FILE_LIMIT.get()
        && args.clients as u64 + 64 > limit
    {
        eprintln!(
            "lithos-loadgen: {} clients need more open files than this process may have ({limit}; ulimit -Hn)",
            args.clients
        );
    }
    let tls = args.target.tls.then(connector);
    let before = args.target.server_pid.and_then(rss_kib);
    let cpu_before = args.target.server_pid.and_then(cpu_ms);
    let sem = Arc::new(Semaphore::new(args.in_flight));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let args = args.clone();
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = login(&args.target, tls.as_ref(), i).await;
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
    let cpu_logins = ms_per_1000(
        cpu_before,
        args.target.server_pid.and_then(cpu_ms),
        conns.len(),
    );
    latencies.sort_by(|a, b| a.total_cmp(b));
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = args.target.server_pid.and_then(rss_kib);
    let per_conn = match (before, after) {
        (Some(b), Some(a)) if !conns.is_empty() => Some((a as f64 - b as f64) / conns.len() as f64),
        _ => None,
    };
    println!(
        "{{\"scenario\":\"connect\",\"clients\":{},\"logged_in\":{},\"errors\":{},\"tls\":{},\"mech\":\"{}\",\"logins_per_s\":{:.1},\"login_p50_ms\":{:.2},\"login_p99_ms\":{:.2},\"server_cpu_ms_per_1000_logins\":{cpu_logins},\"server_rss_before_kib\":{},\"server_rss_after_kib\":{},\"rss_per_connection_kib\":{}{}}}",
        args.clients,
        conns.len(),
        errors,
        args.target.tls,
        match args.target.mech {
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

/// CPU time (user + system) of a process in milliseconds, from `/proc/<pid>/stat`.
fn cpu_ms(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1000.0 / clock_ticks())
}

/// CPU milliseconds per 1,000 units of work between two readings of [`cpu_ms`], as a JSON
/// number with two decimals (a run of a million messages resolves 0.01 ms per 1,000), or
/// `null` when a reading is missing or nothing was done.
fn ms_per_1000(before: Option<f64>, after: Option<f64>, done: usize) -> String {
    match (before, after) {
        (Some(b), Some(a)) if done > 0 => format!("{:.2}", (a - b) * 1000.0 / done as f64),
        _ => "null".into(),
    }
}

/// The machine's CPU time so far, in clock ticks, from the first line of /proc/stat:
/// (busy, total), where busy is everything but idle and I/O wait.
fn machine_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_ticks(s.lines().next()?)
}

fn parse_machine_ticks(line: &str) -> Option<(u64, u64)> {
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let v: Vec<u64> = f.take(8).map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let total: u64 = v.iter().sum();
    Some((total - v.get(3)? - v.get(4)?, total))
}

/// The share of the whole machine's CPU (every core) that was busy between two readings of
/// [`machine_ticks`], in percent: near 100 means the figures measured meanwhile were
/// queueing for a core, whatever the server did.
fn busy_pct(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((b0, t0), (b1, t1)) = (before?, after?);
    (t1 > t0).then(|| (b1 - b0) as f64 * 100.0 / (t1 - t0) as f64)
}

fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

async fn register(args: RegisterArgs) {
    let tls = args.target.tls.then(connector);
    let sem = Arc::new(Semaphore::new(args.in_flight));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(args.accounts);
    for i in 0..args.accounts {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let target = args.target.clone();
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            let r = async {
                let mut c = secure(&target, tls.as_ref()).await?;
                let q = Element::builder("query", "jabber:iq:register")
                    .child(
                        Element::builder("username", "jabber:iq:register")
                            .text(format!("{}{i}", target.prefix))
                            .build(),
                    )
                    .child(
                        Element::builder("password", "jabber:iq:register")
                            .text(target.password.clone())
                            .build(),
                    )
                    .build();
                send(
                    &mut c,
                    Element::builder("iq", ns::JABBER_CLIENT)
                        .attr("type", "set")
                        .attr("id", "r")
                        .child(q)
                        .build(),
                )
                .await?;
                let a = next_element(&mut c).await?;
                let _ = c.send(StreamEvent::Close).await;
                match a.attr("type") {
                    Some("result") => Ok(true),
                    // Already there: fine for a benchmark's accounts.
                    _ if a.to_string().contains("conflict") => Ok(false),
                    _ => Err(format!("registration refused: {a}")),
                }
            }
            .await;
            drop(permit);
            r
        }));
    }
    let (mut created, mut existed, mut errors, mut first_error) = (0, 0, 0, None);
    for t in tasks {
        match t.await.expect("task") {
            Ok(true) => created += 1,
            Ok(false) => existed += 1,
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    println!(
        "{{\"scenario\":\"register\",\"accounts\":{},\"created\":{created},\"existed\":{existed},\"errors\":{errors},\"seconds\":{:.1}{}}}",
        args.accounts,
        start.elapsed().as_secs_f64(),
        first_error.map_or(String::new(), |e| format!(",\"first_error\":{e:?}")),
    );
}

/// How long a pair may make no progress before the run gives up on it.
const STALL: Duration = Duration::from_secs(30);

/// What a pair's receiver saw.
#[derive(Default)]
struct Received {
    unique: usize,
    duplicates: usize,
    out_of_order: usize,
    latencies_us: Vec<u32>,
    last_at: Option<Instant>,
}

async fn messages(args: MessagesArgs) {
    run_messages(args, "messages", String::new(), true).await;
}

/// The `latency` scenario: the maximum rate first (not printed), then the same run at half
/// of it, printed with the maximum.
async fn latency(args: MessagesArgs) {
    let max = MessagesArgs {
        rate: None,
        ..args.clone()
    };
    let Some(rate) = run_messages(max, "latency", String::new(), false).await else {
        return;
    };
    let half = MessagesArgs {
        rate: Some(rate / 2.0),
        ..args
    };
    run_messages(
        half,
        "latency",
        format!(",\"max_msgs_per_s\":{rate:.0}"),
        true,
    )
    .await;
}

/// Runs the message exchange; prints its JSON line (`scenario`, then `extra`) when `print`;
/// gives the delivered messages per second.
async fn run_messages(
    args: MessagesArgs,
    scenario: &str,
    extra: String,
    print: bool,
) -> Option<f64> {
    let t = &args.target;
    let tls = t.tls.then(connector);
    let base = Instant::now();
    // Log every client in, a few at a time.
    let sem = Arc::new(Semaphore::new(50));
    let mut logins = Vec::new();
    let sm = args.sm;
    for i in 0..args.pairs * 2 {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let (target, tls) = (t.clone(), tls.clone());
        logins.push(tokio::spawn(async move {
            let r = login(&target, tls.as_ref(), i).await;
            drop(permit);
            let mut c = r?;
            if sm {
                enable_sm(&mut c).await?;
            }
            send(&mut c, Element::bare("presence", ns::JABBER_CLIENT)).await?;
            Ok::<_, String>(c)
        }));
    }
    let mut conns = Vec::new();
    for l in logins {
        match l.await.expect("task") {
            Ok(c) => conns.push(c),
            Err(e) => {
                println!("{{\"scenario\":\"{scenario}\",\"error\":{e:?}}}");
                return None;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = t.server_pid.and_then(cpu_ms);
    let own_before = cpu_ms(std::process::id());
    let machine_before = machine_ticks();
    let per_pair_rate = args.rate.map(|r| r / args.pairs as f64);
    let start = Instant::now();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    let mut it = conns.into_iter();
    for pair in 0..args.pairs {
        let (Some(a), Some(b)) = (it.next(), it.next()) else {
            break;
        };
        let to = format!("{}{}@{}/lg", t.prefix, 2 * pair + 1, t.domain);
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let progress = Arc::new(tokio::sync::Notify::new());
        let m = args.messages;
        // Receiver: checks order, duplicates and loss; records one-way latency.
        let (rc, rp) = (received.clone(), progress.clone());
        receivers.push(tokio::spawn(async move {
            let mut b = b;
            let mut seen = vec![false; m];
            let mut next = 0usize;
            let mut r = Received::default();
            // One stall watchdog for the whole run, not a timer armed per message: at
            // moderate rates a per-read timeout cost the generator a timer-wheel insert and
            // removal for nearly every message.
            let stall = tokio::time::sleep(STALL);
            tokio::pin!(stall);
            let mut last_progress = Instant::now();
            // With stream management: stanzas handled, for the server's requests.
            let mut handled = lithos_sm::Handled::default();
            while r.unique < m {
                let ev = tokio::select! {
                    ev = b.next() => match ev {
                        Some(Ok(StreamEvent::Element(e))) => e,
                        Some(Ok(_)) => continue,
                        _ => break,
                    },
                    () = &mut stall => {
                        if last_progress.elapsed() >= STALL {
                            break;
                        }
                        stall.as_mut().reset((last_progress + STALL).into());
                        continue;
                    }
                };
                if sm && lithos_sm::Request::matches(&ev) {
                    let ack = lithos_sm::Ack { h: handled.get() }.into_element();
                    if b.send(StreamEvent::Element(ack)).await.is_err() {
                        break;
                    }
                    continue;
                }
                if lithos_core::stanza::is_stanza(&ev) {
                    handled.count();
                }
                if ev.name() != "message" {
                    continue;
                }
                let body = ev.get_child("body", "jabber:client").map(|b| b.text());
                let Some((seq, ts)) = body.as_deref().and_then(|b| {
                    let (a, b) = b.split_once(' ')?;
                    Some((a.parse::<usize>().ok()?, b.parse::<u64>().ok()?))
                }) else {
                    continue;
                };
                let now = base.elapsed().as_micros() as u64;
                if seq >= m || seen[seq] {
                    r.duplicates += 1;
                    continue;
                }
                seen[seq] = true;
                if seq != next {
                    r.out_of_order += 1;
                }
                next = seq + 1;
                r.unique += 1;
                r.latencies_us.push(now.saturating_sub(ts) as u32);
                last_progress = Instant::now();
                r.last_at = Some(last_progress);
                rc.store(r.unique, std::sync::atomic::Ordering::Release);
                rp.notify_one();
            }
            rp.notify_one();
            // The last acknowledgement, then the stream's end: a server must not deliver
            // again (to offline storage, then to the next run) what this receiver handled.
            if sm {
                let ack = lithos_sm::Ack { h: handled.get() }.into_element();
                let _ = b.send(StreamEvent::Element(ack)).await;
                let _ = b.send(StreamEvent::Close).await;
            }
            r
        }));
        // Sender: at most `in_flight` unreceived, optionally paced.
        let window = args.in_flight;
        let pairs = args.pairs;
        senders.push(tokio::spawn(async move {
            let (mut sink, mut stream) = a.split();
            let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            // Pairs are staggered over the period, so the offered load is even rather than
            // one burst of every pair at each tick.
            let phase = pair as f64 / pairs as f64;
            let due = |seq: usize| {
                per_pair_rate
                    .map(|rate| start + Duration::from_secs_f64((seq as f64 + phase) / rate))
            };
            let in_window =
                |seq: usize| seq < received.load(std::sync::atomic::Ordering::Acquire) + window;
            let mut seq = 0;
            'run: while seq < m {
                while !in_window(seq) {
                    if tokio::time::timeout(STALL, progress.notified())
                        .await
                        .is_err()
                    {
                        break 'run;
                    }
                }
                if let Some(due) = due(seq) {
                    tokio::time::sleep_until(due.into()).await;
                }
                // Everything sendable now goes out in one write, as any client with a backlog
                // does: the message just due, and those the timer's 1 ms tick made due meanwhile.
                // Each is stamped as it is encoded, so latency runs from the write, not from
                // the schedule: a generator falling behind its schedule shows as a delivered
                // rate (`msgs_per_s`) below `offered_rate`, not as latency.
                loop {
                    let ts = base.elapsed().as_micros() as u64;
                    let msg = Element::builder("message", ns::JABBER_CLIENT)
                        .attr("to", to.clone())
                        .attr("type", "chat")
                        .child(
                            Element::builder("body", ns::JABBER_CLIENT)
                                .text(format!("{seq} {ts}"))
                                .build(),
                        )
                        .build();
                    if sink.feed(StreamEvent::Element(msg)).await.is_err() {
                        break 'run;
                    }
                    seq += 1;
                    if sm && seq % SM_REQUEST_EVERY == 0 {
                        let r = lithos_sm::Request.into_element();
                        if sink.feed(StreamEvent::Element(r)).await.is_err() {
                            break 'run;
                        }
                    }
                    let more =
                        seq < m && in_window(seq) && due(seq).is_none_or(|d| d <= Instant::now());
                    if !more {
                        break;
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            (sink, drain)
        }));
    }
    let mut keep = Vec::new();
    for s in senders {
        keep.push(s.await.expect("sender"));
    }
    let mut all = Received::default();
    let mut end = start;
    for r in receivers {
        let r = r.await.expect("receiver");
        all.unique += r.unique;
        all.duplicates += r.duplicates;
        all.out_of_order += r.out_of_order;
        all.latencies_us.extend(r.latencies_us);
        if let Some(l) = r.last_at {
            end = end.max(l);
        }
    }
    let cpu_after = t.server_pid.and_then(cpu_ms);
    let own_after = cpu_ms(std::process::id());
    let busy = busy_pct(machine_before, machine_ticks());
    let secs = (end - start).as_secs_f64().max(1e-9);
    let expected = args.pairs * args.messages;
    let mut lat: Vec<f64> = all
        .latencies_us
        .iter()
        .map(|&u| u as f64 / 1000.0)
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let cpu = ms_per_1000(cpu_before, cpu_after, all.unique);
    let own_cpu = ms_per_1000(own_before, own_after, all.unique);
    let busy = busy.map_or("null".into(), |b| format!("{b:.0}"));
    let rate = all.unique as f64 / secs;
    if print {
        println!(
            "{{\"scenario\":\"{scenario}\"{extra},\"sm\":{sm},\"pairs\":{},\"messages_per_pair\":{},\"in_flight\":{},\"offered_rate\":{},\"delivered\":{},\"lost\":{},\"duplicates\":{},\"out_of_order\":{},\"msgs_per_s\":{:.0},\"latency_p50_ms\":{:.3},\"latency_p99_ms\":{:.3},\"latency_p999_ms\":{:.3},\"latency_max_ms\":{:.3},\"server_cpu_ms_per_1000\":{cpu},\"loadgen_cpu_ms_per_1000\":{own_cpu},\"machine_busy_pct\":{busy}}}",
            args.pairs,
            args.messages,
            args.in_flight,
            args.rate.map_or("null".into(), |r| format!("{r:.0}")),
            all.unique,
            expected - all.unique,
            all.duplicates,
            all.out_of_order,
            rate,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 0.999),
            lat.last().copied().unwrap_or(0.0),
        );
    }
    for (mut sink, drain) in keep {
        let _ = sink.send(StreamEvent::Close).await;
        drain.abort();
    }
    Some(rate)
}

fn main() {
    // Every BXMPP table of the server's modules, so the TUXP stanzas can be written in BXMPP.
    let cli = Cli::parse();
    // One open file per client: take the hard limit (the soft one is often 1,024).
    match lithos_server::limits::raise_open_file_limit() {
        Ok(l) => {
            let _ = FILE_LIMIT.set(l.now);
        }
        Err(e) => eprintln!("lithos-loadgen: cannot raise the open-file limit: {e}"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match cli.scenario {
            Scenario::Connect(a) => connect(a).await,
            Scenario::Register(a) => register(a).await,
            Scenario::Messages(a) => messages(a).await,
            Scenario::Latency(a) => latency(a).await,
            Scenario::Things(a) => things::things(a).await,
            Scenario::Reports(a) => things::reports_scenario(a).await,
            Scenario::Mqtt(a) => mqtt::mqtt(a).await,
            Scenario::Muc(a) => muc::muc(a).await,
            Scenario::Pubsub(a) => pubsub::pubsub_scenario(a).await,
            Scenario::Gateway(a) => gateway::gateway_scenario(a).await,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_1000_is_null_without_a_reading_or_any_work() {
        assert_eq!(ms_per_1000(Some(100.0), Some(350.0), 50_000), "5.00");
        assert_eq!(ms_per_1000(None, Some(350.0), 50_000), "null");
        assert_eq!(
            ms_per_1000(Some(100.0), Some(350.0), 0),
            "null",
            "no division by zero"
        );
    }

    #[test]
    fn machine_ticks_count_everything_but_idle_and_io_wait_as_busy() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let line = "cpu  100 5 50 800 20 3 7 15 40 0";
        assert_eq!(parse_machine_ticks(line), Some((180, 1000)));
        assert_eq!(
            parse_machine_ticks("cpu0 1 2 3 4 5 6 7 8"),
            None,
            "a single core's line"
        );
        assert_eq!(parse_machine_ticks("cpu 1 2 x 4 5 6 7 8"), None);
        assert_eq!(busy_pct(Some((180, 1000)), Some((330, 1200))), Some(75.0));
        assert_eq!(
            busy_pct(Some((180, 1000)), Some((180, 1000))),
            None,
            "no time passed"
        );
        assert_eq!(busy_pct(None, Some((180, 1000))), None);
    }

    #[test]
    fn connections_spread_over_loopback_sources_past_the_port_range() {
        let local: SocketAddr = "127.0.0.1:5222".parse().expect("addr");
        assert_eq!(source_for(0, local), None);
        assert_eq!(source_for(PER_SOURCE - 1, local), None);
        assert_eq!(
            source_for(PER_SOURCE, local),
            Some("127.0.0.2:0".parse().expect("addr"))
        );
        assert_eq!(
            source_for(3 * PER_SOURCE + 5, local),
            Some("127.0.0.4:0".parse().expect("addr"))
        );
        let remote: SocketAddr = "192.0.2.1:5222".parse().expect("addr");
        assert_eq!(source_for(5 * PER_SOURCE, remote), None);
        let v6: SocketAddr = "[::1]:5222".parse().expect("addr");
        assert_eq!(source_for(5 * PER_SOURCE, v6), None);
    }

    #[tokio::test]
    async fn a_connection_from_a_second_source_reaches_the_server_from_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let server = listener.local_addr().expect("addr");
        OPENED.store(PER_SOURCE, std::sync::atomic::Ordering::Relaxed);
        let (client, accepted) = tokio::join!(dial(server), listener.accept());
        let _client = client.expect("dial");
        let (_, peer) = accepted.expect("accept");
        assert_eq!(peer.ip(), std::net::IpAddr::from([127, 0, 0, 2]));
    }

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
