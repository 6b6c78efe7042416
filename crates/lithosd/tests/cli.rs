//! The `lithosd` command line as an administrator uses it: accounts, modules, configuration
//! checks. Passwords go through standard input, never the command line.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `lithosd --data-dir DIR ARGS` with `stdin` as standard input; returns success and
/// everything it printed.
fn lithosd(dir: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lithosd"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lithosd runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn account_lifecycle() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

    let (ok, out) = lithosd(d, &["user", "add", "alice"], "first password\n");
    assert!(ok, "{out}");
    assert!(out.contains("created alice@localhost"), "{out}");
    let (ok, out) = lithosd(d, &["user", "add", "Alice@localhost"], "again\n");
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = lithosd(d, &["user", "add", "bob@elsewhere.example"], "x\n");
    assert!(!ok && out.contains("not an account of localhost"), "{out}");
    let (ok, out) = lithosd(d, &["user", "add", "carol"], "\n");
    assert!(!ok && out.contains("password"), "an empty password: {out}");
    lithosd(d, &["user", "add", "dave"], "dave's password\n");

    let (ok, out) = lithosd(d, &["user", "list"], "");
    assert!(ok, "{out}");
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(names, ["alice@localhost", "dave@localhost"], "{out}");

    let (ok, out) = lithosd(d, &["user", "passwd", "alice"], "second password\n");
    assert!(ok, "{out}");
    let (ok, out) = lithosd(d, &["user", "passwd", "nobody"], "pw\n");
    assert!(!ok && out.contains("does not exist"), "{out}");

    let (ok, out) = lithosd(d, &["user", "del", "alice"], "");
    assert!(ok && out.contains("deleted alice@localhost"), "{out}");
    let (ok, out) = lithosd(d, &["user", "del", "alice"], "");
    assert!(!ok && out.contains("does not exist"), "{out}");
    let (_, out) = lithosd(d, &["user", "list"], "");
    assert_eq!(out.trim(), "dave@localhost");

    // A deleted name stays taken (issue 14, defect 8), unless the administrator says so.
    let (ok, out) = lithosd(
        d,
        &["user", "add", "alice"],
        "third password
",
    );
    assert!(!ok && out.contains("was deleted"), "{out}");
    let (ok, out) = lithosd(
        d,
        &["user", "add", "alice", "--reuse-deleted-name"],
        "third password
",
    );
    assert!(ok && out.contains("created alice@localhost"), "{out}");
}

#[test]
fn modules_and_configuration_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (ok, out) = lithosd(d, &["modules"], "");
    assert!(ok, "{out}");
    let rows: Vec<(&str, &str)> = out
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap(), w.next().unwrap())
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("blocking", "enabled"),
            ("caps", "enabled"),
            ("carbons", "enabled"),
            ("concentrator", "enabled"),
            ("console", "enabled"),
            ("directory", "enabled"),
            ("disco", "enabled"),
            ("execution", "enabled"),
            ("friends", "enabled"),
            ("ibtr", "enabled"),
            ("location", "enabled"),
            ("mam", "disabled"),
            ("muc", "enabled"),
            ("notification", "enabled"),
            ("offline", "enabled"),
            ("operator", "enabled"),
            ("pep", "enabled"),
            ("ping", "enabled"),
            ("presence", "enabled"),
            ("private", "enabled"),
            ("pubsub", "enabled"),
            ("qos", "enabled"),
            ("register", "disabled"),
            ("report", "enabled"),
            ("roster", "enabled"),
            ("signaling", "enabled"),
            ("vcard", "enabled"),
            ("version", "enabled"),
        ],
        "{out}"
    );

    let cfg = d.join("lithos.toml");
    let check = |text: &str| {
        std::fs::write(&cfg, text).unwrap();
        lithosd(d, &["--config", cfg.to_str().unwrap(), "check-config"], "")
    };
    let (ok, out) = check("domain = 'example.com'\n[modules.register]\nenabled = true\n");
    assert!(ok && out.contains("register"), "{out}");
    let (ok, out) = check("domian = 'example.com'\n");
    assert!(!ok && out.contains("domian"), "a typo is an error: {out}");
    let (ok, out) =
        check("[modules.presence]\nenabled = true\n[modules.roster]\nenabled = false\n");
    assert!(!ok && out.contains("roster"), "a missing dependency: {out}");
    let (ok, out) = check("[modules.offline]\nmax_per_account = 'lots'\n");
    assert!(!ok && out.contains("max_per_account"), "{out}");

    for sub in [
        &["--help"][..],
        &["user", "--help"],
        &["user", "add", "--help"],
    ] {
        let (ok, out) = lithosd(d, sub, "");
        assert!(ok && out.contains("Usage"), "{sub:?}: {out}");
    }
}

/// Every crate under `xeps/` that this package depends on is linked, with what it registers:
/// a dependency the program never names would otherwise be dropped without a word.
#[test]
fn every_extension_dependency_is_linked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: lithos_server::toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let deps = manifest["dependencies"].as_table().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out) = lithosd(tmp.path(), &["modules"], "");
    assert!(ok, "{out}");
    let linked: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("linked extension crates:"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("../../xeps")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let crate_manifest: lithos_server::toml::Table = text.parse().unwrap();
        let name = crate_manifest["package"]["name"].as_str().unwrap();
        if deps.contains_key(name) {
            assert!(linked.contains(&name), "{name} is not linked: {out}");
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} extension dependencies found");
}
