//! Training through the service: validation, the quality gate, durable save, activation, swap.

use std::collections::HashSet;
use std::sync::Arc;

use super::errors::ServiceError;
use super::limits::{check_label, Limits};
use super::registry::{LoadedModel, Registry};
use crate::data::LabeledText;
use crate::eval::evaluate;
use crate::model::{Example, Model, ModelSettings};

/// What a training call asks for, after decoding.
#[derive(Debug, Clone, Default)]
pub struct TrainJob {
    /// Examples to learn.
    pub examples: Vec<Example>,
    /// Start a fresh model instead of adding to the active one.
    pub fresh: bool,
    /// Labels to remove.
    pub remove_labels: Vec<String>,
    /// Activate the result (if it passes the gate).
    pub activate: bool,
    /// Examples to measure the gate on (never trained on).
    pub validation: Vec<Example>,
    /// Fraction of `examples` held out for the gate.
    pub holdout_fraction: f64,
    /// Minimum top-1 accuracy on the validation examples.
    pub min_accuracy: f64,
}

/// What a training call produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The saved version.
    pub version: String,
    /// Whether it is now the active model.
    pub activated: bool,
    /// Why it was not activated.
    pub reason: String,
    /// Validation examples measured.
    pub validation_examples: usize,
    /// Top-1 accuracy on them.
    pub accuracy: f64,
    /// Macro-F1 on them.
    pub macro_f1: f64,
    /// Examples per label in the new model.
    pub labels: Vec<(String, u64)>,
    /// Examples trained on in this call.
    pub examples_trained: usize,
}

/// Checks every field of a job before any work.
pub fn validate(job: &TrainJob, limits: &Limits) -> Result<(), ServiceError> {
    limits.check_examples(job.examples.len() + job.validation.len())?;
    let check_all = |name: &str, examples: &[Example]| -> Result<(), ServiceError> {
        for (i, e) in examples.iter().enumerate() {
            limits.check_text(&format!("{name}[{i}].text"), &e.text)?;
            if e.labels.is_empty() {
                return Err(ServiceError::invalid(
                    &format!("{name}[{i}].labels"),
                    "no label: give each example at least one label",
                ));
            }
            for (j, label) in e.labels.iter().enumerate() {
                check_label(&format!("{name}[{i}].labels[{j}]"), label)?;
            }
        }
        Ok(())
    };
    check_all("examples", &job.examples)?;
    check_all("gate.validation", &job.validation)?;
    for (i, label) in job.remove_labels.iter().enumerate() {
        check_label(&format!("remove_labels[{i}]"), label)?;
    }
    if !(0.0..1.0).contains(&job.holdout_fraction) {
        return Err(ServiceError::invalid(
            "gate.holdout_fraction",
            format!(
                "{} is not a fraction: use 0 (none) or a value strictly between 0 and 1",
                job.holdout_fraction
            ),
        ));
    }
    if !(0.0..=1.0).contains(&job.min_accuracy) {
        return Err(ServiceError::invalid(
            "gate.min_accuracy",
            format!(
                "{} is not an accuracy: use a value from 0 to 1",
                job.min_accuracy
            ),
        ));
    }
    if job.examples.is_empty() && job.remove_labels.is_empty() {
        return Err(ServiceError::invalid(
            "examples",
            "nothing to train: send examples, labels to remove, or both",
        ));
    }
    if job.fresh && job.examples.is_empty() {
        return Err(ServiceError::invalid(
            "examples",
            "a fresh model needs examples (TRAIN_MODE_FRESH)",
        ));
    }
    Ok(())
}

/// Splits off every k-th example (k = round(1 / fraction)) as held out.
fn hold_out(examples: Vec<Example>, fraction: f64) -> (Vec<Example>, Vec<Example>) {
    if fraction <= 0.0 {
        return (examples, Vec::new());
    }
    let every = ((1.0 / fraction).round() as usize).max(2);
    let mut train = Vec::with_capacity(examples.len());
    let mut held = Vec::new();
    for (i, e) in examples.into_iter().enumerate() {
        if i % every == every - 1 {
            held.push(e);
        } else {
            train.push(e);
        }
    }
    (train, held)
}

/// Runs one training job: validates it, waits for the writer lock, then builds, gates, saves,
/// activates and swaps in the new model on the registry's model thread. That job owns the lock and
/// finishes even if the caller stops waiting (cancelled, deadline exceeded), so the live model and
/// `ACTIVE` never disagree; the outcome is returned once the model file is durable.
pub async fn train(
    registry: Arc<Registry>,
    job: TrainJob,
    limits: Arc<Limits>,
) -> Result<TrainOutcome, ServiceError> {
    validate(&job, &limits)?;
    let writer = registry.lock_writer().await;
    let model_thread = registry.model_thread().clone();
    model_thread
        .run("training", move || {
            let base = registry.active();
            let (loaded, outcome) = run(&registry, base, job, &limits)?;
            if outcome.activated {
                registry.swap_in(loaded, &writer);
            }
            tracing::info!(
                version = %outcome.version,
                activated = outcome.activated,
                examples = outcome.examples_trained,
                labels = outcome.labels.len(),
                reason = %outcome.reason,
                "trained"
            );
            Ok(outcome)
        })
        .await
}

/// Builds, gates and saves the model of one job (blocking), then writes `ACTIVE` if it is to be
/// activated. Returns the model and the outcome; the caller swaps it in.
fn run(
    registry: &Registry,
    base: Option<Arc<LoadedModel>>,
    job: TrainJob,
    limits: &Limits,
) -> Result<(Arc<LoadedModel>, TrainOutcome), ServiceError> {
    let (examples, mut validation) = hold_out(job.examples, job.holdout_fraction);
    validation.extend(job.validation);
    let base = match (job.fresh, base) {
        (true, _) => None,
        (false, Some(base)) => Some(base),
        (false, None) => {
            return Err(ServiceError::Precondition(
                "no active model to add to: send TRAIN_MODE_FRESH to start one".into(),
            ))
        }
    };
    // Check the labels to remove and count the labels of the new model before spending any time
    // on it, in the engine's order: a fresh model removes from its examples' labels; an
    // incremental one removes from the base model's labels, then adds the examples'.
    let example_labels = examples
        .iter()
        .flat_map(|e| e.labels.iter().map(|l| l.trim()));
    let mut labels: HashSet<&str> = match &base {
        None => example_labels.clone().collect(),
        Some(base) => base.model.labels().iter().map(String::as_str).collect(),
    };
    for (i, label) in job.remove_labels.iter().enumerate() {
        if !labels.remove(label.as_str()) {
            return Err(ServiceError::invalid(
                &format!("remove_labels[{i}]"),
                format!(
                    "cannot remove label {label:?}: the model has no such label (GetModel lists its labels)"
                ),
            ));
        }
    }
    if base.is_some() {
        labels.extend(example_labels);
    }
    limits.check_label_count(labels.len())?;
    let model = match base {
        None => {
            let model = Model::train(&ModelSettings::default(), &examples, &mut |_| {})?;
            if job.remove_labels.is_empty() {
                model
            } else {
                model.train_incremental(&[], &job.remove_labels, None)?
            }
        }
        Some(base) => base.model.train_incremental(
            &examples,
            &job.remove_labels,
            Some(base.version.clone()),
        )?,
    };
    limits.check_label_count(model.labels().len())?;

    let mut reason = String::new();
    let (mut accuracy, mut macro_f1) = (0.0, 0.0);
    if !validation.is_empty() {
        let texts: Vec<LabeledText> = validation
            .iter()
            .map(|e| LabeledText {
                text: e.text.clone(),
                labels: e.labels.clone(),
                label: None,
            })
            .collect();
        let report = evaluate(&model, &texts);
        accuracy = report.accuracy;
        macro_f1 = report.macro_f1;
        if accuracy < job.min_accuracy {
            reason = format!(
                "quality gate failed: accuracy {accuracy:.4} on {} validation examples is below the minimum {:.4}; the model was saved but not activated",
                texts.len(),
                job.min_accuracy
            );
        }
    } else if job.min_accuracy > 0.0 {
        reason = "quality gate failed: min_accuracy was set but there are no validation examples (send gate.validation or gate.holdout_fraction); the model was saved but not activated".into();
    }

    let version = registry.store().save(&model)?;
    let activated = job.activate && reason.is_empty();
    if activated {
        registry.store().activate(&version)?;
    } else if !job.activate {
        let why =
            "not activated: the request set activate = false; ActivateModel can activate it later";
        reason = if reason.is_empty() {
            why.to_owned()
        } else {
            format!("{reason}; {why}")
        };
    }
    let outcome = TrainOutcome {
        version: version.clone(),
        activated,
        reason,
        validation_examples: validation.len(),
        accuracy,
        macro_f1,
        labels: model.label_examples(),
        examples_trained: examples.len(),
    };
    Ok((Arc::new(LoadedModel { version, model }), outcome))
}
