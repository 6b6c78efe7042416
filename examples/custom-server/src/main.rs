//! A custom Lithos server: the kernel, three extension crates (ping, disco, roster) and a
//! module defined right here. No presence, no offline storage, no version module: a server
//! includes what its binary links, because the kernel names no module.
//!
//! ```sh
//! cargo run -p lithos-example-custom-server -- modules     # lists disco, ping, roster, uptime
//! cargo run -p lithos-example-custom-server                # serves localhost, like lithosd
//! ```
//!
//! The command line is `lithosd`'s (`--config`, `user add`, `check-config`, ...).

use std::process::ExitCode;

mod uptime;

fn main() -> ExitCode {
    // Each extension crate's `link()` keeps it in the binary, and with it its registrations.
    lithos_ping::link();
    lithos_disco::link();
    lithos_roster::link();
    uptime::link();
    lithos_server::cli::main()
}
