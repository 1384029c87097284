//! Where the control plane keeps what must survive a restart (service
//! registrations, operator overrides): behind the [`Persist`] trait, in
//! one table of the embedded database ([`Embedded`]) or in memory
//! ([`MemoryStore`], tests).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One key-value table of durable state.
pub trait Persist: Send + Sync {
    fn put(&self, key: &str, value: &[u8]) -> Result<(), String>;
    fn delete(&self, key: &str) -> Result<(), String>;
    fn clear(&self) -> Result<(), String>;
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, String>;
}

/// One table of the embedded database (`fulcrum-store`, redb).
#[derive(Debug)]
pub struct Embedded {
    pub store: Arc<fulcrum_store::Store>,
    pub table: fulcrum_store::Table,
}

impl Persist for Embedded {
    fn put(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.store
            .put(self.table, key, value)
            .map_err(|e| e.to_string())
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        self.store
            .delete(self.table, key)
            .map(drop)
            .map_err(|e| e.to_string())
    }
    fn clear(&self) -> Result<(), String> {
        self.store
            .clear(self.table)
            .map(drop)
            .map_err(|e| e.to_string())
    }
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        self.store.load(self.table).map_err(|e| e.to_string())
    }
}

/// Keeps a table in memory only (tests).
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<BTreeMap<String, Vec<u8>>>);

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Persist for MemoryStore {
    fn put(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.map().insert(key.into(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        self.map().remove(key);
        Ok(())
    }
    fn clear(&self) -> Result<(), String> {
        self.map().clear();
        Ok(())
    }
    fn load(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        Ok(self
            .map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
