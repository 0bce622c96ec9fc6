//! The ceiling of the gRPC benchmark: a tonic server implementing `topicd.v1.TopicClassifier`
//! whose `Classify` returns an empty response at once (no model, no text analysis). Every other
//! method answers `UNIMPLEMENTED`.
//!
//! ```text
//! cargo run --release --features bench --example bench-empty-server -- --addr 127.0.0.1:0
//! ```
//!
//! Prints `listening on <addr>` on stdout once the socket is bound, like `topicd serve`, and runs
//! until it is killed (SIGINT or SIGTERM).

use std::io::Write;
use std::pin::Pin;

use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use topicd::proto::topic_classifier_server::{TopicClassifier, TopicClassifierServer};
use topicd::proto::{
    ActivateModelRequest, ClassifyBatchRequest, ClassifyBatchResponse, ClassifyRequest,
    ClassifyResponse, GetModelRequest, ListModelsRequest, ListModelsResponse, ModelInfo,
    TrainRequest, TrainResponse,
};

/// mimalloc, as in the `topicd` binary (see src/main.rs), so that the timings are those of the
/// program people run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A service that does nothing.
struct Empty;

type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<ClassifyResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl TopicClassifier for Empty {
    async fn classify(
        &self,
        _request: Request<ClassifyRequest>,
    ) -> Result<Response<ClassifyResponse>, Status> {
        Ok(Response::new(ClassifyResponse::default()))
    }

    async fn classify_batch(
        &self,
        _request: Request<ClassifyBatchRequest>,
    ) -> Result<Response<ClassifyBatchResponse>, Status> {
        Err(Status::unimplemented("empty benchmark server"))
    }

    type ClassifyStreamStream = ResponseStream;

    async fn classify_stream(
        &self,
        _request: Request<Streaming<ClassifyRequest>>,
    ) -> Result<Response<Self::ClassifyStreamStream>, Status> {
        Err(Status::unimplemented("empty benchmark server"))
    }

    async fn train(
        &self,
        _request: Request<TrainRequest>,
    ) -> Result<Response<TrainResponse>, Status> {
        Err(Status::unimplemented("empty benchmark server"))
    }

    async fn train_stream(
        &self,
        _request: Request<Streaming<TrainRequest>>,
    ) -> Result<Response<TrainResponse>, Status> {
        Err(Status::unimplemented("empty benchmark server"))
    }

    async fn get_model(
        &self,
        _request: Request<GetModelRequest>,
    ) -> Result<Response<ModelInfo>, Status> {
        Err(Status::unimplemented("empty benchmark server"))
    }

    async fn list_models(
        &self,
        _request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        Err(Status::unimplemented("empty benchmark server"))
    }

    async fn activate_model(
        &self,
        _request: Request<ActivateModelRequest>,
    ) -> Result<Response<ModelInfo>, Status> {
        Err(Status::unimplemented("empty benchmark server"))
    }
}

fn parse_addr() -> Result<String, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:0".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "-h" | "--help" => {
                println!("usage: bench-empty-server [--addr 127.0.0.1:0]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(addr)
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = parse_addr()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    std::io::stdout().flush()?;
    tonic::transport::Server::builder()
        .add_service(TopicClassifierServer::new(Empty))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown())
        .await?;
    Ok(())
}
