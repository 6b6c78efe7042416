//! The `lithosd` command line, as a library so that a custom server binary gets the same
//! commands: its `main` links its extension crates and calls [`main`].

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};
use crate::module::{self, ModuleHost};
use crate::sasl::Credentials;
use crate::storage::StorageError;

/// Lithos XMPP server.
#[derive(Debug, Parser)]
#[command(
    name = "lithosd",
    version,
    about = "Lithos XMPP server for the Internet of Things"
)]
pub struct Cli {
    /// Configuration file (TOML). Without one, the defaults serve `localhost` on 127.0.0.1.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` in the configuration).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// What to do; without a command, run the server.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Administration commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage accounts.
    User {
        /// The account operation.
        #[command(subcommand)]
        action: UserAction,
    },
    /// List the modules this server includes and whether each is enabled, then the extension
    /// crates linked into it.
    Modules,
    /// Check the configuration (and that the enabled modules start) without serving.
    CheckConfig,
}

/// Account operations. Passwords are read from standard input, never from the command line.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account (JID or local name); the password is read from standard input.
    Add {
        /// The account, `name` or `name@domain`.
        jid: String,
        /// Create it even though an account of that name was deleted recently (its
        /// tombstone stands: `[accounts] tombstone_secs`).
        #[arg(long)]
        reuse_deleted_name: bool,
    },
    /// Change an account's password, read from standard input.
    Passwd {
        /// The account.
        jid: String,
    },
    /// Delete an account and everything stored for it: things it owns become unowned and
    /// their credentials are revoked, grants and follows it held go, and its name stays
    /// taken for `[accounts] tombstone_secs`. With the server running, prefer in-band
    /// removal (XEP-0077), which also ends its sessions at once.
    Del {
        /// The account.
        jid: String,
    },
    /// List accounts.
    List,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lithosd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), String> {
    let mut config = match &cli.config {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    match cli.command {
        None => {
            init_logging(&config)?;
            raise_open_files();
            rt.block_on(async {
                let server = crate::RunningServer::start(config)
                    .await
                    .map_err(|e| e.to_string())?;
                server.run_until_signal().await;
                Ok(())
            })
        }
        Some(Command::Modules) => {
            for r in module::registered() {
                let on = config.module_enabled(r.name, r.enabled_by_default);
                println!(
                    "{:<12} {:<8} {}",
                    r.name,
                    if on { "enabled" } else { "disabled" },
                    r.description
                );
            }
            println!(
                "\nkernel:\n{:<12} {:<8} XEP-0198: stream management, acknowledgements and resumption ([stream_management])",
                "sm",
                if config.stream_management.enabled {
                    "enabled"
                } else {
                    "disabled"
                }
            );
            println!(
                "{:<12} {:<8} XEP-0352: client state indication, presence held while a client is inactive ([csi])",
                "csi",
                if config.csi.enabled {
                    "enabled"
                } else {
                    "disabled"
                }
            );
            println!(
                "{:<12} {:<8} XEP-0114: external components, {} configured ([components])",
                "component",
                if config.components.listen.is_empty() {
                    "disabled"
                } else {
                    "enabled"
                },
                config.components.secrets.len()
            );
            println!("\nlinked extension crates:");
            for c in lithos_core::extension::linked() {
                println!("{:<26} {:<8} {}", c.name, c.version, c.description);
            }
            Ok(())
        }
        Some(Command::CheckConfig) => {
            config.validate().map_err(|e| e.to_string())?;
            let host = ModuleHost::start(&config).map_err(|e| e.to_string())?;
            println!(
                "configuration OK: domain {}, modules: {}",
                config.domain,
                host.names().join(", ")
            );
            Ok(())
        }
        Some(Command::User { action }) => rt.block_on(user(&config, action)),
    }
}

/// Every connection holds an open file: take the hard limit, and say what it is.
fn raise_open_files() {
    match crate::limits::raise_open_file_limit() {
        Ok(l) if l.now < 4096 => tracing::warn!(
            limit = l.now,
            "the open-file limit allows only about this many connections; raise the hard limit (ulimit -Hn, LimitNOFILE=)"
        ),
        Ok(l) => tracing::info!(limit = l.now, was = l.was, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

fn init_logging(config: &Config) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .map_err(|e| format!("log.level: {e}"))?;
    // Colours only for a person at a terminal, not in log files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    let r = match config.log.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    r.map_err(|e| format!("cannot set up logging: {e}"))
}

/// `name` or `name@domain` → the account name.
fn account_name(config: &Config, jid: &str) -> Result<String, String> {
    let full = if jid.contains('@') {
        jid.to_string()
    } else {
        format!("{jid}@{}", config.domain)
    };
    let j = lithos_core::Jid::new(&full).map_err(|e| format!("{jid}: {e}"))?;
    let domain = lithos_core::Jid::new(&config.domain).map_err(|e| e.to_string())?;
    if j.domain() != domain.domain() || j.resource().is_some() {
        return Err(format!("{jid}: not an account of {}", config.domain));
    }
    j.local()
        .map(str::to_string)
        .ok_or_else(|| format!("{jid}: no user name"))
}

fn read_password(prompt: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let p = rpassword::prompt_password(prompt).map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Repeat: ").map_err(|e| e.to_string())?;
        if p != again {
            return Err("the passwords differ".into());
        }
        Ok(p)
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password: {e}"))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

async fn user(config: &Config, action: UserAction) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    let store = config.open_database().await.map_err(|e| e.to_string())?;
    use crate::storage::AccountStore;
    match action {
        UserAction::Add {
            jid,
            reuse_deleted_name,
        } => {
            let name = account_name(config, &jid)?;
            if let Some(ms) = store.tombstone(&name).await.map_err(|e| e.to_string())? {
                if !reuse_deleted_name {
                    return Err(format!(
                        "{name}@{} was deleted {}; its name stays taken for [accounts] tombstone_secs so that nobody inherits what others granted it (--reuse-deleted-name creates it anyway)",
                        config.domain,
                        lithos_core::datetime::format(ms)
                    ));
                }
                store
                    .remove_tombstone(&name)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let pw = read_password(&format!("Password for {name}@{}: ", config.domain))?;
            let creds = Credentials::new(&pw, config.accounts.pbkdf2_iterations)
                .map_err(|e| e.to_string())?;
            match store.create_account(&name, &creds).await {
                Ok(()) => {
                    println!("created {name}@{}", config.domain);
                    Ok(())
                }
                Err(StorageError::AlreadyExists) => {
                    Err(format!("{name}@{} already exists", config.domain))
                }
                Err(e) => Err(e.to_string()),
            }
        }
        UserAction::Passwd { jid } => {
            let name = account_name(config, &jid)?;
            if !store
                .account_exists(&name)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("{name}@{} does not exist", config.domain));
            }
            let pw = read_password(&format!("New password for {name}@{}: ", config.domain))?;
            let creds = Credentials::new(&pw, config.accounts.pbkdf2_iterations)
                .map_err(|e| e.to_string())?;
            store
                .set_credentials(&name, &creds)
                .await
                .map_err(|e| e.to_string())?;
            println!("password changed for {name}@{}", config.domain);
            Ok(())
        }
        UserAction::Del { jid } => {
            let name = account_name(config, &jid)?;
            match store.delete_account(&name, &config.domain).await {
                Ok(()) => {
                    println!("deleted {name}@{}", config.domain);
                    Ok(())
                }
                Err(StorageError::NotFound) => {
                    Err(format!("{name}@{} does not exist", config.domain))
                }
                Err(e) => Err(e.to_string()),
            }
        }
        UserAction::List => {
            let mut out = std::io::stdout().lock();
            for u in store.list_accounts().await.map_err(|e| e.to_string())? {
                let _ = writeln!(out, "{u}@{}", config.domain);
            }
            Ok(())
        }
    }
}
