//! # topicd
//!
//! A gRPC microservice that tags news text with topics, with a naive Bayes engine of its own.
//!
//! ```text
//!                    ┌───────────────────────── topicd (binary, src/main.rs, src/cli) ─────────────┐
//!   grpcurl /        │  serve ──► service (tonic: handlers, auth, limits, health, reflection)     │
//!   other services ──┼──────────►   │  translates requests to engine calls, errors to Status     │
//!   (gRPC, HTTP/2)   │              ▼                                                             │
//!                    │        registry (ArcSwap<LoadedModel>: lock-free reads, atomic swaps;      │
//!                    │                  one model thread loads and trains what it serves)         │
//!                    │              │                                                             │
//!   train / eval /   │              ▼                                                             │
//!   classify (CLI) ──┼──► model (naive Bayes: counts → weights → scores → calibration → tags)     │
//!                    │        │  text (analyzer: tokenizer → numbers → stop words → stem → bigrams)│
//!                    │        ▼                                                                   │
//!                    │     store (model files: header + checksum + JSON payload; models dir with  │
//!                    │            ACTIVE pointer; atomic writes)            data (JSONL examples) │
//!                    └────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! * [`text`] turns text into terms (words, bigrams, and a short first line again as headline
//!   terms); its settings live in every model.
//! * [`model`] holds the additive counts (so training is incremental and exact), computes sparse
//!   multinomial or complement naive Bayes scores, calibrates them with a temperature and per-label
//!   biases fitted by internal cross-validation, and tags every label whose one-vs-rest log-odds
//!   pass its threshold.
//! * [`store`] writes model files (in two streaming passes, never a copy in memory), verifies them,
//!   and manages a directory of versions.
//! * [`data`] and [`eval`] read JSON Lines examples and compute the metrics of `topicd eval`.
//! * [`parallel`] spreads independent engine work (CV folds, α candidates, evaluation, the weight
//!   build's blocks) over the cores, and splits the counting's steps in two.
//! * [`service`] is the gRPC layer; the engine knows nothing about gRPC.

pub mod cli;
pub mod data;
pub mod eval;
pub mod model;
pub mod parallel;
pub mod service;
pub mod store;
pub mod text;

/// Code generated from `proto/topicd/v1/topicd.proto`.
pub mod proto {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("topicd.v1");

    /// Encoded file descriptor set of the topicd protocol, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/topicd_descriptor.bin"));
}
