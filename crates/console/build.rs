//! Bundles the console's scripts and styles (`web/`) with npm at build time: `npm ci` from
//! the lockfile, then esbuild, in a copy under `OUT_DIR` (the source tree stays untouched).
//! The bundle is embedded in the crate, so a machine that only runs `lithosd` needs no
//! Node.js. Without npm (or when it fails), the console is a page saying how to build it, and
//! cargo prints a warning.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest.join("web");
    for f in ["package.json", "package-lock.json", "src", "index.html"] {
        println!("cargo:rerun-if-changed=web/{f}");
    }
    println!("cargo:rerun-if-env-changed=LITHOS_CONSOLE_NPM");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let bundle = out.join("console");
    std::fs::create_dir_all(&bundle).unwrap();
    match build(&web, &out.join("web"), &bundle) {
        Ok(()) => {}
        Err(why) => {
            println!(
                "cargo:warning=the web console was not bundled ({why}); lithosd will serve a page saying so. Install Node.js and npm, then rebuild."
            );
            std::fs::write(bundle.join("console.js"), PLACEHOLDER_JS).unwrap();
            std::fs::write(bundle.join("console.css"), "").unwrap();
        }
    }
}

const PLACEHOLDER_JS: &str = "document.addEventListener('DOMContentLoaded',function(){\
var s=document.getElementById('status');\
if(s){s.textContent='This lithosd was built without Node.js and npm, so the console\\'s scripts are missing: install them and rebuild.';s.dataset.kind='error';}\
var b=document.getElementById('login');if(b){b.disabled=true;}});";

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn build(web: &Path, work: &Path, bundle: &Path) -> Result<(), String> {
    let npm = std::env::var("LITHOS_CONSOLE_NPM").unwrap_or_else(|_| "npm".to_string());
    for f in ["package.json", "package-lock.json"] {
        std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
        std::fs::copy(web.join(f), work.join(f)).map_err(|e| format!("{f}: {e}"))?;
    }
    let _ = std::fs::remove_dir_all(work.join("src"));
    copy_dir(&web.join("src"), &work.join("src")).map_err(|e| format!("web/src: {e}"))?;
    // Installed once per lockfile: a rebuild after a script change only bundles again.
    let stamp = work.join("node_modules/.lithos-lock");
    let lock = std::fs::read(web.join("package-lock.json")).map_err(|e| e.to_string())?;
    if std::fs::read(&stamp).ok().as_deref() != Some(&lock[..]) {
        run(Command::new(&npm)
            .args(["ci", "--no-audit", "--no-fund", "--prefer-offline"])
            .current_dir(work))?;
        std::fs::write(&stamp, &lock).map_err(|e| e.to_string())?;
    }
    run(Command::new(&npm)
        .args(["run", "build"])
        .env("OUT", bundle)
        .current_dir(work))?;
    for f in ["console.js", "console.css"] {
        if !bundle.join(f).exists() {
            return Err(format!("the build wrote no {f}"));
        }
    }
    Ok(())
}
