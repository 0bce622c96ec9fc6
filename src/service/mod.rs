//! The gRPC service (placeholder until the service lands).

pub mod client;

/// Arguments of `topicd serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs the server until it is told to stop.
pub fn run_blocking(_args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    Err("serve is not implemented yet".into())
}
