//! # lithos-testservices
//!
//! Real services for tests, started from their Debian packages: today a PostgreSQL server
//! (and a second one with TLS, [`postgres_tls`]).
//!
//! [`postgres`] starts one server per test process, the first time a test asks: `initdb` and
//! `postgres` from `/usr/lib/postgresql/<version>/bin` (the `postgresql` package), in a
//! temporary directory, listening on a free loopback port only, as an unprivileged user when
//! the tests run as root (PostgreSQL refuses root). Each call creates a fresh database on it
//! and gives its URL, so tests do not see each other's rows. A watcher process stops the
//! server and removes its directory when the test process ends, however it ends.
//!
//! When no server can start (no package, say), [`postgres`] says why; [`postgres_or_skip`]
//! prints that and gives `None`, so the test can return early, unless
//! `LITHOS_REQUIRE_POSTGRES=1` is set (CI), in which case it panics: a missing server then
//! fails the run instead of passing it silently.
//!
//! ```no_run
//! let Some(url) = lithos_testservices::postgres_or_skip("my_test") else { return };
//! // connect to `url`…
//! ```

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running server: where it listens and who may connect.
struct Server {
    port: u16,
    user: String,
    bin: PathBuf,
    /// With TLS: the CA certificate (PEM) that signed the server's.
    ca: Option<PathBuf>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static TLS_SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The URL of a fresh, empty database (UTF-8, `C` collation) on this process's PostgreSQL
/// server, started now if it is not running yet.
pub fn postgres() -> Result<String, String> {
    let server = SERVER
        .get_or_init(|| start(false))
        .as_ref()
        .map_err(Clone::clone)?;
    database(server)
}

/// As [`postgres`], on a second server that speaks TLS (`ssl = on`, a certificate for
/// `127.0.0.1` and `localhost` signed by a CA made for it): the URL (which asks for
/// `sslmode=require`) and the CA certificate's PEM file.
pub fn postgres_tls() -> Result<(String, PathBuf), String> {
    let server = TLS_SERVER
        .get_or_init(|| start(true))
        .as_ref()
        .map_err(Clone::clone)?;
    let url = database(server)?;
    Ok((
        format!("{url}?sslmode=require"),
        server.ca.clone().expect("a TLS server has its CA"),
    ))
}

fn database(server: &Server) -> Result<String, String> {
    let name = format!(
        "lithos_test_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    run(Command::new(server.bin.join("psql")).args([
        "-q",
        "-h",
        "127.0.0.1",
        "-p",
        &server.port.to_string(),
        "-U",
        &server.user,
        "-d",
        "postgres",
        "-c",
        &format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        ),
    ]))?;
    Ok(format!(
        "postgresql://{}@127.0.0.1:{}/{name}",
        server.user, server.port
    ))
}

/// As [`postgres`], for a test that cannot run without the server: prints why it is skipped
/// and gives `None`; panics instead when `LITHOS_REQUIRE_POSTGRES=1`.
pub fn postgres_or_skip(test: &str) -> Option<String> {
    match postgres() {
        Ok(url) => Some(url),
        Err(why) if std::env::var("LITHOS_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!(
                "{test}: PostgreSQL is required (LITHOS_REQUIRE_POSTGRES=1) but did not start: {why}"
            )
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: no PostgreSQL server could be started: {why}");
            None
        }
    }
}

/// Where Debian's package puts the server's programs: the newest version installed.
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (install Debian's postgresql package)"))?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no server under /usr/lib/postgresql/*/bin".to_string())
}

/// The user the server runs as: this one, or `postgres` (else `nobody`) when this is root.
fn server_user() -> Result<Option<(String, u32, u32)>, String> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, name]).output().ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        if let (Some(uid), Some(gid)) = (id("-u"), id("-g")) {
            return Ok(Some((name.to_string(), uid, gid)));
        }
    }
    Err("running as root, and neither user postgres nor nobody exists".into())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// A CA and a server certificate it signed, for `127.0.0.1` and `localhost`: the CA's PEM,
/// the server's certificate PEM and its key PEM.
fn certificates() -> Result<(String, String, String), String> {
    let e = |e: rcgen::Error| e.to_string();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Lithos test CA");
    let ca_key = rcgen::KeyPair::generate().map_err(e)?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).map_err(e)?;
    let key = rcgen::KeyPair::generate().map_err(e)?;
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
        .map_err(e)?
        .signed_by(&key, &ca)
        .map_err(e)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
}

fn start(tls: bool) -> Result<Server, String> {
    let bin = bin_dir()?;
    let owner = server_user()?;
    // Kept on disk past this function: the watcher removes it when the process ends.
    let dir = tempfile::Builder::new()
        .prefix("lithos-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    let user = "lithos".to_string();
    if let Some((_, uid, gid)) = &owner {
        std::os::unix::fs::chown(&dir, Some(*uid), Some(*gid)).map_err(|e| e.to_string())?;
    }
    let as_owner = |program: &Path| {
        let mut c = Command::new(program);
        if let Some((_, uid, gid)) = &owner {
            std::os::unix::process::CommandExt::uid(&mut c, *uid);
            std::os::unix::process::CommandExt::gid(&mut c, *gid);
        }
        c
    };
    run(as_owner(&bin.join("initdb"))
        .args([
            "--auth=trust",
            "--no-locale",
            "--encoding=UTF8",
            "-U",
            &user,
            "-D",
        ])
        .arg(&data)
        .env("HOME", &dir))?;
    let mut tls_args: Vec<String> = Vec::new();
    let mut ca_path = None;
    if tls {
        let (ca, cert, key) = certificates()?;
        let write = |name: &str, text: &str, mode: u32| -> Result<PathBuf, String> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(|e| e.to_string())?;
            if let Some((_, uid, gid)) = &owner {
                std::os::unix::fs::chown(&path, Some(*uid), Some(*gid))
                    .map_err(|e| e.to_string())?;
            }
            Ok(path)
        };
        ca_path = Some(write("ca.pem", &ca, 0o644)?);
        let cert = write("server.crt", &cert, 0o644)?;
        // PostgreSQL refuses a key others can read.
        let key = write("server.key", &key, 0o600)?;
        tls_args = vec![
            "-c".into(),
            "ssl=on".into(),
            "-c".into(),
            format!("ssl_cert_file={}", cert.display()),
            "-c".into(),
            format!("ssl_key_file={}", key.display()),
        ];
    }
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    if let Some((_, uid, gid)) = &owner {
        std::os::unix::fs::chown(dir.join("server.log"), Some(*uid), Some(*gid))
            .map_err(|e| e.to_string())?;
    }
    let child = as_owner(&bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-c", "listen_addresses=127.0.0.1", "-c"])
        .arg(format!("port={port}"))
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        // Tests want durability semantics, not speed on a shared disk; keep fsync, but one
        // test process needs few connections.
        .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
        .args(&tls_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    // The watcher: once this process is gone, stop the server and remove its directory.
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -INT {pg} 2>/dev/null; \
             for i in $(seq 1 50); do kill -0 {pg} 2>/dev/null || break; sleep 0.1; done; \
             kill -KILL {pg} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            pg = child.id(),
            dir = dir.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the watcher: {e}"))?;
    let ready = Instant::now();
    loop {
        let probe = run(Command::new(bin.join("pg_isready")).args([
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]));
        if probe.is_ok() {
            break;
        }
        if ready.elapsed() > Duration::from_secs(30) {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(format!(
                "postgres did not accept connections within 30 s: {log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Server {
        port,
        user,
        bin,
        ca: ca_path,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_databases_on_one_server() {
        let Some(a) = super::postgres_or_skip("two_databases_on_one_server") else {
            return;
        };
        let b = super::postgres().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("postgresql://lithos@127.0.0.1:"), "{a}");
    }
}
