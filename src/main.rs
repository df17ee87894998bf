//! The `wa-gateway` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    wa_gateway::cli::run(wa_gateway::cli::Cli::parse())
}
