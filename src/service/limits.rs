//! Request limits and input validation; every violation names the field and says what to fix.

use super::errors::ServiceError;

/// The configurable limits of one server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest encoded gRPC message accepted or sent.
    pub max_message_bytes: usize,
    /// Largest text (UTF-8 bytes) in Classify and in a training example.
    pub max_text_bytes: usize,
    /// Most texts in one ClassifyBatch.
    pub max_batch: usize,
    /// Most examples (training plus validation) in one Train or TrainStream call.
    pub max_train_examples: usize,
    /// Most labels a model may have.
    pub max_labels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 8 * 1024 * 1024,
            max_text_bytes: 1024 * 1024,
            max_batch: 256,
            max_train_examples: 100_000,
            max_labels: 1000,
        }
    }
}

/// Longest label name.
pub const MAX_LABEL_CHARS: usize = 64;

impl Limits {
    /// Checks one text to classify or train on.
    pub fn check_text(&self, field: &str, text: &str) -> Result<(), ServiceError> {
        if text.trim().is_empty() {
            return Err(ServiceError::invalid(
                field,
                "text is empty: send the text to classify",
            ));
        }
        if text.len() > self.max_text_bytes {
            return Err(ServiceError::too_large(
                field,
                format!(
                    "text is {} bytes; the limit is {} (--max-text-bytes): split it or raise the limit",
                    text.len(),
                    self.max_text_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Checks the number of texts in one batch.
    pub fn check_batch(&self, n: usize) -> Result<(), ServiceError> {
        if n == 0 {
            return Err(ServiceError::invalid(
                "texts",
                "the batch is empty: send at least one text",
            ));
        }
        if n > self.max_batch {
            return Err(ServiceError::too_large(
                "texts",
                format!(
                    "batch has {n} texts; the limit is {} (--max-batch): send several batches",
                    self.max_batch
                ),
            ));
        }
        Ok(())
    }

    /// Checks the number of examples of one training call.
    pub fn check_examples(&self, n: usize) -> Result<(), ServiceError> {
        if n > self.max_train_examples {
            return Err(ServiceError::too_large(
                "examples",
                format!(
                    "{n} examples; the limit is {} per call (--max-train-examples): send them in several calls",
                    self.max_train_examples
                ),
            ));
        }
        Ok(())
    }

    /// Checks the label count of a model about to be trained.
    pub fn check_label_count(&self, n: usize) -> Result<(), ServiceError> {
        if n > self.max_labels {
            return Err(ServiceError::too_large(
                "examples",
                format!(
                    "the model would have {n} labels; the limit is {} (--max-labels)",
                    self.max_labels
                ),
            ));
        }
        Ok(())
    }
}

/// Checks a label name: 1 to 64 characters of `a-z`, `0-9`, `_` and `-`, starting with a letter or
/// digit.
pub fn check_label(field: &str, label: &str) -> Result<(), ServiceError> {
    let valid = !label.is_empty()
        && label.len() <= MAX_LABEL_CHARS
        && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            format!(
                "label {label:?} is not valid: use 1 to {MAX_LABEL_CHARS} characters of a-z, 0-9, '_' and '-', starting with a letter or digit (lower-case)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_syntax() {
        assert!(check_label("l", "security").is_ok());
        assert!(check_label("l", "cyber-2").is_ok());
        assert!(check_label("l", "Security").is_err());
        assert!(check_label("l", "-x").is_err());
        assert!(check_label("l", "").is_err());
        assert!(check_label("l", "a b").is_err());
        assert!(check_label("l", &"a".repeat(65)).is_err());
    }
}
