//! The model registry: which model answers, and how a new one takes its place.
//!
//! Readers load the active model through an [`ArcSwapOption`]: a lock-free pointer read, so Classify
//! never waits for anything. Writers (training, activation) hold an async mutex for the whole of
//! their work, so they happen one at a time and each builds on the latest model. The guard is owned
//! by the job on the model thread that writes `ACTIVE` and swaps the pointer, so a caller that goes
//! away (cancelled, deadline exceeded) cannot leave the file and the live model disagreeing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use tokio::sync::{watch, OwnedMutexGuard};

use super::errors::ServiceError;
use super::model_thread::ModelThread;
use crate::model::Model;
use crate::store::{is_valid_version, ModelStore, SavedModel};

/// A model with the version it was saved under.
#[derive(Debug)]
pub struct LoadedModel {
    /// Its version.
    pub version: String,
    /// The model.
    pub model: Model,
}

/// Non-active versions kept in memory after a request named them.
const CACHED_VERSIONS: usize = 4;

/// Proof that the caller holds the registry's writer lock.
pub type WriterGuard = OwnedMutexGuard<()>;

/// The active model, a small cache of other versions, and the store behind them.
#[derive(Debug)]
pub struct Registry {
    store: ModelStore,
    active: ArcSwapOption<LoadedModel>,
    others: Mutex<HashMap<String, Arc<LoadedModel>>>,
    writer: Arc<tokio::sync::Mutex<()>>,
    changes: watch::Sender<Option<String>>,
    /// Where the active model is loaded, trained and activated (see [`ModelThread`]).
    model_thread: ModelThread,
}

impl Registry {
    /// Opens the store and loads its active model, if it has one (on the model thread, which it
    /// starts).
    pub fn open(store: ModelStore) -> Result<Self, ServiceError> {
        let model_thread = ModelThread::start()
            .map_err(|e| ServiceError::Internal(format!("cannot start the model thread: {e}")))?;
        let source = store.clone();
        let load = move || match source.load_active() {
            Ok(SavedModel { version, model }) => Ok(Some(Arc::new(LoadedModel { version, model }))),
            Err(crate::store::StoreError::NoActiveModel { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        };
        let active = model_thread.run_blocking("loading the active model", load)?;
        let (changes, _) = watch::channel(active.as_ref().map(|a| a.version.clone()));
        Ok(Self {
            store,
            active: ArcSwapOption::new(active),
            others: Mutex::new(HashMap::new()),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            changes,
            model_thread,
        })
    }

    /// The thread that builds the models this registry serves.
    pub fn model_thread(&self) -> &ModelThread {
        &self.model_thread
    }

    /// The store.
    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    /// The active model, if any.
    pub fn active(&self) -> Option<Arc<LoadedModel>> {
        self.active.load_full()
    }

    /// The active version, updated on every swap (the server derives health from it).
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.changes.subscribe()
    }

    /// The active model, or FAILED_PRECONDITION saying how to get one.
    pub fn require_active(&self) -> Result<Arc<LoadedModel>, ServiceError> {
        self.active().ok_or_else(|| {
            ServiceError::Precondition(
                "no model is loaded yet: train one with Train (mode TRAIN_MODE_FRESH) or start the server with --model-dir pointing at a models directory that has one".into(),
            )
        })
    }

    /// The model already in memory for `version` (empty: the active one), if it is.
    fn in_memory(&self, version: &str) -> Result<Option<Arc<LoadedModel>>, ServiceError> {
        if version.is_empty() {
            return self.require_active().map(Some);
        }
        if let Some(active) = self.active() {
            if active.version == version {
                return Ok(Some(active));
            }
        }
        if !is_valid_version(version) {
            return Err(unknown_version(version));
        }
        Ok(self.lock_others().get(version).cloned())
    }

    /// The model for a request: the active one for an empty version, else that saved version
    /// (blocking: may read the model file).
    pub fn get_blocking(&self, version: &str) -> Result<Arc<LoadedModel>, ServiceError> {
        if let Some(loaded) = self.in_memory(version)? {
            return Ok(loaded);
        }
        let model = self.store.load(version)?;
        let loaded = Arc::new(LoadedModel {
            version: version.to_owned(),
            model,
        });
        let mut others = self.lock_others();
        if others.len() >= CACHED_VERSIONS {
            others.clear();
        }
        others.insert(version.to_owned(), Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Like [`Registry::get_blocking`], reading a model file (if needed) on a blocking thread (not
    /// the model thread: a Classify that names an old version should not wait for a training).
    pub async fn resolve(
        self: &Arc<Self>,
        version: &str,
    ) -> Result<Arc<LoadedModel>, ServiceError> {
        if let Some(loaded) = self.in_memory(version)? {
            return Ok(loaded);
        }
        let registry = Arc::clone(self);
        let version = version.to_owned();
        tokio::task::spawn_blocking(move || registry.get_blocking(&version))
            .await
            .map_err(|e| ServiceError::Internal(format!("model loading task failed: {e}")))?
    }

    fn lock_others(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LoadedModel>>> {
        // A poisoned cache only means a panic elsewhere while it was held; the map is still valid.
        self.others.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the writer lock (one training or activation at a time).
    pub async fn lock_writer(&self) -> WriterGuard {
        Arc::clone(&self.writer).lock_owned().await
    }

    /// Makes a loaded model the active one, after its version was written to `ACTIVE`.
    pub fn swap_in(&self, loaded: Arc<LoadedModel>, _writer: &WriterGuard) {
        let version = loaded.version.clone();
        self.active.store(Some(loaded));
        self.changes.send_replace(Some(version));
    }

    /// Makes a saved version the active one: writes `ACTIVE`, then swaps the live model. Runs to
    /// completion even if the caller stops waiting.
    pub async fn activate(
        self: &Arc<Self>,
        version: String,
    ) -> Result<Arc<LoadedModel>, ServiceError> {
        let writer = self.lock_writer().await;
        let registry = Arc::clone(self);
        self.model_thread
            .run("activation", move || {
                let loaded = registry.get_blocking(&version)?;
                registry.store.activate(&version)?;
                registry.swap_in(Arc::clone(&loaded), &writer);
                tracing::info!(version = %version, "activated");
                Ok(loaded)
            })
            .await
    }
}

/// NOT_FOUND for a version that is not saved.
fn unknown_version(version: &str) -> ServiceError {
    ServiceError::NotFound(format!(
        "no model version {version:?}; ListModels shows the saved versions"
    ))
}
