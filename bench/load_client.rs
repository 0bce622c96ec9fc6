//! A tonic load client for `topicd.v1.TopicClassifier/Classify`, the second view next to h2load.
//!
//! ```text
//! bench-load check --addr http://127.0.0.1:PORT --text-file bench/request.txt [--calls 3]
//! bench-load load  --addr http://127.0.0.1:PORT --text-file bench/request.txt
//!                  [--connections 1] [--concurrency 8] [--requests 20000] [--duration 10]
//!                  [--warmup 1] [--threads 1]
//!                  [--train-every 1 --train-data seeds/train.jsonl --train-batch 4 --token T]
//! bench-load frame --text-file bench/request.txt --out body.bin
//! ```
//!
//! `check` makes a few real calls and fails unless every one ends with gRPC status OK.
//! `load` runs `--concurrency` tasks over `--connections` HTTP/2 connections until `--requests`
//! calls are done or `--duration` seconds have passed (whichever comes first), after `--warmup`
//! seconds whose calls are not counted, and prints one JSON object: throughput, latency
//! percentiles and errors by gRPC code. With `--train-every S` another task sends an incremental
//! `Train` with `--train-batch` examples every S seconds during the measurement (the hot-swap test).
//! `frame` writes a gRPC-framed ClassifyRequest (5-byte header + protobuf) for h2load's `-d`.
//!
//! The client runs on `--threads` runtime threads (default 1, like `h2load -t 1`); on the benchmark
//! machine it shares the cores with the server it measures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use topicd::proto::topic_classifier_client::TopicClassifierClient;
use topicd::proto::{ClassifyRequest, Example, TrainMode, TrainRequest};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Parsed `--name value` options.
struct Options {
    values: BTreeMap<String, String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, BoxError> {
        let mut values = BTreeMap::new();
        let mut i = 0;
        while i < args.len() {
            let name = args[i]
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got {:?}", args[i]))?;
            let value = args
                .get(i + 1)
                .ok_or_else(|| format!("--{name} needs a value"))?;
            values.insert(name.to_owned(), value.clone());
            i += 2;
        }
        Ok(Self { values })
    }

    fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    fn required(&self, name: &str) -> Result<String, BoxError> {
        self.string(name)
            .ok_or_else(|| format!("--{name} is required").into())
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, BoxError> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: {v:?} is not a number").into()),
        }
    }

    fn text(&self) -> Result<String, BoxError> {
        if let Some(t) = self.string("text") {
            return Ok(t);
        }
        let path = self.required("text-file")?;
        Ok(std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?)
    }
}

fn request(text: &str) -> ClassifyRequest {
    ClassifyRequest {
        text: text.to_owned(),
        ..ClassifyRequest::default()
    }
}

async fn connect(addr: &str) -> Result<TopicClassifierClient<Channel>, BoxError> {
    let channel = Endpoint::from_shared(addr.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    Ok(TopicClassifierClient::new(channel).max_decoding_message_size(64 << 20))
}

/// `check`: a few real calls; every one must end with status OK.
async fn check(options: &Options) -> Result<bool, BoxError> {
    let addr = options.required("addr")?;
    let calls: usize = options.number("calls", 3)?;
    let text = options.text()?;
    let mut client = connect(&addr).await?;
    let mut ok = 0usize;
    let mut errors = Vec::new();
    let mut last = None;
    for _ in 0..calls {
        match client.classify(request(&text)).await {
            Ok(response) => {
                ok += 1;
                last = Some(response.into_inner());
            }
            Err(status) => errors.push(format!("{:?}: {}", status.code(), status.message())),
        }
    }
    let out = json!({
        "addr": addr,
        "calls": calls,
        "ok": ok,
        "errors": errors,
        "label": last.as_ref().map(|r| r.label.clone()),
        "tags": last.as_ref().map(|r| r.tags.clone()),
        "scores": last.as_ref().map(|r| r.scores.len()),
        "model_version": last.as_ref().map(|r| r.model_version.clone()),
    });
    println!("{out}");
    Ok(ok == calls)
}

/// Latency samples and errors of one task.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
}

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    Some(f64::from(sorted[rank.min(sorted.len() - 1)]))
}

/// What the training task saw.
#[derive(Default)]
struct TrainTally {
    ok: u64,
    errors: u64,
    not_activated: u64,
    latencies_ms: Vec<f64>,
    first_error: Option<String>,
    last_version: Option<String>,
}

async fn train_loop(
    addr: String,
    token: String,
    examples: Vec<Example>,
    batch: usize,
    every: Duration,
    until: Instant,
) -> Result<TrainTally, BoxError> {
    let mut client = connect(&addr).await?;
    let mut tally = TrainTally::default();
    let mut next = 0usize;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let bearer: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token is not a valid header value")?;
    loop {
        tick.tick().await;
        if Instant::now() >= until || examples.is_empty() {
            break;
        }
        let chunk: Vec<Example> = (0..batch)
            .map(|k| examples[(next + k) % examples.len()].clone())
            .collect();
        next = (next + batch) % examples.len();
        let mut req = tonic::Request::new(TrainRequest {
            examples: chunk,
            mode: TrainMode::Incremental as i32,
            ..TrainRequest::default()
        });
        req.metadata_mut().insert("authorization", bearer.clone());
        let started = Instant::now();
        match client.train(req).await {
            Ok(response) => {
                let r = response.into_inner();
                tally.ok += 1;
                if !r.activated {
                    tally.not_activated += 1;
                }
                tally.last_version = Some(r.model_version);
            }
            Err(status) => {
                tally.errors += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(format!("{:?}: {}", status.code(), status.message()));
                }
            }
        }
        tally
            .latencies_ms
            .push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(tally)
}

fn read_examples(path: &str) -> Result<Vec<Example>, BoxError> {
    let texts = topicd::data::read_jsonl(std::path::Path::new(path))?;
    Ok(texts
        .into_iter()
        .map(|t| Example {
            text: t.text,
            labels: t.labels,
        })
        .collect())
}

/// `load`: the measurement.
async fn load(options: &Options) -> Result<serde_json::Value, BoxError> {
    let addr = options.required("addr")?;
    let text = options.text()?;
    let connections: usize = options.number("connections", 1)?;
    let concurrency: usize = options.number("concurrency", 8)?;
    let requests: u64 = options.number("requests", u64::MAX)?;
    let duration = Duration::from_secs_f64(options.number("duration", 10.0)?);
    let warmup = Duration::from_secs_f64(options.number("warmup", 1.0)?);
    let train_every: f64 = options.number("train-every", 0.0)?;
    if connections == 0 || concurrency == 0 {
        return Err("--connections and --concurrency must be at least 1".into());
    }

    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(connect(&addr).await?);
    }
    let message = request(&text);

    // Warm-up: same load, not counted.
    let warm_until = Instant::now() + warmup;
    let mut warm = Vec::new();
    for task in 0..concurrency {
        let mut client = clients[task % connections].clone();
        let message = message.clone();
        warm.push(tokio::spawn(async move {
            while Instant::now() < warm_until {
                let _ = client.classify(message.clone()).await;
            }
        }));
    }
    for handle in warm {
        handle.await?;
    }

    let started = Instant::now();
    let deadline = started + duration;
    let train_task = if train_every > 0.0 {
        let examples = read_examples(&options.required("train-data")?)?;
        let token = options.string("token").unwrap_or_default();
        let batch: usize = options.number("train-batch", 4)?;
        Some(tokio::spawn(train_loop(
            addr.clone(),
            token,
            examples,
            batch.max(1),
            Duration::from_secs_f64(train_every),
            deadline,
        )))
    } else {
        None
    };

    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let mut client = clients[task % connections].clone();
        let message = message.clone();
        let issued = Arc::clone(&issued);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while issued.fetch_add(1, Ordering::Relaxed) < requests && Instant::now() < deadline {
                let t0 = Instant::now();
                let result = client.classify(message.clone()).await;
                let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                tally.latencies_us.push(us);
                if let Err(status) = result {
                    *tally
                        .errors
                        .entry(format!("{:?}", status.code()))
                        .or_default() += 1;
                    if tally.first_error.is_none() {
                        tally.first_error =
                            Some(format!("{:?}: {}", status.code(), status.message()));
                    }
                }
            }
            (tally, Instant::now())
        }));
    }
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_error = None;
    let mut finished = started;
    for handle in tasks {
        let (tally, end) = handle.await?;
        latencies.extend(tally.latencies_us);
        for (code, n) in tally.errors {
            *errors.entry(code).or_default() += n;
        }
        first_error = first_error.or(tally.first_error);
        finished = finished.max(end);
    }
    let seconds = (finished - started).as_secs_f64();
    let train = match train_task {
        Some(handle) => Some(handle.await??),
        None => None,
    };
    latencies.sort_unstable();
    let completed = latencies.len() as u64;
    let error_count: u64 = errors.values().sum();
    let ms = |p: f64| percentile(&latencies, p).map(|us| us / 1e3);
    let mut out = json!({
        "client": "rust-tonic",
        "addr": addr,
        "connections": connections,
        "concurrency": concurrency,
        "threads": options.number("threads", 1usize)?,
        "seconds": seconds,
        "completed": completed,
        "ok": completed - error_count,
        "errors": error_count,
        "errors_by_code": errors,
        "first_error": first_error,
        "rps": if seconds > 0.0 { (completed - error_count) as f64 / seconds } else { 0.0 },
        "p50_ms": ms(50.0),
        "p90_ms": ms(90.0),
        "p99_ms": ms(99.0),
        "max_ms": ms(100.0),
    });
    if let Some(t) = train {
        let mut lat = t.latencies_ms.clone();
        lat.sort_by(f64::total_cmp);
        out["train"] = json!({
            "every_s": train_every,
            "batch": options.number("train-batch", 4usize)?,
            "ok": t.ok,
            "errors": t.errors,
            "not_activated": t.not_activated,
            "first_error": t.first_error,
            "last_version": t.last_version,
            "median_ms": lat.get(lat.len() / 2),
            "max_ms": lat.last(),
        });
    }
    Ok(out)
}

/// `frame`: the request body h2load sends.
fn frame(options: &Options) -> Result<(), BoxError> {
    let text = options.text()?;
    let out = options.required("out")?;
    let payload = request(&text).encode_to_vec();
    let len = u32::try_from(payload.len()).map_err(|_| "request too large")?;
    let mut body = Vec::with_capacity(5 + payload.len());
    body.push(0u8); // not compressed
    body.extend_from_slice(&len.to_be_bytes());
    body.extend_from_slice(&payload);
    std::fs::write(&out, body).map_err(|e| format!("{out}: {e}"))?;
    Ok(())
}

fn usage() -> ! {
    eprintln!("usage: bench-load (check|load|frame) --option value ...  (see the top of bench/load_client.rs)");
    std::process::exit(2)
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else { usage() };
    let options = Options::parse(&args[1..])?;
    if command == "frame" {
        return frame(&options);
    }
    let threads: usize = options.number("threads", 1)?;
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    match command.as_str() {
        "check" => {
            if !runtime.block_on(check(&options))? {
                std::process::exit(1);
            }
        }
        "load" => {
            let out = runtime.block_on(load(&options))?;
            println!("{out}");
        }
        _ => usage(),
    }
    Ok(())
}
