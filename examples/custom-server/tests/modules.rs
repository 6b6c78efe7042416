//! The custom server includes exactly the modules its binary links: the kernel names none.

use std::process::Command;

fn run(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_custom-server"))
        .args(["--data-dir", dir.to_str().unwrap()])
        .args(args)
        .output()
        .expect("the example binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn lists_the_linked_modules_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = run(&["modules"], dir.path());
    assert!(ok, "{text}");
    let names: Vec<&str> = text
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["disco", "ping", "roster", "uptime"], "{text}");
    for linked in ["lithos-disco", "lithos-ping", "lithos-roster"] {
        assert!(text.contains(linked), "{linked} missing: {text}");
    }
    assert!(!text.contains("lithos-offline"), "{text}");
}

#[test]
fn configuring_a_module_it_lacks_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("custom.toml");
    std::fs::write(&cfg, "[modules.offline]\nmax_per_account = 5\n").unwrap();
    let (ok, text) = run(
        &["--config", cfg.to_str().unwrap(), "check-config"],
        dir.path(),
    );
    assert!(!ok, "{text}");
    assert!(text.contains("offline"), "{text}");

    std::fs::write(&cfg, "[modules.uptime]\nenabled = true\n").unwrap();
    let (ok, text) = run(
        &["--config", cfg.to_str().unwrap(), "check-config"],
        dir.path(),
    );
    assert!(ok, "{text}");
    assert!(text.contains("uptime"), "{text}");
}
