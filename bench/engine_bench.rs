//! In-process timing of the topicd engine, so that process start-up and file writing are not
//! counted: training time, batch classification throughput and single-document latency.
//!
//! ```text
//! bench-engine --train F.jsonl --test F.jsonl [--runs 5] [--latency-rounds 20]
//!              [--max-train N] [--max-test N] [--short-words 80] [--latency-docs N]
//! bench-engine --only train-count --train F.jsonl [--runs 3] [--max-train N]
//! bench-engine --only eval --model M.model --test F.jsonl [--runs 3]
//! ```
//!
//! Prints one JSON object:
//! * `train_default_s`: every timed run of `Model::train` with `ModelSettings::default()` (internal
//!   cross-validation over the α grid, calibration, thresholds; `default_folds` folds);
//! * `train_count_s`: every timed run with `folds = 0` and an empty α grid (analysis and counting
//!   only);
//! * `train_default_first_s`, `train_count_first_s`: the seconds of the untimed run each kind of
//!   training starts with, as the `eval` timings and criterion start with a warm-up. The first
//!   training of a process also pays for the kernel mapping every page it touches for the first
//!   time, which later trainings reuse; scikit-learn's fit, timed the same way by
//!   bench/sk_bench.py, shows no such difference;
//! * `batch_docs_per_s`: every run of classifying the whole test set one document after another
//!   (default options, default model), single thread;
//! * `eval_docs_per_s`: every run of `topicd::eval::evaluate` on the test set, the throughput
//!   `topicd eval` reports (all cores, the options eval uses), and `eval_workers`;
//! * `short_latency_us`: median, p90 and p99 of one `Model::classify` call on a short test document
//!   (at most `--short-words` whitespace-separated words), over every short document (or an evenly
//!   spread sample of `--latency-docs` of them, the same as bench/sk_bench.py takes), repeated
//!   `--latency-rounds` times;
//! * `short_repeat_latency_us`: the median of the same calls timed a second time, right after an
//!   untimed first call on the same document (warm caches, trained branch predictors): how much of
//!   `short_latency_us` is the cost of meeting a document for the first time.
//!
//! With `--only train-count` it times counting-only training and nothing else, and prints
//! `train_count_first_s`, `train_count_s` and `train_count_median_s`: bench/run.sh alternates such
//! runs with scikit-learn's fit (`sk_bench.py --only fit`), so that both sides of the training
//! ratio see the same machine load.
//! With `--only eval` it loads a model file (the one `topicd train` wrote) and times
//! `topicd::eval::evaluate` on the test set and nothing else, printing `eval_docs_per_s`,
//! `eval_docs_per_s_median` and `eval_workers`: bench/run.sh alternates such runs with
//! scikit-learn's batch predict (`sk_bench.py --only predict`) for the `eval` target.

use std::time::Instant;

use serde_json::json;
use topicd::data::{read_jsonl, LabeledText};
use topicd::model::{ClassifyOptions, Example, Model, ModelSettings};

/// mimalloc, as in the `topicd` binary (see src/main.rs), so that the timings are those of the
/// program people run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BoxError = Box<dyn std::error::Error>;

struct Args {
    train: String,
    test: String,
    runs: usize,
    latency_rounds: usize,
    max_train: usize,
    max_test: usize,
    short_words: usize,
    latency_docs: usize,
    /// `--only train-count`: time counting-only training and nothing else.
    train_count_only: bool,
    /// `--only eval`: time `eval` on a loaded model (`--model`) and nothing else.
    eval_only: bool,
    /// `--model`: the model file `--only eval` loads.
    model: String,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        train: String::new(),
        test: String::new(),
        runs: 5,
        latency_rounds: 20,
        max_train: usize::MAX,
        max_test: usize::MAX,
        short_words: 80,
        latency_docs: usize::MAX,
        train_count_only: false,
        eval_only: false,
        model: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{name}: {value:?} is not a number"))
        };
        match name.as_str() {
            "--train" => args.train = value.clone(),
            "--test" => args.test = value.clone(),
            "--runs" => args.runs = number()?.max(1),
            "--latency-rounds" => args.latency_rounds = number()?.max(1),
            "--max-train" => args.max_train = number()?,
            "--max-test" => args.max_test = number()?,
            "--short-words" => args.short_words = number()?,
            "--latency-docs" => args.latency_docs = number()?.max(1),
            "--model" => args.model = value.clone(),
            "--only" if value == "train-count" => args.train_count_only = true,
            "--only" if value == "eval" => args.eval_only = true,
            "--only" => return Err(format!("--only: {value:?} is not train-count or eval").into()),
            _ => return Err(format!("unknown argument {name:?}").into()),
        }
    }
    if args.eval_only {
        if args.model.is_empty() || args.test.is_empty() {
            return Err(
                "usage: bench-engine --only eval --model M.model --test F.jsonl [--runs N]".into(),
            );
        }
    } else if args.train.is_empty() || (args.test.is_empty() && !args.train_count_only) {
        return Err("usage: bench-engine --train F.jsonl --test F.jsonl [--runs N] ...".into());
    }
    Ok(args)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn time_training(
    settings: &ModelSettings,
    examples: &[Example],
    runs: usize,
) -> Result<Training, BoxError> {
    // Run 0 is the untimed one; its seconds are kept apart.
    let mut seconds = Vec::with_capacity(runs + 1);
    let mut last = None;
    for _ in 0..=runs {
        // The previous run's model is dropped before this run starts, as sk_bench.py drops each
        // fitted model before the next fit: every run starts with the same memory held.
        drop(last.take());
        let started = Instant::now();
        last = Some(Model::train(settings, examples, &mut |_| {})?);
        seconds.push(started.elapsed().as_secs_f64());
    }
    let first = seconds.remove(0);
    Ok(Training {
        first,
        seconds,
        model: last.ok_or("no run")?,
    })
}

/// What [`time_training`] measured: the untimed first run's seconds (the first training of the
/// process, which also pays for the kernel mapping the memory it touches for the first time), the
/// timed runs' seconds, and the last model.
struct Training {
    first: f64,
    seconds: Vec<f64>,
    model: Model,
}

/// `--only eval`: one untimed `evaluate` on the loaded model, then `runs` timed ones.
fn time_eval_only(args: &Args) -> Result<(), BoxError> {
    let (_, model) = topicd::store::load_model_path(args.model.as_ref())?;
    let mut test: Vec<LabeledText> = read_jsonl(args.test.as_ref())?;
    test.truncate(args.max_test);
    let mut sink = topicd::eval::evaluate(&model, &test).n;
    let mut eval_docs_per_s = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let report = topicd::eval::evaluate(&model, &test);
        eval_docs_per_s.push(report.docs_per_second);
        sink += report.n;
    }
    let out = json!({
        "model_file": args.model,
        "test_file": args.test,
        "test_docs": test.len(),
        "eval_docs_per_s": eval_docs_per_s,
        "eval_docs_per_s_median": median(&eval_docs_per_s),
        "eval_workers": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "checksum": sink,
    });
    println!("{out}");
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    if args.eval_only {
        return time_eval_only(&args);
    }
    let mut train: Vec<LabeledText> = read_jsonl(args.train.as_ref())?;
    train.truncate(args.max_train);
    let count_settings = ModelSettings {
        folds: 0,
        alpha_grid: Vec::new(),
        ..ModelSettings::default()
    };
    if args.train_count_only {
        let examples: Vec<Example> = train.iter().map(LabeledText::to_example).collect();
        let counting = time_training(&count_settings, &examples, args.runs)?;
        let out = json!({
            "train_file": args.train,
            "train_docs": examples.len(),
            "train_count_first_s": counting.first,
            "train_count_s": counting.seconds,
            "train_count_median_s": median(&counting.seconds),
        });
        println!("{out}");
        return Ok(());
    }
    let mut test: Vec<LabeledText> = read_jsonl(args.test.as_ref())?;
    test.truncate(args.max_test);
    let examples: Vec<Example> = train.iter().map(LabeledText::to_example).collect();

    let default_settings = ModelSettings::default();
    let default_training = time_training(&default_settings, &examples, args.runs)?;
    let counting = time_training(&count_settings, &examples, args.runs)?;
    let (train_default_s, model) = (default_training.seconds, default_training.model);
    let train_count_s = counting.seconds;

    let options = ClassifyOptions::default();
    // One untimed pass warms the caches.
    let mut sink = 0usize;
    for doc in &test {
        sink += model.classify(&doc.text, options).tags.len();
    }
    let mut batch_docs_per_s = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let started = Instant::now();
        for doc in &test {
            sink += model.classify(&doc.text, options).tags.len();
        }
        batch_docs_per_s.push(test.len() as f64 / started.elapsed().as_secs_f64());
    }

    let mut eval_docs_per_s = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let report = topicd::eval::evaluate(&model, &test);
        eval_docs_per_s.push(report.docs_per_second);
        sink += report.n;
    }

    let mut short: Vec<&str> = test
        .iter()
        .map(|d| d.text.as_str())
        .filter(|t| t.split_whitespace().count() <= args.short_words)
        .collect();
    // The same evenly spread sample as bench/sk_bench.py takes.
    if short.len() > args.latency_docs {
        let step = short.len() as f64 / args.latency_docs as f64;
        short = (0..args.latency_docs)
            .map(|i| short[(i as f64 * step) as usize])
            .collect();
    }
    let mut words: Vec<f64> = short
        .iter()
        .map(|t| t.split_whitespace().count() as f64)
        .collect();
    words.sort_by(f64::total_cmp);
    let mut latencies = Vec::with_capacity(short.len() * args.latency_rounds);
    for _ in 0..args.latency_rounds {
        for text in &short {
            let started = Instant::now();
            let c = model.classify(text, options);
            latencies.push(started.elapsed().as_secs_f64() * 1e6);
            sink += c.tags.len();
        }
    }
    latencies.sort_by(f64::total_cmp);
    // The same documents, each timed on a second call right after an untimed first one: what
    // a call costs once the caches hold its terms and the branch predictors have seen its text.
    let mut repeated = Vec::with_capacity(short.len() * args.latency_rounds);
    for _ in 0..args.latency_rounds {
        for text in &short {
            sink += model.classify(text, options).tags.len();
            let started = Instant::now();
            let c = model.classify(text, options);
            repeated.push(started.elapsed().as_secs_f64() * 1e6);
            sink += c.tags.len();
        }
    }
    repeated.sort_by(f64::total_cmp);

    let out = json!({
        "train_file": args.train,
        "test_file": args.test,
        "train_docs": examples.len(),
        "test_docs": test.len(),
        "labels": model.labels().len(),
        "vocabulary": model.counts().vocabulary.len(),
        "settings": model.settings().describe(),
        "default_folds": default_settings.folds,
        "default_alpha_grid": default_settings.alpha_grid,
        "runs": args.runs,
        "train_default_first_s": default_training.first,
        "train_default_s": train_default_s,
        "train_default_median_s": median(&train_default_s),
        "train_count_first_s": counting.first,
        "train_count_s": train_count_s,
        "train_count_median_s": median(&train_count_s),
        "batch_docs_per_s": batch_docs_per_s,
        "batch_docs_per_s_median": median(&batch_docs_per_s),
        "eval_docs_per_s": eval_docs_per_s,
        "eval_docs_per_s_median": median(&eval_docs_per_s),
        "eval_workers": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "short_docs": short.len(),
        "short_words_median": median(&words),
        "short_latency_us": {
            "samples": latencies.len(),
            "median": percentile(&latencies, 50.0),
            "p90": percentile(&latencies, 90.0),
            "p99": percentile(&latencies, 99.0),
        },
        "short_repeat_latency_us": {
            "samples": repeated.len(),
            "median": percentile(&repeated, 50.0),
        },
        "checksum": sink,
    });
    println!("{out}");
    Ok(())
}
