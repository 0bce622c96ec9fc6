//! The `topicd` command line: `serve`, `train`, `eval`, `classify` and `models`.

use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::data::{read_all, LabeledText};
use crate::eval::{cross_validate, evaluate, Report};
use crate::model::features::Transforms;
use crate::model::{
    Classification, ClassifyOptions, Example, Model, ModelSettings, NbKind, Smoothing,
};
use crate::store::{self, load_model_path, model_header, write_atomically_with, ModelStore};
use crate::text::{NumberMode, Stemming};

/// Where models are looked for when no `--model` is given.
pub const DEFAULT_MODEL_DIR: &str = "models";

/// topicd: tag news text with topics (naive Bayes over gRPC).
#[derive(Debug, Parser)]
#[command(name = "topicd", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC service.
    Serve(crate::service::ServeArgs),
    /// Train a model from JSON Lines files.
    Train(TrainArgs),
    /// Measure a model on labeled JSON Lines files.
    Eval(EvalArgs),
    /// k-fold cross-validation of the model settings on labeled JSON Lines files.
    Crossval(CrossvalArgs),
    /// Classify one text, offline or through a running server.
    Classify(ClassifyArgs),
    /// List the versions saved in a models directory.
    Models(ModelsArgs),
}

/// Model kinds on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Multinomial naive Bayes.
    Multinomial,
    /// Complement naive Bayes.
    Complement,
    /// One-vs-rest naive Bayes.
    OneVsRest,
}

/// Smoothing of the tag (one-vs-rest) weights on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SmoothingArg {
    /// The same pseudo-count α for every term.
    Lidstone,
    /// Pseudo-counts proportional to each term's share of all term weight (Dirichlet prior).
    Dirichlet,
}

/// Number handling on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NumbersArg {
    /// Keep numbers.
    Keep,
    /// Replace numbers by their shape (#4 for a four-digit number).
    Shape,
    /// Drop numbers.
    Drop,
}

/// Model settings shared by `topicd train` and `topicd crossval`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Naive Bayes variant for the top label.
    #[arg(long, value_enum, default_value = "complement")]
    pub kind: KindArg,
    /// Smoothing α; with --alpha-grid, only the fallback.
    #[arg(long, default_value_t = 0.1)]
    pub alpha: f64,
    /// Smoothing of the one-vs-rest weights that decide tags.
    #[arg(long, value_enum, default_value = "dirichlet")]
    pub tag_smoothing: SmoothingArg,
    /// Candidate α values chosen from by internal cross-validation (comma-separated; "none" keeps --alpha).
    #[arg(long, default_value = "0.001,0.003,0.01,0.03,0.1,0.3,1")]
    pub alpha_grid: String,
    /// Folds of the internal cross-validation (calibration, thresholds, α); below 2 disables it.
    #[arg(long, default_value_t = 10)]
    pub folds: usize,
    /// Do not add word bigrams.
    #[arg(long)]
    pub no_bigrams: bool,
    /// Keep English stop words.
    #[arg(long)]
    pub keep_stop_words: bool,
    /// Do not read a short first line a second time as headline terms.
    #[arg(long)]
    pub no_headline: bool,
    /// Do not stem.
    #[arg(long)]
    pub no_stemming: bool,
    /// Number handling.
    #[arg(long, value_enum, default_value = "shape")]
    pub numbers: NumbersArg,
    /// Use raw term counts instead of ln(1 + tf).
    #[arg(long)]
    pub no_sublinear_tf: bool,
    /// Do not weight scoring terms by IDF.
    #[arg(long)]
    pub no_idf: bool,
    /// Do not normalise document vectors to unit length.
    #[arg(long)]
    pub no_length_norm: bool,
    /// Complement NB: do not normalise each label's weights.
    #[arg(long)]
    pub no_weight_norm: bool,
    /// Do not add tags from paragraphs.
    #[arg(long)]
    pub no_paragraph_tags: bool,
}

/// Arguments of `topicd train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// JSON Lines training file (repeatable): `"text"` and `"labels": [..]` or `"label": ".."`.
    #[arg(long = "data", required = true)]
    pub data: Vec<PathBuf>,
    /// Where to write: a `.model` file, or a models directory (the model is saved and activated).
    #[arg(long)]
    pub out: PathBuf,
    /// Model settings.
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Also evaluate on this labeled file after training (never used for fitting).
    #[arg(long)]
    pub eval: Option<PathBuf>,
}

/// Arguments of `topicd crossval`.
#[derive(Debug, Args)]
pub struct CrossvalArgs {
    /// JSON Lines file(s) of labeled examples.
    #[arg(long = "data", required = true)]
    pub data: Vec<PathBuf>,
    /// Number of outer folds (example i is in fold i mod k).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Print one JSON object (the `topicd eval --json` shape) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Model settings of every fold's model.
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// Arguments of `topicd eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A model file or a models directory (its active model).
    #[arg(long, env = "TOPICD_MODEL_DIR", default_value = DEFAULT_MODEL_DIR)]
    pub model: PathBuf,
    /// JSON Lines file(s) to evaluate on.
    #[arg(long = "data", required = true)]
    pub data: Vec<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `topicd classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// The text; `-` or nothing reads standard input.
    pub text: Option<String>,
    /// A model file or a models directory (its active model).
    #[arg(long, env = "TOPICD_MODEL_DIR", default_value = DEFAULT_MODEL_DIR)]
    pub model: PathBuf,
    /// Ask a running server instead of loading a model (e.g. http://127.0.0.1:50051).
    #[arg(long)]
    pub addr: Option<String>,
    /// Print JSON with the fields of the gRPC ClassifyResponse.
    #[arg(long)]
    pub json: bool,
    /// Show the terms behind the top label.
    #[arg(long)]
    pub explain: bool,
    /// Show the per-paragraph breakdown.
    #[arg(long)]
    pub paragraphs: bool,
    /// Show only the best k scores (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
}

/// Arguments of `topicd models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// The models directory.
    #[arg(long, env = "TOPICD_MODEL_DIR", default_value = DEFAULT_MODEL_DIR)]
    pub model_dir: PathBuf,
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Serve(args) => crate::service::run_blocking(args),
        Command::Train(args) => train(args),
        Command::Eval(args) => eval(args),
        Command::Crossval(args) => crossval(args),
        Command::Classify(args) => classify(args),
        Command::Models(args) => models(args),
    }
}

fn settings_from(args: &SettingsArgs) -> Result<ModelSettings, String> {
    let mut settings = ModelSettings {
        kind: match args.kind {
            KindArg::Multinomial => NbKind::Multinomial,
            KindArg::Complement => NbKind::Complement,
            KindArg::OneVsRest => NbKind::OneVsRest,
        },
        alpha: args.alpha,
        tag_smoothing: match args.tag_smoothing {
            SmoothingArg::Lidstone => Smoothing::Lidstone,
            SmoothingArg::Dirichlet => Smoothing::Dirichlet,
        },
        folds: args.folds,
        transforms: Transforms {
            sublinear_tf: !args.no_sublinear_tf,
            idf: !args.no_idf,
            length_norm: !args.no_length_norm,
        },
        paragraph_tags: !args.no_paragraph_tags,
        weight_norm: !args.no_weight_norm,
        ..ModelSettings::default()
    };
    settings.analyzer.bigrams = !args.no_bigrams;
    settings.analyzer.stop_words = !args.keep_stop_words;
    settings.analyzer.headline = !args.no_headline;
    settings.analyzer.stemming = if args.no_stemming {
        Stemming::None
    } else {
        Stemming::Light
    };
    settings.analyzer.numbers = match args.numbers {
        NumbersArg::Keep => NumberMode::Keep,
        NumbersArg::Shape => NumberMode::Shape,
        NumbersArg::Drop => NumberMode::Drop,
    };
    settings.alpha_grid = if args.alpha_grid.trim() == "none" {
        Vec::new()
    } else {
        args.alpha_grid
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|a| *a > 0.0 && a.is_finite())
                    .ok_or_else(|| format!("--alpha-grid: {s:?} is not a positive number"))
            })
            .collect::<Result<_, _>>()?
    };
    if !(args.alpha > 0.0 && args.alpha.is_finite()) {
        return Err("--alpha must be a positive number".into());
    }
    Ok(settings)
}

fn train(args: TrainArgs) -> CliResult {
    let settings = settings_from(&args.settings)?;
    let examples: Vec<Example> = read_all(&args.data)?
        .iter()
        .map(LabeledText::to_example)
        .collect();
    // Read the evaluation file before training so that a bad file fails before any work.
    let held_out = match &args.eval {
        Some(path) => Some(read_all(std::slice::from_ref(path))?),
        None => None,
    };
    let started = Instant::now();
    let bar = progress_bar(examples.len() as u64);
    let model = Model::train(&settings, &examples, &mut |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let version = write_model(&model, &args.out)?;

    eprintln!(
        "trained {version}: {} examples, {} labels, {} terms in {seconds:.3} s ({})",
        examples.len(),
        model.labels().len(),
        model.counts().vocabulary.len(),
        model.settings().describe()
    );
    for (label, n) in model.label_examples() {
        eprintln!("  {label:<20} {n:>7} examples");
    }
    if let Some(cv) = &model.metadata().cv {
        eprintln!(
            "  {}-fold cross-validation: accuracy {:.4}, macro-F1 {:.4}, tag micro-F1 {:.4}, tag macro-F1 {:.4}, ECE {:.4} (alpha {})",
            cv.folds, cv.accuracy, cv.macro_f1, cv.tag_micro_f1, cv.tag_macro_f1, cv.ece, cv.alpha
        );
    }
    if let Some(held_out) = held_out {
        let report = evaluate(&model, &held_out);
        eprintln!("held-out evaluation:");
        eprint!("{}", render_report(&report));
    }
    eprintln!("written to {}", args.out.display());
    Ok(())
}

/// Writes a trained model to a `.model` file or into a models directory (saved and activated).
fn write_model(model: &Model, out: &Path) -> Result<String, Box<dyn std::error::Error>> {
    if out.extension().is_some_and(|e| e == "model") {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let written = model_header(model).and_then(|header| {
            write_atomically_with(out, |file| store::write_model(model, &header, file))?;
            Ok(header.version)
        });
        Ok(written.map_err(|e| format!("{}: {e}", out.display()))?)
    } else {
        let store = ModelStore::open(out)?;
        let version = store.save(model)?;
        store.activate(&version)?;
        Ok(version)
    }
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} analysing {pos}/{len} examples {wide_bar} {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn eval(args: EvalArgs) -> CliResult {
    let (_, model) = load_model_path(&args.model)?;
    let examples = read_all(&args.data)?;
    let report = evaluate(&model, &examples);
    if args.json {
        emit(&(serde_json::to_string(&report)? + "\n"))
    } else {
        emit(&render_report(&report))
    }
}

fn crossval(args: CrossvalArgs) -> CliResult {
    let settings = settings_from(&args.settings)?;
    let examples = read_all(&args.data)?;
    let report = cross_validate(&settings, &examples, args.k)?;
    if args.json {
        emit(&(serde_json::to_string(&report)? + "\n"))
    } else {
        emit(&format!(
            "{}-fold cross-validation ({})\n{}",
            args.k.max(2),
            settings.describe(),
            render_report(&report)
        ))
    }
}

fn render_report(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "examples        {}", report.n);
    let _ = writeln!(out, "accuracy        {:.4}", report.accuracy);
    let _ = writeln!(out, "macro-F1        {:.4}", report.macro_f1);
    let _ = writeln!(
        out,
        "tags            micro-F1 {:.4}  macro-F1 {:.4}  precision {:.4}  recall {:.4}",
        report.tags.micro_f1, report.tags.macro_f1, report.tags.precision, report.tags.recall
    );
    let _ = writeln!(out, "ECE             {:.4}", report.ece);
    let _ = writeln!(out, "docs/second     {:.0}", report.docs_per_second);
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>9} {:>9} {:>8} {:>9}",
        "label", "precision", "recall", "F1", "support", "tag F1"
    );
    for (label, m) in &report.per_label {
        let _ = writeln!(
            out,
            "{label:<20} {:>9.4} {:>9.4} {:>9.4} {:>8} {:>9.4}",
            m.precision, m.recall, m.f1, m.support, m.tag_f1
        );
    }
    if report.confusion.len() <= 12 {
        let labels: Vec<&String> = report.per_label.keys().collect();
        out.push('\n');
        let _ = write!(out, "{:<20}", "gold \\ predicted");
        for l in &labels {
            let _ = write!(out, " {:>10}", truncate(l, 10));
        }
        out.push('\n');
        for gold in &labels {
            let _ = write!(out, "{:<20}", truncate(gold, 20));
            for predicted in &labels {
                let n = report
                    .confusion
                    .get(*gold)
                    .and_then(|row| row.get(*predicted))
                    .copied()
                    .unwrap_or(0);
                let _ = write!(out, " {n:>10}");
            }
            out.push('\n');
        }
    }
    out
}

/// Writes command output to stdout; a closed pipe (`topicd eval | head`) is not an error.
fn emit(text: &str) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn read_text(arg: Option<String>) -> Result<String, Box<dyn std::error::Error>> {
    match arg.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            Ok(s)
        }
        Some(t) => Ok(t.to_owned()),
    }
}

/// The JSON shape of `topicd classify --json`: the fields of the gRPC ClassifyResponse.
#[derive(Serialize)]
struct ClassifyOutput<'a> {
    #[serde(flatten)]
    classification: Classification<'a>,
    model_version: String,
}

fn classify(args: ClassifyArgs) -> CliResult {
    let text = read_text(args.text.clone())?;
    if text.trim().is_empty() {
        return Err("no text to classify: pass it as an argument or on standard input".into());
    }
    let options = ClassifyOptions {
        top_k: args.top_k,
        explain: args.explain,
        paragraphs: args.paragraphs,
    };
    let (classification, model_version) = match &args.addr {
        Some(addr) => crate::service::client::classify_remote(addr, &text, options)?,
        None => {
            let (version, model) = load_model_path(&args.model)?;
            (model.classify(&text, options).into_owned(), version)
        }
    };
    if args.json {
        let out = ClassifyOutput {
            classification,
            model_version,
        };
        return emit(&(serde_json::to_string_pretty(&out)? + "\n"));
    }
    emit(&render_classification(
        &text,
        &classification,
        &model_version,
    ))
}

fn render_classification(text: &str, c: &Classification, version: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "label   {}", c.label);
    let _ = writeln!(out, "tags    {}", c.tags.join(", "));
    let _ = writeln!(out, "model   {version}");
    if c.known_terms == 0 {
        let _ = writeln!(
            out,
            "note    the model knows no term of this text: the scores are its label priors alone"
        );
    }
    for s in &c.scores {
        let _ = writeln!(out, "  {:<16} {:.4}", s.label, s.probability);
    }
    if !c.explanation.is_empty() {
        let _ = writeln!(out, "because");
        for t in &c.explanation {
            let _ = writeln!(out, "  {:<28} {:+.4}", t.term, t.weight);
        }
    }
    if !c.paragraphs.is_empty() {
        let _ = writeln!(out, "paragraphs");
        for p in &c.paragraphs {
            let snippet: String = text[p.start..p.end].chars().take(60).collect();
            let (label, tags) = if p.known_terms == 0 {
                ("-", "(no known term)".to_owned())
            } else {
                (&*p.label, p.tags.join(","))
            };
            let _ = writeln!(
                out,
                "  [{}..{}] {label:<10} tags {tags:<30} {snippet}…",
                p.start, p.end,
            );
        }
    }
    out
}

fn models(args: ModelsArgs) -> CliResult {
    let store = ModelStore::open(&args.model_dir)?;
    let active = store.active_version()?;
    let mut out = String::new();
    for listed in store.list()? {
        let summary = &listed.summary;
        let marker = if active.as_deref() == Some(listed.version.as_str()) {
            "*"
        } else {
            " "
        };
        let labels: Vec<String> = summary
            .labels
            .iter()
            .map(|(l, n)| format!("{l}={n}"))
            .collect();
        let _ = writeln!(
            out,
            "{marker} {}  {}  {} terms  {}",
            listed.version,
            summary.created_at,
            summary.vocabulary_size,
            labels.join(" ")
        );
    }
    emit(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn command_line_defaults_are_the_library_defaults() {
        // `topicd train` trains the shipped model; the benchmarks time `ModelSettings::default()`.
        let cli = Cli::try_parse_from(["topicd", "train", "--data", "x.jsonl", "--out", "models"]);
        let Ok(Cli {
            command: Command::Train(args),
        }) = cli
        else {
            panic!("`topicd train --data x.jsonl --out models` must parse");
        };
        assert_eq!(settings_from(&args.settings), Ok(ModelSettings::default()));
    }
}
