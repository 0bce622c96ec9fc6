//! Criterion micro-benchmarks of the engine: `cargo bench --bench engine` (a couple of minutes).
//!
//! * `analyzer/*`: the terms of a ~200-word article (tokenizer, numbers, stop words, stemming, bigrams).
//! * `classify/*`: `Model::classify` of a short (~45 words) and a long (~200 words, four paragraphs)
//!   document, default options, with a model trained with default settings on `seeds/train.jsonl`
//!   when present, else on the first 2,000 R8 training documents from `../shared`, else on a tiny
//!   built-in corpus.
//! * `train/*`: `Model::train` on 300 documents of the same corpus with `folds = 0` and no α grid
//!   (analysis and counting only), and with the default settings (internal cross-validation).
//!
//! The whole-system numbers (sklearn, fastText, gRPC, memory) come from `bench/run.sh`; see
//! BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use topicd::data::{read_jsonl, LabeledText};
use topicd::model::{ClassifyOptions, Example, Model, ModelSettings};
use topicd::text::{Analyzer, AnalyzerSettings};

/// mimalloc, as in the `topicd` binary (see src/main.rs), so that the timings are those of the
/// program people run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An original ~200-word wire-style article in four paragraphs.
const ARTICLE: &str = "LISBON, May 14 — The finance ministry of a mid-sized Atlantic economy cut its growth \
forecast for the year to 1.2 percent on Wednesday, blaming weaker orders from its two largest export \
markets and a slump in tourism bookings after an unusually wet spring.

Officials said tax receipts in the first quarter were 3.4 percent below plan, although spending on \
pensions and public-sector wages stayed on track. The budget deficit is now expected to reach 2.9 \
percent of output, close to the ceiling agreed with the country's lenders last autumn.

Economists at two domestic banks said the central bank was unlikely to move interest rates before the \
summer, noting that core inflation had eased for a fourth straight month while unemployment held near \
a record low. Bond yields fell slightly after the announcement and the main share index closed flat.

The minister told reporters that a planned road and port investment programme would go ahead, funded \
partly by a new infrastructure bond. Opposition lawmakers called the revised figures optimistic and \
demanded a fresh estimate of the costs of last winter's storms, which damaged harbours, vineyards and \
rail lines along the northern coast.";

/// An original ~45-word brief.
const SHORT: &str = "Shipping insurers raised premiums for tankers crossing the strait after two vessels \
reported drone sightings overnight, while the coastal navy said patrol boats had escorted a grain carrier \
to port and that an inquiry into the incidents had begun with help from allied naval officers.";

/// A tiny built-in corpus, used only when neither the seeds nor the shared data are present.
const TINY: &[(&str, &str)] = &[
    (
        "economy",
        "The central bank raised interest rates as inflation climbed and the currency weakened.",
    ),
    (
        "economy",
        "Quarterly profits at the retailer beat forecasts while unemployment fell to a record low.",
    ),
    (
        "economy",
        "Exports rose sharply and the trade surplus widened as factory orders recovered.",
    ),
    (
        "economy",
        "Bond yields fell after the budget kept spending flat and tax receipts improved.",
    ),
    (
        "security",
        "Troops were moved to the border after a missile test and an exchange of artillery fire.",
    ),
    (
        "security",
        "The defence ministry reported a drone strike on a fuel depot near the front line.",
    ),
    (
        "security",
        "Naval patrols intercepted a boat carrying weapons; the army raised its alert level.",
    ),
    (
        "security",
        "Intelligence services blamed a hacking group for the cyberattack on the power grid.",
    ),
    (
        "climate",
        "Record heat and drought cut harvests as scientists linked the heatwave to warming.",
    ),
    (
        "climate",
        "The summit agreed to cut emissions faster and to phase out coal power plants.",
    ),
    (
        "climate",
        "Solar and wind capacity grew while sea-level rise threatened low-lying islands.",
    ),
    (
        "climate",
        "Carbon prices rose after the trading scheme tightened its emissions cap.",
    ),
    (
        "sanctions",
        "The government froze the assets of three banks and imposed an arms embargo.",
    ),
    (
        "sanctions",
        "New export controls blacklist firms accused of helping evade the oil embargo.",
    ),
    (
        "sanctions",
        "Travel bans were placed on officials as the council extended its sanctions regime.",
    ),
    (
        "sanctions",
        "Regulators fined a shipping company for breaching the asset freeze and embargo.",
    ),
];

fn corpus() -> Vec<Example> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        (root.join("seeds/train.jsonl"), usize::MAX),
        (
            root.join("../shared/data/reuters21578/r8_train.jsonl"),
            2000,
        ),
    ];
    for (path, limit) in candidates {
        if let Ok(docs) = read_jsonl(&path) {
            let examples: Vec<Example> = docs
                .iter()
                .take(limit)
                .map(LabeledText::to_example)
                .collect();
            if examples.len() >= 50 {
                eprintln!(
                    "engine bench corpus: {} ({} documents)",
                    path.display(),
                    examples.len()
                );
                return examples;
            }
        }
    }
    eprintln!("engine bench corpus: built-in tiny corpus");
    TINY.iter()
        .map(|(label, text)| Example {
            text: (*text).to_owned(),
            labels: vec![(*label).to_owned()],
        })
        .collect()
}

fn analyzer(c: &mut Criterion) {
    let analyzer = Analyzer::new(AnalyzerSettings::default());
    let mut group = c.benchmark_group("analyzer");
    group.throughput(Throughput::Bytes(ARTICLE.len() as u64));
    group.bench_function("for_each_term_200_words", |b| {
        b.iter(|| {
            let mut n = 0usize;
            analyzer.for_each_term(black_box(ARTICLE), |t| n += t.len());
            n
        })
    });
    group.bench_function("terms_200_words", |b| {
        b.iter(|| analyzer.terms(black_box(ARTICLE)))
    });
    group.finish();
}

fn classify(c: &mut Criterion) {
    let examples = corpus();
    let model = match Model::train(&ModelSettings::default(), &examples, &mut |_| {}) {
        Ok(m) => m,
        Err(e) => panic!("training the benchmark model failed: {e}"),
    };
    let options = ClassifyOptions::default();
    let mut group = c.benchmark_group("classify");
    group.bench_function("short_45_words", |b| {
        b.iter(|| model.classify(black_box(SHORT), options))
    });
    group.bench_function("long_200_words_4_paragraphs", |b| {
        b.iter(|| model.classify(black_box(ARTICLE), options))
    });
    group.finish();
}

fn train(c: &mut Criterion) {
    let examples: Vec<Example> = corpus().into_iter().take(300).collect();
    let counting = ModelSettings {
        folds: 0,
        alpha_grid: Vec::new(),
        ..ModelSettings::default()
    };
    let mut group = c.benchmark_group("train");
    group.throughput(Throughput::Elements(examples.len() as u64));
    group.sample_size(10);
    group.bench_function("counting_300_docs", |b| {
        b.iter(|| {
            Model::train(&counting, black_box(&examples), &mut |_| {}).map(|m| m.labels().len())
        })
    });
    group.bench_function("default_cv_300_docs", |b| {
        b.iter(|| {
            Model::train(&ModelSettings::default(), black_box(&examples), &mut |_| {})
                .map(|m| m.labels().len())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = analyzer, classify, train
}
criterion_main!(benches);
