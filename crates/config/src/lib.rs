//! # fulcrum-config — from a YAML file to a validated runtime config
//!
//! Config flows in three named stages (as in sozu): [`file`] is the shape
//! of the YAML as serde reads it, [`load`] validates and collects every
//! error with its YAML path, and [`model`] is the runtime configuration the
//! gateway runs on. [`units`] parses durations, sizes and `${ENV}`;
//! [`defaults`] names every default value and limit. [`positions`] places
//! each error at its line and column, [`words`] says it in plain words
//! (with "did you mean"), and [`report`] prints them as `fulcrum check` does.

pub mod defaults;
pub mod file;
pub mod load;
pub mod model;
pub mod positions;
pub mod report;
pub mod units;
pub mod words;

pub use load::{embedded_default, parse, parse_endpoint, ConfigError, ConfigErrors};
pub use model::*;

/// Reads and validates a config file, expanding `${ENV}` from the process environment.
pub fn load_file(path: &std::path::Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::new(
            "",
            format!("cannot read {}: {e}", path.display()),
        )])
    })?;
    load_text(&text, path)
}

/// Validates the text of the config file at `path` (relative paths in it
/// are from its folder), expanding `${ENV}` from the process environment.
pub fn load_text(text: &str, path: &std::path::Path) -> Result<Config, ConfigErrors> {
    let mut config = parse(text, &|k| std::env::var(k).ok())?;
    if let Some(dir) = path.parent() {
        config.resolve_paths(dir);
    }
    Ok(config)
}
