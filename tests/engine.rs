//! The engine's math and files: hand-computed scores, linfa-bayes as an oracle, exact incremental
//! training, label removal, calibration, model file round-trips and corruption.

mod common;

use linfa::prelude::*;
use linfa_bayes::{MultinomialNb, NaiveBayes};
use ndarray::{Array1, Array2};
use topicd::model::features::{term_frequencies, Transforms};
use topicd::model::{ClassifyOptions, Example, Model, ModelSettings, NbKind, Smoothing};
use topicd::store::{decode_model, encode_model, ModelStore};
use topicd::text::{AnalyzerSettings, NumberMode, Stemming, TextKind};

fn plain_multinomial(alpha: f64) -> ModelSettings {
    ModelSettings {
        analyzer: AnalyzerSettings {
            stop_words: false,
            stemming: Stemming::None,
            numbers: NumberMode::Keep,
            bigrams: false,
            min_token_chars: 1,
            headline: false,
        },
        kind: NbKind::Multinomial,
        alpha,
        tag_alpha: alpha,
        tag_smoothing: Smoothing::Lidstone,
        alpha_grid: Vec::new(),
        transforms: Transforms::NONE,
        weight_norm: false,
        folds: 0,
        paragraph_tags: false,
        min_paragraph_terms: 12,
    }
}

fn ex(text: &str, labels: &[&str]) -> Example {
    Example {
        text: text.to_owned(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
    }
}

fn train(settings: &ModelSettings, examples: &[Example]) -> Model {
    Model::train(settings, examples, &mut |_| {}).expect("training succeeds")
}

#[test]
fn multinomial_scores_match_a_hand_computation() {
    // Vocabulary {a, b}; label x saw "a a b", label y saw "b".
    let model = train(
        &plain_multinomial(1.0),
        &[ex("a a b", &["x"]), ex("b", &["y"])],
    );
    let raw = model.raw_scores("a b");
    // θ_x = ((2+1)/(3+2), (1+1)/(3+2)) = (0.6, 0.4); θ_y = (1/3, 2/3); priors 1/2 each.
    let x = 0.5f64.ln() + 0.6f64.ln() + 0.4f64.ln();
    let y = 0.5f64.ln() + (1.0f64 / 3.0).ln() + (2.0f64 / 3.0).ln();
    assert!((raw.top[0] - x).abs() < 1e-12, "{} vs {x}", raw.top[0]);
    assert!((raw.top[1] - y).abs() < 1e-12, "{} vs {y}", raw.top[1]);
    // Uncalibrated (temperature 1) probabilities are the normalised joint likelihoods.
    let c = model.classify("a b", ClassifyOptions::default());
    let px = 1.0 / (1.0 + (y - x).exp());
    assert_eq!(&*c.label, "x");
    assert!((c.scores[0].probability - px).abs() < 1e-12);
    assert!((c.scores.iter().map(|s| s.probability).sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn multinomial_joint_log_likelihood_agrees_with_linfa_bayes() {
    let settings = plain_multinomial(0.5);
    let examples = common::tiny_examples();
    let model = train(&settings, &examples);
    let vocabulary = &model.counts().vocabulary;
    let n_features = vocabulary.len();
    let dense = |text: &str| {
        let mut row = vec![0.0f64; n_features];
        for (t, n) in term_frequencies(
            model.analyzer(),
            vocabulary,
            text,
            TextKind::Document,
            |_| (),
        )
        .0
        {
            row[t as usize] = n;
        }
        row
    };
    let mut x = Array2::<f64>::zeros((examples.len(), n_features));
    for (i, e) in examples.iter().enumerate() {
        x.row_mut(i).assign(&Array1::from(dense(&e.text)));
    }
    let label_index = |l: &str| {
        model
            .labels()
            .iter()
            .position(|m| m == l)
            .expect("known label")
    };
    let y = Array1::from(
        examples
            .iter()
            .map(|e| label_index(&e.labels[0]))
            .collect::<Vec<usize>>(),
    );
    let dataset = Dataset::new(x, y);
    let oracle: MultinomialNb<f64, usize> = MultinomialNb::params()
        .alpha(0.5)
        .fit(&dataset)
        .expect("linfa-bayes fits");

    let probes = [
        "missile test over the sea and an arms embargo",
        "inflation and interest rates at the central bank",
        "coal power and carbon emissions at the summit summit summit",
        "froze assets",
    ];
    let mut probe_x = Array2::<f64>::zeros((probes.len(), n_features));
    for (i, p) in probes.iter().enumerate() {
        probe_x.row_mut(i).assign(&Array1::from(dense(p)));
    }
    let jll = oracle.joint_log_likelihood(probe_x.view());
    for (i, probe) in probes.iter().enumerate() {
        let ours = model.raw_scores(probe).top;
        for (label, scores) in &jll {
            let theirs = scores[i];
            let mine = ours[**label];
            let relative = (mine - theirs).abs() / theirs.abs().max(1e-300);
            assert!(
                relative < 1e-9,
                "{probe:?} label {label}: topicd {mine} linfa {theirs}"
            );
        }
    }
}

#[test]
fn incremental_training_equals_training_on_the_union_with_a_new_label_mid_stream() {
    let settings = ModelSettings {
        folds: 0,
        ..ModelSettings::default()
    };
    let mut first = common::tiny_examples();
    let second = vec![
        ex(
            "A magnitude seven earthquake shook the coast and tsunami sirens sounded.",
            &["disaster"],
        ),
        ex(
            "Rescue teams searched collapsed buildings after the quake.",
            &["disaster", "security"],
        ),
        ex("The bank cut rates again as growth stalled.", &["economy"]),
    ];
    let a = train(&settings, &first);
    let incremental = a
        .train_incremental(&second, &[], None)
        .expect("incremental");
    first.extend(second);
    let batch = train(&settings, &first);

    assert_eq!(incremental.labels(), batch.labels());
    assert!(incremental.labels().contains(&"disaster".to_owned()));
    for probe in [
        "an earthquake and a tsunami warning on the coast",
        "rates and growth",
        "missile test",
        "",
    ] {
        assert_eq!(
            incremental.raw_scores(probe),
            batch.raw_scores(probe),
            "{probe:?}"
        );
    }
    // The counts, and so the saved bytes apart from metadata, are identical.
    assert_eq!(
        serde_json::to_string(&incremental.counts().to_file()).expect("serialises"),
        serde_json::to_string(&batch.counts().to_file()).expect("serialises")
    );
    assert_eq!(
        &*incremental
            .classify("earthquake rescue teams", ClassifyOptions::default())
            .label,
        "disaster"
    );
}

#[test]
fn removing_a_label_forgets_it() {
    let model = train(&ModelSettings::default(), &common::tiny_examples());
    let removed = model
        .train_incremental(&[], &["sanctions".to_owned()], None)
        .expect("removal");
    assert_eq!(removed.labels().len(), 3);
    assert!(!removed.labels().contains(&"sanctions".to_owned()));
    let c = removed.classify(
        "asset freezes and an arms embargo",
        ClassifyOptions::default(),
    );
    assert_ne!(&*c.label, "sanctions");
    assert!(model
        .train_incremental(&[], &["nonexistent".to_owned()], None)
        .is_err());
}

#[test]
fn invalid_examples_are_refused_with_their_index() {
    let err = Model::train(
        &ModelSettings::default(),
        &[ex("fine", &["a"]), ex("  ", &["b"])],
        &mut |_| {},
    )
    .expect_err("empty text refused");
    assert!(err.to_string().contains("example 1"), "{err}");
    let err = Model::train(&ModelSettings::default(), &[ex("text", &[])], &mut |_| {})
        .expect_err("no label refused");
    assert!(err.to_string().contains("no label"), "{err}");
    assert!(Model::train(&ModelSettings::default(), &[], &mut |_| {}).is_err());
}

#[test]
fn probabilities_stay_finite_for_very_long_texts() {
    let model = train(&plain_multinomial(0.1), &common::tiny_examples());
    let long = "missile artillery troops inflation carbon embargo ".repeat(5_000);
    let c = model.classify(&long, ClassifyOptions::default());
    let sum: f64 = c.scores.iter().map(|s| s.probability).sum();
    assert!(c.scores.iter().all(|s| s.probability.is_finite()));
    assert!((sum - 1.0).abs() < 1e-9);
}

#[test]
fn explanation_and_paragraphs_are_given_on_request() {
    let model = train(&ModelSettings::default(), &common::tiny_examples());
    let text = "Troops shelled the border villages with artillery.\n\nThe treasury froze bank assets and extended the arms embargo.";
    let c = model.classify(
        text,
        ClassifyOptions {
            top_k: 0,
            explain: true,
            paragraphs: true,
        },
    );
    assert!(!c.explanation.is_empty());
    assert!(c.explanation.windows(2).all(|w| w[0].weight >= w[1].weight));
    assert_eq!(c.paragraphs.len(), 2);
    assert_eq!(&*c.paragraphs[0].label, "security");
    assert_eq!(&*c.paragraphs[1].label, "sanctions");
    assert_eq!(
        &text[c.paragraphs[1].start..c.paragraphs[1].end],
        text.split("\n\n").nth(1).unwrap_or("")
    );
    let plain = model.classify(text, ClassifyOptions::default());
    assert!(plain.explanation.is_empty() && plain.paragraphs.is_empty());
    let top2 = model.classify(
        text,
        ClassifyOptions {
            top_k: 2,
            ..ClassifyOptions::default()
        },
    );
    assert_eq!(top2.scores.len(), 2);
}

#[test]
fn a_paragraph_with_no_known_term_gets_no_tag_and_says_so() {
    let model = train(&ModelSettings::default(), &common::tiny_examples());
    let text = "Troops shelled the border villages with artillery.\n\nZzqv blorft.\n\nThe treasury froze bank assets and extended the arms embargo.";
    let c = model.classify(
        text,
        ClassifyOptions {
            paragraphs: true,
            ..ClassifyOptions::default()
        },
    );
    let known: Vec<usize> = c.paragraphs.iter().map(|p| p.known_terms).collect();
    assert_eq!(c.paragraphs.len(), 3);
    assert!(known[0] > 0 && known[1] == 0 && known[2] > 0, "{known:?}");
    assert!(
        c.paragraphs[1].tags.is_empty(),
        "{:?}",
        c.paragraphs[1].tags
    );
    assert_eq!(c.paragraphs[1].scores.len(), model.labels().len());
    assert_eq!(c.paragraphs[0].tags.first().map(|t| &**t), Some("security"));
    assert_eq!(
        c.paragraphs[2].tags.first().map(|t| &**t),
        Some("sanctions")
    );
    // The whole text knows at least the terms of its paragraphs (a bigram may span two).
    assert!(
        c.known_terms >= known.iter().sum::<usize>(),
        "{}",
        c.known_terms
    );

    // A whole text with no known term: scores are the priors; the top label stays tagged, as the
    // protocol promises, and `known_terms` tells the caller there was no evidence.
    let unknown = model.classify("Zzqv blorft.", ClassifyOptions::default());
    assert_eq!(unknown.known_terms, 0);
    assert_eq!(unknown.tags, vec![unknown.label.clone()]);
}

#[test]
fn calibrated_training_records_cross_validated_metrics() {
    let mut examples = Vec::new();
    for _ in 0..4 {
        examples.extend(common::tiny_examples());
    }
    let model = train(&ModelSettings::default(), &examples);
    let cv = model.metadata().cv.clone().expect("cross-validation ran");
    assert_eq!(cv.folds, 10);
    assert!(cv.accuracy > 0.5, "{cv:?}");
    assert!(model.calibration().temperature > 0.0);
    assert_eq!(model.calibration().thresholds.len(), 4);
}

#[test]
fn model_files_round_trip_and_are_deterministic() {
    let settings = ModelSettings::default();
    std::env::set_var("SOURCE_DATE_EPOCH", "1795824000");
    let a = train(&settings, &common::tiny_examples());
    let b = train(&settings, &common::tiny_examples());
    let (version_a, bytes_a) = encode_model(&a);
    let (version_b, bytes_b) = encode_model(&b);
    assert!(bytes_a == bytes_b, "same data, same bytes");
    assert_eq!(version_a, version_b);
    let (version, decoded) = decode_model(&bytes_a).expect("decodes");
    assert_eq!(version, version_a);
    for probe in [
        "missile test",
        "carbon emissions",
        "interest rates",
        "asset freeze",
    ] {
        assert_eq!(decoded.raw_scores(probe), a.raw_scores(probe));
    }
    assert!(encode_model(&decoded).1 == bytes_a, "re-encoding is stable");
}

#[test]
fn corrupted_model_files_are_refused_with_a_clear_reason() {
    let model = train(&ModelSettings::default(), &common::tiny_examples());
    let (_, bytes) = encode_model(&model);
    let header_end = bytes.iter().position(|&b| b == b'\n').expect("header line");

    let mut flipped = bytes.clone();
    let middle = header_end + (bytes.len() - header_end) / 2;
    flipped[middle] ^= 0x20;
    let err = decode_model(&flipped).expect_err("flipped byte refused");
    assert!(err.contains("checksum"), "{err}");

    let truncated = &bytes[..bytes.len() - 10];
    let err = decode_model(truncated).expect_err("truncated refused");
    assert!(err.contains("truncated"), "{err}");

    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let future = text.replacen("\"format_version\":1", "\"format_version\":99", 1);
    let err = decode_model(future.as_bytes()).expect_err("future version refused");
    assert!(err.contains("format version 99"), "{err}");

    let err = decode_model(b"hello world").expect_err("garbage refused");
    assert!(err.contains("not a topicd model"), "{err}");
}

#[test]
fn models_directory_saves_activates_lists_and_rolls_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ModelStore::open(dir.path()).expect("opens");
    assert!(store.active_version().expect("reads").is_none());
    assert!(store.load_active().is_err());

    let first = train(&ModelSettings::default(), &common::tiny_examples());
    let v1 = store.save(&first).expect("saves");
    store.activate(&v1).expect("activates");
    let second = first
        .train_incremental(
            &[ex(
                "Floods displaced thousands after a cyclone.",
                &["disaster"],
            )],
            &[],
            Some(v1.clone()),
        )
        .expect("trains");
    let v2 = store.save(&second).expect("saves");
    store.activate(&v2).expect("activates");
    assert_eq!(store.load_active().expect("loads").version, v2);
    // Listing reads each file's summary without building the model: the same summary.
    let listed = store.list().expect("lists");
    assert_eq!(listed.len(), 2);
    for (version, model) in [(&v1, &first), (&v2, &second)] {
        let found = listed
            .iter()
            .find(|l| &l.version == version)
            .expect("listed");
        assert_eq!(found.summary, model.summary());
    }
    let newer = listed.iter().find(|l| l.version == v2).expect("listed");
    assert_eq!(newer.summary.parent_version.as_ref(), Some(&v1));

    store.activate(&v1).expect("rolls back");
    let active = store.load_active().expect("loads");
    assert_eq!(active.version, v1);
    assert_eq!(active.model.labels().len(), 4);
    assert!(store.activate("m0000000000000000").is_err());
    assert!(store.activate("../../etc/passwd").is_err());
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("reads dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Many distinct examples: the tiny corpus with a numbered extra word in each, so that new terms
/// keep appearing in every tokenizer chunk.
fn many_examples(n: usize) -> Vec<Example> {
    let tiny = common::tiny_examples();
    (0..n)
        .map(|i| {
            let base = &tiny[i % tiny.len()];
            Example {
                text: format!("{} codeword{} extra{}", base.text, i, i % 7),
                labels: base.labels.clone(),
            }
        })
        .collect()
}

#[test]
fn training_in_parallel_chunks_equals_training_in_small_increments() {
    let settings = ModelSettings {
        folds: 0,
        ..ModelSettings::default()
    };
    let examples = many_examples(700);
    // One call: tokenized on worker threads in chunks, consumed in order.
    let at_once = train(&settings, &examples);
    // Batches smaller than one chunk: everything on the calling thread.
    let mut step = train(&settings, &examples[..50]);
    for batch in examples[50..].chunks(50) {
        step = step
            .train_incremental(batch, &[], None)
            .expect("incremental");
    }
    assert_eq!(
        serde_json::to_string(&at_once.counts().to_file()).expect("serialises"),
        serde_json::to_string(&step.counts().to_file()).expect("serialises")
    );
}

#[test]
fn eval_report_does_not_depend_on_the_number_of_threads() {
    let examples = many_examples(300);
    let model = train(&ModelSettings::default(), &examples);
    let labeled: Vec<topicd::data::LabeledText> = examples
        .iter()
        .map(|e| topicd::data::LabeledText {
            text: e.text.clone(),
            labels: e.labels.clone(),
            label: None,
        })
        .collect();
    let one = topicd::eval::evaluate_with(&model, &labeled, 1);
    let three = topicd::eval::evaluate_with(&model, &labeled, 3);
    assert_eq!(one.n, 300);
    assert_eq!(one.accuracy, three.accuracy);
    assert_eq!(one.ece, three.ece);
    assert_eq!(one.tags.micro_f1, three.tags.micro_f1);
}

#[test]
fn label_biases_follow_the_labels_through_incremental_training() {
    let mut examples = Vec::new();
    for _ in 0..4 {
        examples.extend(common::tiny_examples());
    }
    let model = train(&ModelSettings::default(), &examples);
    let n = model.labels().len();
    assert_eq!(model.calibration().label_bias.len(), n);
    let grown = model
        .train_incremental(
            &[ex("A new kind of story entirely.", &["novel"])],
            &[],
            None,
        )
        .expect("incremental");
    assert_eq!(grown.calibration().label_bias.len(), n + 1);
    assert_eq!(grown.calibration().label_bias[n], 0.0);
    let first = model.labels()[0].clone();
    let shrunk = model
        .train_incremental(&[], &[first], None)
        .expect("removal");
    assert_eq!(shrunk.calibration().label_bias.len(), n - 1);
    assert_eq!(
        shrunk.calibration().label_bias[..],
        model.calibration().label_bias[1..]
    );
}

#[test]
fn headline_terms_are_learned_stored_and_read_back() {
    // A body both labels share, so that only the first line tells them apart.
    let body = "The board met on Tuesday and said more details would follow next week.";
    let examples: Vec<Example> = (0..6)
        .flat_map(|i| {
            [
                ex(
                    &format!("Company agrees to takeover bid {i}\n{body}"),
                    &["acq"],
                ),
                ex(&format!("Quarterly profit rises {i}\n{body}"), &["earn"]),
            ]
        })
        .collect();
    let settings = ModelSettings {
        folds: 0,
        ..ModelSettings::default()
    };
    let model = train(&settings, &examples);
    let terms: Vec<&str> = model.counts().vocabulary.terms().collect();
    for expected in ["^takeover", "^to", "^takeover ^bid", "^profit"] {
        assert!(terms.contains(&expected), "{expected} in {terms:?}");
    }
    // The headline keeps its stop words but not its numbers; the body drops stop words.
    assert!(!terms.iter().any(|t| t.starts_with("^#")), "{terms:?}");
    assert!(!terms.contains(&"to"));
    let (_, bytes) = encode_model(&model);
    let (_, decoded) = decode_model(&bytes).expect("decodes");
    assert!(decoded.settings().analyzer.headline);
    for probe in [
        "Takeover bid\nThe board met.",
        "Profit rises\nThe board met.",
    ] {
        assert_eq!(decoded.raw_scores(probe), model.raw_scores(probe));
    }
    let options = ClassifyOptions::default();
    let label = |text: &str| model.classify(text, options).label.into_owned();
    assert_eq!(
        label("Takeover bid agreed\nThe board met on Tuesday."),
        "acq"
    );
    assert_eq!(
        label("Profit rises again\nThe board met on Tuesday."),
        "earn"
    );
}
