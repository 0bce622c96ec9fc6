//! The `TopicClassifier` handlers: validate, call the engine, translate errors to statuses.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::auth::TrainAuth;
use super::convert;
use super::errors::ServiceError;
use super::limits::Limits;
use super::oversize::map_stream_error;
use super::registry::{LoadedModel, Registry};
use super::training::{self, TrainJob};
use crate::proto::topic_classifier_server::TopicClassifier;
use crate::proto::{
    ActivateModelRequest, ClassifyBatchRequest, ClassifyBatchResponse, ClassifyRequest,
    ClassifyResponse, GetModelRequest, ListModelsRequest, ListModelsResponse, Metrics, ModelInfo,
    TrainMode, TrainRequest, TrainResponse,
};

/// Texts longer than this are classified on a blocking thread, off the async workers.
const INLINE_TEXT_BYTES: usize = 64 * 1024;

/// Responses buffered per ClassifyStream before the server waits for the client to read.
const STREAM_BUFFER: usize = 32;

/// The gRPC service.
#[derive(Clone)]
pub struct TopicService {
    registry: Arc<Registry>,
    limits: Arc<Limits>,
    auth: TrainAuth,
}

impl TopicService {
    /// A service over `registry`.
    pub fn new(registry: Arc<Registry>, limits: Arc<Limits>, auth: TrainAuth) -> Self {
        Self {
            registry,
            limits,
            auth,
        }
    }

    async fn classify_one(
        &self,
        request: ClassifyRequest,
    ) -> Result<ClassifyResponse, ServiceError> {
        self.limits.check_text("text", &request.text)?;
        if request.paragraphs {
            self.limits
                .check_paragraphs("text", [request.text.as_str()])?;
        }
        let loaded = self.registry.resolve(&request.model_version).await?;
        let options = convert::options(request.top_k, request.explain, request.paragraphs);
        if request.text.len() <= INLINE_TEXT_BYTES {
            let c = loaded.model.classify(&request.text, options);
            return Ok(convert::classify_response(c, &loaded.version));
        }
        tokio::task::spawn_blocking(move || {
            let c = loaded.model.classify(&request.text, options);
            convert::classify_response(c, &loaded.version)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("classification task failed: {e}")))
    }

    fn train_response(outcome: training::TrainOutcome) -> TrainResponse {
        TrainResponse {
            model_version: outcome.version,
            activated: outcome.activated,
            reason: outcome.reason,
            metrics: Some(Metrics {
                validation_examples: u32::try_from(outcome.validation_examples).unwrap_or(u32::MAX),
                accuracy: outcome.accuracy,
                macro_f1: outcome.macro_f1,
            }),
            labels: convert::label_counts(outcome.labels),
            examples_trained: outcome.examples_trained as u64,
        }
    }

    async fn train_job(&self, job: TrainJob) -> Result<TrainResponse, Status> {
        let outcome =
            training::train(Arc::clone(&self.registry), job, Arc::clone(&self.limits)).await?;
        Ok(Self::train_response(outcome))
    }
}

/// Decodes the settings and examples of a Train request.
fn job_from(request: TrainRequest) -> Result<TrainJob, ServiceError> {
    let fresh = match TrainMode::try_from(request.mode) {
        Ok(TrainMode::Incremental) => false,
        Ok(TrainMode::Fresh) => true,
        Err(_) => {
            return Err(ServiceError::invalid(
                "mode",
                format!(
                    "unknown mode {}: use TRAIN_MODE_INCREMENTAL or TRAIN_MODE_FRESH",
                    request.mode
                ),
            ))
        }
    };
    let gate = request.gate.unwrap_or_default();
    Ok(TrainJob {
        examples: convert::examples(request.examples),
        fresh,
        remove_labels: request
            .remove_labels
            .iter()
            .map(|l| l.trim().to_owned())
            .collect(),
        activate: request.activate.unwrap_or(true),
        validation: convert::examples(gate.validation),
        holdout_fraction: gate.holdout_fraction,
        min_accuracy: gate.min_accuracy,
    })
}

fn info(registry: &Registry, loaded: &LoadedModel) -> ModelInfo {
    let active = registry
        .active()
        .is_some_and(|a| a.version == loaded.version);
    convert::model_info(&loaded.version, loaded.model.summary(), active)
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<ClassifyResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TopicClassifier for TopicService {
    async fn classify(
        &self,
        request: Request<ClassifyRequest>,
    ) -> Result<Response<ClassifyResponse>, Status> {
        Ok(Response::new(
            self.classify_one(request.into_inner()).await?,
        ))
    }

    async fn classify_batch(
        &self,
        request: Request<ClassifyBatchRequest>,
    ) -> Result<Response<ClassifyBatchResponse>, Status> {
        let request = request.into_inner();
        self.limits.check_batch(request.texts.len())?;
        for (i, text) in request.texts.iter().enumerate() {
            self.limits.check_text(&format!("texts[{i}]"), text)?;
        }
        if request.paragraphs {
            self.limits
                .check_paragraphs("texts", request.texts.iter().map(String::as_str))?;
        }
        // One model version for the whole batch.
        let loaded = self.registry.resolve(&request.model_version).await?;
        let options = convert::options(request.top_k, request.explain, request.paragraphs);
        let version = loaded.version.clone();
        let results = tokio::task::spawn_blocking(move || {
            request
                .texts
                .iter()
                .map(|t| {
                    convert::classify_response(loaded.model.classify(t, options), &loaded.version)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Status::internal(format!("classification task failed: {e}")))?;
        Ok(Response::new(ClassifyBatchResponse {
            results,
            model_version: version,
        }))
    }

    type ClassifyStreamStream = ResponseStream;

    async fn classify_stream(
        &self,
        request: Request<Streaming<ClassifyRequest>>,
    ) -> Result<Response<Self::ClassifyStreamStream>, Status> {
        let mut incoming = request.into_inner();
        let service = self.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            while let Some(next) = incoming.next().await {
                let reply = match next {
                    Ok(request) => service.classify_one(request).await.map_err(Status::from),
                    Err(status) => Err(map_stream_error(status, &service.limits)),
                };
                // A bad request ends the stream with its status; a client that left ends it too.
                let failed = reply.is_err();
                if sender.send(reply).await.is_err() || failed {
                    break;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn train(
        &self,
        request: Request<TrainRequest>,
    ) -> Result<Response<TrainResponse>, Status> {
        self.auth.check(request.metadata())?;
        let job = job_from(request.into_inner())?;
        Ok(Response::new(self.train_job(job).await?))
    }

    async fn train_stream(
        &self,
        request: Request<Streaming<TrainRequest>>,
    ) -> Result<Response<TrainResponse>, Status> {
        self.auth.check(request.metadata())?;
        let mut incoming = request.into_inner();
        let mut job: Option<TrainJob> = None;
        while let Some(message) = incoming.next().await {
            let message = message.map_err(|s| map_stream_error(s, &self.limits))?;
            match job.as_mut() {
                None => job = Some(job_from(message)?),
                Some(job) => {
                    job.examples.extend(convert::examples(message.examples));
                    if let Some(gate) = message.gate {
                        job.validation.extend(convert::examples(gate.validation));
                    }
                }
            }
            if let Some(job) = &job {
                self.limits
                    .check_examples(job.examples.len() + job.validation.len())?;
            }
        }
        let job = job.ok_or_else(|| {
            Status::from(ServiceError::invalid(
                "examples",
                "the stream carried no message: send at least one TrainRequest",
            ))
        })?;
        Ok(Response::new(self.train_job(job).await?))
    }

    async fn get_model(
        &self,
        request: Request<GetModelRequest>,
    ) -> Result<Response<ModelInfo>, Status> {
        let loaded = self
            .registry
            .resolve(&request.into_inner().model_version)
            .await?;
        Ok(Response::new(info(&self.registry, &loaded)))
    }

    async fn list_models(
        &self,
        _request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let registry = Arc::clone(&self.registry);
        let saved = tokio::task::spawn_blocking(move || registry.store().list())
            .await
            .map_err(|e| Status::internal(format!("listing task failed: {e}")))?
            .map_err(ServiceError::from)?;
        let active_version = self
            .registry
            .active()
            .map(|a| a.version.clone())
            .unwrap_or_default();
        let models = saved
            .into_iter()
            .map(|s| {
                let active = s.version == active_version;
                convert::model_info(&s.version, s.summary, active)
            })
            .collect();
        Ok(Response::new(ListModelsResponse {
            models,
            active_version,
        }))
    }

    async fn activate_model(
        &self,
        request: Request<ActivateModelRequest>,
    ) -> Result<Response<ModelInfo>, Status> {
        self.auth.check(request.metadata())?;
        let version = request.into_inner().model_version.trim().to_owned();
        if version.is_empty() {
            return Err(ServiceError::invalid(
                "model_version",
                "name the version to activate (ListModels shows them)",
            )
            .into());
        }
        let loaded = self.registry.activate(version).await?;
        Ok(Response::new(info(&self.registry, &loaded)))
    }
}
