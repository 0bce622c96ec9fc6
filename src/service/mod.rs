//! The gRPC service: `topicd serve`.
//!
//! ```text
//! tonic Server ─┬─ topicd.v1.TopicClassifier  handlers.rs (thin: validate → engine → Status)
//!               │     ├─ auth.rs       bearer token for Train / TrainStream / ActivateModel
//!               │     ├─ limits.rs     sizes, counts, label syntax → INVALID_ARGUMENT / RESOURCE_EXHAUSTED
//!               │     ├─ registry.rs   ArcSwap of the active model; one writer at a time
//!               │     ├─ training.rs   build beside the old model, gate, save durably, activate
//!               │     ├─ model_thread.rs  one thread builds every served model (one allocator arena)
//!               │     ├─ convert.rs    engine types ⇄ protocol messages
//!               │     ├─ errors.rs     service errors → Status with google.rpc.BadRequest details
//!               │     └─ oversize.rs   messages over --max-message-bytes → RESOURCE_EXHAUSTED
//!               ├─ grpc.health.v1.Health  (NOT_SERVING until a model is loaded and while draining)
//!               └─ server reflection v1 and v1alpha (topicd's, health's and google.rpc's descriptors)
//! ```
//!
//! On SIGINT or SIGTERM health turns NOT_SERVING, in-flight calls drain (at most
//! `--drain-timeout` seconds, since streams such as Health/Watch never end on their own) and the
//! process exits 0.

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod convert;
pub mod errors;
pub mod handlers;
pub mod limits;
pub mod model_thread;
pub mod oversize;
pub mod registry;
pub mod training;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::proto::topic_classifier_server::TopicClassifierServer;
use crate::store::ModelStore;
use auth::TrainAuth;
use handlers::TopicService;
use limits::Limits;
use oversize::OversizeAware;
use registry::Registry;

/// Arguments of `topicd serve`; every flag also reads a `TOPICD_*` environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "TOPICD_ADDR", default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// Models directory: its active model is served; trained models are saved here.
    #[arg(long, env = "TOPICD_MODEL_DIR", default_value = crate::cli::DEFAULT_MODEL_DIR)]
    pub model_dir: PathBuf,
    /// File holding the bearer token that Train, TrainStream and ActivateModel require. Without it
    /// (or TOPICD_TRAIN_TOKEN) those RPCs are refused.
    #[arg(long, env = "TOPICD_TRAIN_TOKEN_FILE")]
    pub train_token_file: Option<PathBuf>,
    /// The bearer token itself (prefer --train-token-file; the value is never printed).
    #[arg(long, env = "TOPICD_TRAIN_TOKEN", hide_env_values = true)]
    pub train_token: Option<String>,
    /// PEM certificate chain: serve TLS (with --tls-key).
    #[arg(long, env = "TOPICD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "TOPICD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "TOPICD_MAX_MESSAGE_BYTES", default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,
    /// Largest text to classify or train on, in bytes.
    #[arg(long, env = "TOPICD_MAX_TEXT_BYTES", default_value_t = Limits::default().max_text_bytes)]
    pub max_text_bytes: usize,
    /// Most texts in one ClassifyBatch.
    #[arg(long, env = "TOPICD_MAX_BATCH", default_value_t = Limits::default().max_batch)]
    pub max_batch: usize,
    /// Most examples (training plus validation) in one Train or TrainStream call.
    #[arg(long, env = "TOPICD_MAX_TRAIN_EXAMPLES", default_value_t = Limits::default().max_train_examples)]
    pub max_train_examples: usize,
    /// Most labels a model may have.
    #[arg(long, env = "TOPICD_MAX_LABELS", default_value_t = Limits::default().max_labels)]
    pub max_labels: usize,
    /// Most paragraphs per request when a per-paragraph breakdown is asked for (all texts of a
    /// batch together).
    #[arg(long, env = "TOPICD_MAX_PARAGRAPHS", default_value_t = Limits::default().max_paragraphs)]
    pub max_paragraphs: usize,
    /// On SIGINT/SIGTERM, seconds to let in-flight calls finish before stopping anyway (open
    /// streams such as Health/Watch never finish by themselves).
    #[arg(
        long,
        env = "TOPICD_DRAIN_TIMEOUT",
        default_value_t = 20,
        value_name = "SECONDS"
    )]
    pub drain_timeout: u64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl ServeArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_message_bytes: self.max_message_bytes,
            max_text_bytes: self.max_text_bytes,
            max_batch: self.max_batch,
            max_train_examples: self.max_train_examples,
            max_labels: self.max_labels,
            max_paragraphs: self.max_paragraphs,
        }
    }

    fn token(&self) -> Result<Option<String>, BoxError> {
        if let Some(path) = &self.train_token_file {
            let token = std::fs::read_to_string(path)
                .map_err(|e| format!("--train-token-file {}: {e}", path.display()))?;
            let token = token.trim().to_owned();
            if token.is_empty() {
                return Err(format!("--train-token-file {} is empty", path.display()).into());
            }
            return Ok(Some(token));
        }
        Ok(self
            .train_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned))
    }
}

/// Runs the server until SIGINT or SIGTERM (the `serve` subcommand).
pub fn run_blocking(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(async {
            let listener = TcpListener::bind(&args.addr)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
            serve(args, listener, shutdown_signal()).await
        })
        .map_err(|e| e as Box<dyn std::error::Error>)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Serves on `listener` until `shutdown` resolves, then drains in-flight calls (at most
/// `--drain-timeout`) and returns.
pub async fn serve(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxError> {
    let limits = args.limits();
    limits.validate()?;
    let limits = Arc::new(limits);
    let auth = TrainAuth::new(args.token()?);
    let store = ModelStore::open(&args.model_dir)
        .map_err(|e| format!("--model-dir {}: {e}", args.model_dir.display()))?;
    let registry = Arc::new(Registry::open(store).map_err(|e| {
        format!(
            "cannot load the active model of {}: {e}",
            args.model_dir.display()
        )
    })?);

    let (reporter, health) = tonic_health::server::health_reporter();
    let (stop, stopping) = watch::channel(false);
    let health_task = tokio::spawn(follow_health(reporter, registry.subscribe(), stopping));

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let service = TopicClassifierServer::new(TopicService::new(
        Arc::clone(&registry),
        Arc::clone(&limits),
        auth.clone(),
    ))
    .max_decoding_message_size(limits.max_message_bytes)
    .max_encoding_message_size(limits.max_message_bytes);
    let service = OversizeAware::new(service, Arc::clone(&limits));

    let mut builder = Server::builder();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let cert =
            std::fs::read(cert).map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
        let key = std::fs::read(key).map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
            .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    }

    let local = listener.local_addr()?;
    match registry.active() {
        Some(active) => {
            tracing::info!(version = %active.version, dir = %args.model_dir.display(), "model loaded")
        }
        None => {
            tracing::warn!(dir = %args.model_dir.display(), "no active model: health is NOT_SERVING until one is trained (Train with TRAIN_MODE_FRESH)")
        }
    }
    tracing::info!(
        addr = %local,
        tls = args.tls_cert.is_some(),
        training = auth.enabled(),
        "serving"
    );
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {local}");
        let _ = stdout.flush();
    }

    let (drain_started, drain_timer) = tokio::sync::oneshot::channel::<()>();
    let draining = async move {
        shutdown.await;
        tracing::info!("shutting down: health NOT_SERVING, draining in-flight calls");
        let _ = stop.send(true);
        let _ = health_task.await;
        let _ = drain_started.send(());
    };
    let server = builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), draining);
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    tokio::select! {
        served = server => served?,
        () = async {
            match drain_timer.await {
                Ok(()) => tokio::time::sleep(drain_timeout).await,
                Err(_) => std::future::pending().await,
            }
        } => {
            tracing::warn!(
                seconds = args.drain_timeout,
                "calls still open after --drain-timeout; stopping anyway"
            );
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Keeps health in step with the registry: SERVING while a model is active, NOT_SERVING otherwise
/// and, for good, once `stopping` turns true.
async fn follow_health(
    reporter: tonic_health::server::HealthReporter,
    mut active: watch::Receiver<Option<String>>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let status = if active.borrow_and_update().is_some() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        set_health(&reporter, status).await;
        tokio::select! {
            biased;
            _ = stopping.changed() => break,
            changed = active.changed() => {
                if changed.is_err() {
                    let _ = stopping.changed().await;
                    break;
                }
            }
        }
    }
    set_health(&reporter, ServingStatus::NotServing).await;
}

async fn set_health(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter
        .set_service_status("topicd.v1.TopicClassifier", status)
        .await;
    reporter.set_service_status("", status).await;
}
