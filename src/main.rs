//! The `topicd` binary: parses the command line and hands over to [`topicd::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = topicd::cli::Cli::parse();
    match topicd::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("topicd: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
