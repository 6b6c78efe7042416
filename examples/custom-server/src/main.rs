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

// Links the `lithos-*` crates of this package's `[dependencies]`: ping, disco, roster.
lithos_server::link_extensions!();

fn main() -> ExitCode {
    lithos_server::cli::main()
}
