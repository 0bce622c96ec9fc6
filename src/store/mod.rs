//! Model files and the models directory.
//!
//! A model file is two parts: one header line of JSON (`format`, `format_version`, `version`,
//! `payload_bytes`, `crc32`), then the payload, the model as JSON. The checksum and length are
//! verified before the payload is parsed, so a flipped byte, a truncated file or a file of another
//! format version is refused with a message saying which. Floats are written in their shortest exact
//! form and every list is in a deterministic order, so the same training data gives byte-identical
//! files. The model version is derived from the payload (`m` + 16 hex digits of its FNV-1a hash).
//!
//! A models directory holds `<version>.model` files and a file `ACTIVE` naming the active version.
//! Every write is atomic: write a temporary file, fsync it, rename it over the target, fsync the
//! directory. A reader therefore sees either the old or the new file, never half of one.

mod atomic;
mod format;

use std::fs;
use std::path::{Path, PathBuf};

pub use atomic::{write_atomically, write_atomically_with};
pub use format::{
    decode_model, decode_summary, encode_model, model_header, write_model, ModelHeader,
    FORMAT_VERSION,
};

use crate::model::{Model, ModelSummary};

/// What can go wrong reading or writing models.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid model file.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do about it.
        reason: String,
    },
    /// No saved model has this version.
    #[error("no model version {version:?} in {dir}; `topicd models --model-dir {dir}` lists the saved versions")]
    UnknownVersion {
        /// The version asked for.
        version: String,
        /// The models directory.
        dir: PathBuf,
    },
    /// The directory has no active model.
    #[error(
        "{dir} has no active model (no ACTIVE file); train one with `topicd train --out {dir}`"
    )]
    NoActiveModel {
        /// The models directory.
        dir: PathBuf,
    },
}

impl StoreError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// One saved model, loaded from its file.
#[derive(Debug, Clone)]
pub struct SavedModel {
    /// Its version.
    pub version: String,
    /// The model itself.
    pub model: Model,
}

/// One saved version as [`ModelStore::list`] shows it.
#[derive(Debug, Clone)]
pub struct ListedModel {
    /// Its version.
    pub version: String,
    /// What it is, read from its file.
    pub summary: ModelSummary,
}

/// A directory of versioned model files with one active version.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

const ACTIVE_FILE: &str = "ACTIVE";
const MODEL_EXTENSION: &str = "model";

impl ModelStore {
    /// Opens (creating if needed) a models directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn model_path(&self, version: &str) -> PathBuf {
        self.dir.join(format!("{version}.{MODEL_EXTENSION}"))
    }

    /// Saves a model atomically and returns its version. Saving the same model twice is harmless.
    pub fn save(&self, model: &Model) -> Result<String, StoreError> {
        let header = model_header(model).map_err(|e| StoreError::io(&self.dir, e))?;
        let path = self.model_path(&header.version);
        if !path.exists() {
            write_atomically_with(&path, |out| write_model(model, &header, out))
                .map_err(|e| StoreError::io(&path, e))?;
        }
        Ok(header.version)
    }

    /// Makes `version` the active model (it must be saved already).
    pub fn activate(&self, version: &str) -> Result<(), StoreError> {
        if !is_valid_version(version) || !self.model_path(version).exists() {
            return Err(StoreError::UnknownVersion {
                version: version.to_owned(),
                dir: self.dir.clone(),
            });
        }
        let path = self.dir.join(ACTIVE_FILE);
        write_atomically(&path, format!("{version}\n").as_bytes())
            .map_err(|e| StoreError::io(&path, e))
    }

    /// The active version, if any.
    pub fn active_version(&self) -> Result<Option<String>, StoreError> {
        let path = self.dir.join(ACTIVE_FILE);
        match fs::read_to_string(&path) {
            Ok(s) => {
                let v = s.trim().to_owned();
                if !is_valid_version(&v) {
                    return Err(StoreError::Corrupt {
                        path,
                        reason: format!(
                            "{v:?} is not a model version; write one from `topicd models` into it"
                        ),
                    });
                }
                Ok(Some(v))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Loads a saved version.
    pub fn load(&self, version: &str) -> Result<Model, StoreError> {
        let path = self.model_path(version);
        if !is_valid_version(version) || !path.exists() {
            return Err(StoreError::UnknownVersion {
                version: version.to_owned(),
                dir: self.dir.clone(),
            });
        }
        load_model_file(&path).map(|(_, m)| m)
    }

    /// Loads the active model with its version.
    pub fn load_active(&self) -> Result<SavedModel, StoreError> {
        let version = self
            .active_version()?
            .ok_or_else(|| StoreError::NoActiveModel {
                dir: self.dir.clone(),
            })?;
        let model = self.load(&version)?;
        Ok(SavedModel { version, model })
    }

    /// Every saved version with its summary, newest first (by creation time, then version). One
    /// file is read at a time and no model is built, so a directory of many versions lists in the
    /// memory of one file.
    pub fn list(&self) -> Result<Vec<ListedModel>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| StoreError::io(&self.dir, e))? {
            let entry = entry.map_err(|e| StoreError::io(&self.dir, e))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(MODEL_EXTENSION) {
                continue;
            }
            let bytes = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
            let (version, summary) =
                decode_summary(&bytes).map_err(|reason| StoreError::Corrupt {
                    path: path.clone(),
                    reason,
                })?;
            out.push(ListedModel { version, summary });
        }
        out.sort_by(|a, b| {
            b.summary
                .created_at
                .cmp(&a.summary.created_at)
                .then_with(|| a.version.cmp(&b.version))
        });
        Ok(out)
    }
}

/// True for strings of the form the store gives versions (`m` + 16 lower-case hex digits).
pub fn is_valid_version(version: &str) -> bool {
    version.len() == 17
        && version.starts_with('m')
        && version[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Reads and verifies one model file; returns its version and the model.
pub fn load_model_file(path: &Path) -> Result<(String, Model), StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    decode_model(&bytes).map_err(|reason| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    })
}

/// Resolves a `--model` argument: a model file, or a models directory (meaning its active model).
pub fn load_model_path(path: &Path) -> Result<(String, Model), StoreError> {
    if path.is_dir() {
        let saved = ModelStore::open(path)?.load_active()?;
        Ok((saved.version, saved.model))
    } else {
        load_model_file(path)
    }
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (`2026-11-28T08:00:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_824_000), "2026-11-28T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_failed_streamed_write_leaves_no_file_and_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("m.model");
        let err = write_atomically_with(&path, |out| {
            out.write_all(b"half a model")?;
            Err(std::io::Error::other("serialiser failed"))
        })
        .expect_err("the error comes back");
        assert_eq!(err.to_string(), "serialiser failed");
        let left: Vec<_> = fs::read_dir(dir.path()).expect("lists").collect();
        assert!(left.is_empty(), "nothing may be left behind: {left:?}");
        write_atomically_with(&path, |out| out.write_all(b"whole")).expect("writes");
        assert_eq!(fs::read(&path).expect("reads"), b"whole");
    }

    #[test]
    fn versions_are_validated() {
        assert!(is_valid_version("m0123456789abcdef"));
        assert!(!is_valid_version("m0123456789ABCDEF"));
        assert!(!is_valid_version("../etc/passwd"));
        assert!(!is_valid_version(""));
    }
}
