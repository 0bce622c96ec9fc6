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
    /// Most paragraphs in one Classify, ClassifyBatch (all texts together) or ClassifyStream
    /// message when a per-paragraph breakdown is asked for.
    pub max_paragraphs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 8 * 1024 * 1024,
            max_text_bytes: 1024 * 1024,
            max_batch: 256,
            max_train_examples: 100_000,
            max_labels: 1000,
            max_paragraphs: 1000,
        }
    }
}

/// Longest label name.
pub const MAX_LABEL_CHARS: usize = 64;

impl Limits {
    /// Refuses a configuration with a zero limit (nothing could ever be served).
    pub fn validate(&self) -> Result<(), String> {
        let all = [
            ("--max-message-bytes", self.max_message_bytes),
            ("--max-text-bytes", self.max_text_bytes),
            ("--max-batch", self.max_batch),
            ("--max-train-examples", self.max_train_examples),
            ("--max-labels", self.max_labels),
            ("--max-paragraphs", self.max_paragraphs),
        ];
        for (flag, value) in all {
            if value == 0 {
                return Err(format!("{flag} is 0: every limit must be at least 1"));
            }
        }
        Ok(())
    }

    /// The status for a message over `--max-message-bytes`, from tonic's own decoding error.
    pub fn message_too_large(&self, found: Option<usize>) -> tonic::Status {
        let size = found.map_or_else(|| "too large".to_owned(), |n| format!("{n} bytes"));
        tonic::Status::resource_exhausted(format!(
            "the request message is {size}; the limit is {} (--max-message-bytes): send less per call (several ClassifyBatch calls, or TrainStream for training) or raise the limit",
            self.max_message_bytes
        ))
    }

    /// Checks the paragraphs of the texts of one request that asked for a per-paragraph breakdown.
    pub fn check_paragraphs<'a>(
        &self,
        field: &str,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ServiceError> {
        let mut n = 0;
        for text in texts {
            n += if text.contains('\n') {
                crate::model::paragraph_spans(text).len()
            } else {
                1
            };
        }
        if n > self.max_paragraphs {
            return Err(ServiceError::too_large(
                field,
                format!(
                    "{n} paragraphs with paragraphs = true; the limit is {} per request (--max-paragraphs): send fewer paragraphs per call or leave paragraphs unset",
                    self.max_paragraphs
                ),
            ));
        }
        Ok(())
    }

    /// Checks one text to classify or train on.
    pub fn check_text(&self, field: &str, text: &str) -> Result<(), ServiceError> {
        if text.trim().is_empty() {
            return Err(ServiceError::invalid(
                field,
                "text is empty: send a text with at least one word",
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
