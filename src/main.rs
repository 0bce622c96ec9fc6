//! The `topicd` binary: parses the command line and hands over to [`topicd::cli`].

use clap::Parser;

/// mimalloc instead of the C library's allocator: classification makes a dozen short-lived
/// allocations per text (the response's list of scores among them). Built without transparent huge
/// pages, so that serving memory stays where the C library's allocator kept it (BENCHMARKS.md has
/// the alternating timings of this change and the cache prefetches, and the memory figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
