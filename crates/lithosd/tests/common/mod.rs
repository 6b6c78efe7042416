//! The test kit, with every extension crate of `lithosd` linked, and helpers that run the
//! `lithosd` binary itself.

#![allow(dead_code, unused_imports)]

pub use lithos_testkit::RawClient as Client;
pub use lithos_testkit::*;
// Every extension crate of lithosd, linked with it.
use lithosd as _;

/// For tests that run the `lithosd` binary as a process.
pub mod process {
    use std::io::Write as _;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A loopback port nothing listens on now, and never handed out before in this test
    /// binary: a test that kills and restarts its server leaves its ports free for a moment,
    /// and a test beside it must not be given one of them then.
    pub fn free_port() -> u16 {
        static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if !given.contains(&port) {
                given.push(port);
                return port;
            }
        }
    }

    /// `lithosd --config CONFIG user add NAME`, the password on standard input.
    pub fn add_user(config: &Path, name: &str, password: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lithosd"))
            .arg("--config")
            .arg(config)
            .args(["user", "add", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `lithosd --config CONFIG`, its standard error appended to `log`.
    pub fn spawn(config: &Path, log: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_lithosd"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("lithosd starts")
    }

    /// Waits until something accepts connections on 127.0.0.1:`port`; panics after 30 s
    /// with the server's `log`.
    pub async fn wait_listening(port: u16, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "lithosd did not listen: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
