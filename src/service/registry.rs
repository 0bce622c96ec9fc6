//! The model registry: which model answers, and how a new one takes its place.
//!
//! Readers load the active model through an [`ArcSwapOption`]: a lock-free pointer read, so Classify
//! never waits for anything. Training holds an async mutex (one training at a time, each on top of
//! the latest model, so no example is lost), builds the new model beside the old one on a blocking
//! thread, saves it durably, writes `ACTIVE`, and only then swaps the pointer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

use super::errors::ServiceError;
use crate::model::Model;
use crate::store::{ModelStore, SavedModel};

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

/// The active model, a small cache of other versions, and the store behind them.
#[derive(Debug)]
pub struct Registry {
    store: ModelStore,
    active: ArcSwapOption<LoadedModel>,
    others: Mutex<HashMap<String, Arc<LoadedModel>>>,
    /// Held for the whole of a training or activation, so they happen one at a time.
    pub(crate) writer: tokio::sync::Mutex<()>,
}

impl Registry {
    /// Opens the store and loads its active model, if it has one.
    pub fn open(store: ModelStore) -> Result<Self, ServiceError> {
        let active = match store.load_active() {
            Ok(SavedModel { version, model }) => Some(Arc::new(LoadedModel { version, model })),
            Err(crate::store::StoreError::NoActiveModel { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            store,
            active: ArcSwapOption::new(active),
            others: Mutex::new(HashMap::new()),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// The store.
    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    /// The active model, if any.
    pub fn active(&self) -> Option<Arc<LoadedModel>> {
        self.active.load_full()
    }

    /// The active model, or FAILED_PRECONDITION saying how to get one.
    pub fn require_active(&self) -> Result<Arc<LoadedModel>, ServiceError> {
        self.active().ok_or_else(|| {
            ServiceError::Precondition(
                "no model is loaded yet: train one with Train (mode TRAIN_MODE_FRESH) or start the server with --model-dir pointing at a models directory that has one".into(),
            )
        })
    }

    /// The model for a request: the active one for an empty version, else that saved version.
    pub fn get(&self, version: &str) -> Result<Arc<LoadedModel>, ServiceError> {
        if version.is_empty() {
            return self.require_active();
        }
        if let Some(active) = self.active() {
            if active.version == version {
                return Ok(active);
            }
        }
        if let Some(cached) = self.lock_others().get(version) {
            return Ok(Arc::clone(cached));
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

    fn lock_others(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LoadedModel>>> {
        // A poisoned cache only means a panic elsewhere while it was held; the map is still valid.
        self.others.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a loaded model the active one (after its version was written to `ACTIVE`).
    pub fn swap_in(&self, loaded: Arc<LoadedModel>) {
        self.active.store(Some(loaded));
    }
}
