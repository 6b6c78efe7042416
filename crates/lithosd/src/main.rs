//! `lithosd`: the Lithos server with every module of the workspace linked in.
//!
//! The kernel (`lithos-server`) names no module; this binary links the extension crates, whose
//! modules register themselves, and runs the kernel's command line. A custom server is the
//! same few lines with another list of crates.

use std::process::ExitCode;

// The extension crates, linked by the library (this package's dependencies).
use lithosd as _;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    lithos_server::cli::main()
}
