//! Reading labeled examples from JSON Lines files.
//!
//! Each line is an object with `"text"` and either `"labels": [..]` or `"label": ".."`; other fields
//! are ignored. Errors name the file, the line and what to fix.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::Example;

/// A labeled text as read from a file, keeping the single `"label"` apart for evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledText {
    /// The text.
    pub text: String,
    /// All labels (for a line with only `"label"`, that one label).
    pub labels: Vec<String>,
    /// The `"label"` field, when the line has one (the gold top label in evaluation).
    pub label: Option<String>,
}

impl LabeledText {
    /// The training example: labels with the single label first.
    pub fn to_example(&self) -> Example {
        Example {
            text: self.text.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// A problem with an input file, with its location.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a usable example.
    #[error("{path}:{line}: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The file holds no example.
    #[error("{path}: no examples (the file is empty)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

#[derive(Deserialize)]
struct Line {
    text: Option<serde_json::Value>,
    labels: Option<serde_json::Value>,
    label: Option<serde_json::Value>,
}

fn parse_line(raw: &str) -> Result<LabeledText, String> {
    let line: Line = serde_json::from_str(raw).map_err(|e| format!("invalid JSON: {e}"))?;
    let text = match line.text {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s,
        Some(serde_json::Value::String(_)) => return Err("\"text\" is empty".into()),
        Some(_) => return Err("\"text\" must be a string".into()),
        None => return Err("missing \"text\"".into()),
    };
    let label = match line.label {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(serde_json::Value::String(_)) => return Err("\"label\" is empty".into()),
        Some(_) => return Err("\"label\" must be a string".into()),
    };
    let mut labels: Vec<String> = match line.labels {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    serde_json::Value::String(s) if !s.trim().is_empty() => {
                        out.push(s.trim().to_owned())
                    }
                    serde_json::Value::String(_) => {
                        return Err("\"labels\" holds an empty label".into())
                    }
                    _ => return Err("\"labels\" must be a list of strings".into()),
                }
            }
            out
        }
        Some(_) => return Err("\"labels\" must be a list of strings".into()),
    };
    if let Some(l) = &label {
        if let Some(i) = labels.iter().position(|x| x == l) {
            labels.remove(i);
        }
        labels.insert(0, l.clone());
    }
    if labels.is_empty() {
        return Err("no label: add \"labels\": [..] or \"label\": \"..\"".into());
    }
    Ok(LabeledText {
        text,
        labels,
        label,
    })
}

/// Reads every example of a JSON Lines file. Blank lines are skipped.
pub fn read_jsonl(path: &Path) -> Result<Vec<LabeledText>, DataError> {
    let file = File::open(path).map_err(|source| DataError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| DataError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse_line(&line).map_err(|reason| DataError::BadLine {
            path: path.to_owned(),
            line: i + 1,
            reason,
        })?);
    }
    if out.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// Reads several files, in order.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<LabeledText>, DataError> {
    let mut out = Vec::new();
    for path in paths {
        out.extend(read_jsonl(path)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_and_labels_forms() {
        let a = parse_line(r#"{"text": "x", "label": "earn", "id": 3}"#).unwrap();
        assert_eq!(a.labels, vec!["earn"]);
        assert_eq!(a.label.as_deref(), Some("earn"));
        let b = parse_line(r#"{"text": "x", "labels": ["a", "b"]}"#).unwrap();
        assert_eq!(b.labels, vec!["a", "b"]);
        assert_eq!(b.label, None);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert!(parse_line("{").unwrap_err().contains("invalid JSON"));
        assert!(parse_line(r#"{"labels": ["a"]}"#)
            .unwrap_err()
            .contains("missing \"text\""));
        assert!(parse_line(r#"{"text": " ", "label": "a"}"#)
            .unwrap_err()
            .contains("empty"));
        assert!(parse_line(r#"{"text": "x", "label": ""}"#)
            .unwrap_err()
            .contains("\"label\" is empty"));
        assert!(parse_line(r#"{"text": "x"}"#)
            .unwrap_err()
            .contains("no label"));
        assert!(parse_line(r#"{"text": "x", "labels": [1]}"#)
            .unwrap_err()
            .contains("list of strings"));
    }
}
