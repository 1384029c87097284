//! How a registry operation fails (a leaf module: the records, the
//! registry and its API all name it).

/// A registry operation that failed; the API turns it into a 4xx/5xx JSON error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    /// Well-formed, but the config in force does not allow it (403).
    #[error("{0}")]
    Forbidden(String),
    /// The registry holds `registry.max_instances` already (409).
    #[error("{0}")]
    Full(String),
    #[error("no registered instance matches `{0}` (an instance_id, endpoint or service_id)")]
    NotFound(String),
    #[error("the registry store failed: {0}")]
    Store(String),
}
