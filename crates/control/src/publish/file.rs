//! The config file as a source: the static pools, routes and settings,
//! replaced as a whole by a reload.

use super::source::{Desired, Source};
use fulcrum_config::Config;
use std::sync::Mutex;

/// The configuration read from the file (or the embedded default).
#[derive(Debug)]
pub struct ConfigFile(Mutex<Config>);

impl ConfigFile {
    pub fn new(config: Config) -> Self {
        Self(Mutex::new(config))
    }

    /// The file's configuration in force.
    pub fn get(&self) -> Config {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces it (a reload); the caller publishes.
    pub fn set(&self, config: Config) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = config;
    }
}

impl Source for ConfigFile {
    fn contribute(&self, desired: &mut Desired) {
        desired.config = self.get();
    }
}
