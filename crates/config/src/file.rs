//! Stage 1: the shape of the YAML file, as serde sees it.
//!
//! Every field is optional here so that a section written partially merges
//! over defaults (and a pool's `health_check:` over the global one). Unknown
//! keys are not denied by serde (which would stop at the first); they are
//! collected with `serde_ignored` so `fulcrum check` can list all of them,
//! each with the keys valid where it is ([`Keys`]).

use crate::units::{Dur, Size, Text};
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};

/// The keys valid in a section's mappings, for "did you mean" and "valid
/// keys here". They are read from serde's own derive (see [`fields_of`]),
/// so they cannot drift from the structs.
pub trait Keys: DeserializeOwned {
    /// The keys of the mapping at `rel`, a path inside this section (`""`
    /// is the section itself, `retry` a pool's `retry:`).
    fn keys_at(rel: &str) -> Option<&'static [&'static str]> {
        if rel.is_empty() {
            fields_of::<Self>()
        } else {
            None
        }
    }
}

impl Keys for String {}
impl Keys for FileAdmin {}
impl Keys for FileHealth {}
impl Keys for FilePassive {}
impl Keys for FileTimeouts {}
impl Keys for FileMetrics {}
impl Keys for FileLog {}
impl Keys for FileStats {}
impl Keys for FileShutdown {}
impl Keys for FileCompression {}
impl Keys for FileAccessLog {}
impl Keys for FileLimits {}
impl Keys for FileInstance {}
impl Keys for FileListenerTls {}
impl Keys for FileRoute {}
impl Keys for FileRegistry {}
impl Keys for FileDynamicWeights {}

impl Keys for FilePool {
    fn keys_at(rel: &str) -> Option<&'static [&'static str]> {
        match rel {
            "" => fields_of::<FilePool>(),
            "retry" => fields_of::<FileRetry>(),
            "queue" => fields_of::<FileQueue>(),
            "health_check" => fields_of::<FileHealth>(),
            "passive" => fields_of::<FilePassive>(),
            "timeouts" => fields_of::<FileTimeouts>(),
            "tls" => fields_of::<FileUpstreamTls>(),
            "cache" => fields_of::<FileCache>(),
            "dynamic_weights" => fields_of::<FileDynamicWeights>(),
            _ => None,
        }
    }
}

/// The keys of a struct as its derived `Deserialize` names them: the
/// derive hands them to `deserialize_struct`, which this deserializer
/// records and then refuses. `None` for a type that is not a struct.
pub fn fields_of<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    struct Grab<'a>(&'a mut Option<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for Grab<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = None;
    let _ = T::deserialize(Grab(&mut fields));
    fields
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileAdmin {
    pub listen: Option<String>,
    #[serde(default, deserialize_with = "crate::units::opt_stringish")]
    pub token: Option<String>,
    pub max_connections: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileHealth {
    pub interval: Option<Dur>,
    pub fast_interval: Option<Dur>,
    pub timeout: Option<Dur>,
    pub path: Option<String>,
    pub failure_threshold: Option<u32>,
    pub recovery_threshold: Option<u32>,
    pub jitter: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FilePassive {
    pub max_fails: Option<u32>,
    pub fail_timeout: Option<Dur>,
    pub max_ejection_percent: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileTimeouts {
    pub connect: Option<Dur>,
    pub response_header: Option<Dur>,
    pub idle: Option<Dur>,
    pub client_header: Option<Dur>,
    pub keepalive: Option<Dur>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileMetrics {
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileLog {
    pub format: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileShutdown {
    pub grace: Option<Dur>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileStats {
    pub window: Option<Dur>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileAccessLog {
    #[serde(default, deserialize_with = "crate::units::opt_stringish")]
    pub path: Option<String>,
    pub format: Option<String>,
    pub buffer: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileLimits {
    pub max_body: Option<Size>,
    pub max_header: Option<Size>,
    pub max_connections: Option<u32>,
    pub backlog: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileRetry {
    pub tries: Option<u32>,
    pub on: Option<Vec<Text>>,
    pub timeout: Option<Dur>,
    pub non_idempotent: Option<bool>,
    pub buffer: Option<Size>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileQueue {
    pub max: Option<u32>,
    pub timeout: Option<Dur>,
    pub reserve: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileInstance {
    pub endpoint: String,
    pub weight: Option<u32>,
    /// A number, `auto` or `{ min, max }`: read by `load::limit`.
    pub max_concurrent: Option<serde_yaml_ng::Value>,
    pub priority: Option<String>,
    pub health_path: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FilePool {
    pub algorithm: Option<String>,
    /// Kept as raw YAML so each instance is read on its own and a bad one
    /// does not hide the errors of the next.
    #[serde(default)]
    pub instances: Vec<serde_yaml_ng::Value>,
    pub retry: Option<FileRetry>,
    pub queue: Option<FileQueue>,
    pub health_check: Option<FileHealth>,
    pub passive: Option<FilePassive>,
    pub timeouts: Option<FileTimeouts>,
    pub panic: Option<bool>,
    pub hash_key: Option<String>,
    pub slow_start: Option<Dur>,
    pub tls: Option<FileUpstreamTls>,
    pub cache: Option<FileCache>,
    pub registration: Option<bool>,
    pub dynamic_weights: Option<FileDynamicWeights>,
    /// For members without their own: read by `load::limit`.
    pub max_concurrent: Option<serde_yaml_ng::Value>,
}

/// `dynamic_weights:`, global or a pool's.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileDynamicWeights {
    pub enabled: Option<bool>,
    pub interval: Option<Dur>,
    pub max: Option<u32>,
    pub max_step: Option<f64>,
}

/// `tls:` at the top level: TLS termination on the proxy listener.
#[derive(Debug, Clone, Deserialize)]
pub struct FileListenerTls {
    pub cert: String,
    pub key: String,
}

/// A pool's `tls:`: how `https://` instances are verified.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileUpstreamTls {
    pub ca: Option<String>,
    pub server_name: Option<String>,
}

/// A pool's `cache:`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileCache {
    pub ttl: Option<Dur>,
    pub max_size: Option<Size>,
    pub max_entry_size: Option<Size>,
    pub methods: Option<Vec<Text>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileRoute {
    pub path_prefix: String,
    pub pool: String,
    pub strip_prefix: Option<bool>,
    pub host: Option<String>,
    /// The request class: `interactive | normal | batch`.
    pub priority: Option<String>,
    /// Whether `X-Fulcrum-Priority` may set the class instead.
    pub priority_header: Option<bool>,
    /// `true`, `false` or a [`FileCompression`] mapping: kept as raw YAML
    /// and read by `load/routes.rs`, which names the form it expected.
    pub compression: Option<serde_yaml_ng::Value>,
}

/// A route's `compression:` written as a mapping.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileCompression {
    pub types: Option<Vec<String>>,
    pub min_size: Option<Size>,
    pub algorithms: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileRegistry {
    pub enabled: Option<bool>,
    pub store: Option<String>,
    pub path: Option<String>,
    pub redis_url: Option<String>,
    pub redis_prefix: Option<String>,
    pub heartbeat_timeout: Option<Dur>,
    pub route_prefix: Option<String>,
    pub default_algorithm: Option<String>,
    #[serde(default, deserialize_with = "crate::units::opt_stringish")]
    pub token: Option<String>,
    pub allowed_hosts: Option<Vec<Text>>,
    pub max_task_types: Option<usize>,
    pub max_instances: Option<usize>,
}
