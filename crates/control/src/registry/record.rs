//! One registration, and the validation of a `register` body.
//!
//! The body is the platform's `{service_id, name, task_types[], endpoint,
//! version}` plus Fulcrum's optional `weight`, `max_concurrent`, `priority`
//! and `health_path`. It is checked field by field so each rejection names
//! the field and what was wrong with it. [`RegisterBody`] describes the
//! same rules for the OpenAPI document, from the same constants; a test
//! below holds the two together.

use super::error::RegistryError;
use fulcrum_config::defaults::{MAX_ENDPOINT_LEN, MAX_WEIGHT};
use fulcrum_config::parse_endpoint;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::ToSchema;

/// Longest accepted string field (service_id, name, version, task type,
/// health_path), in characters.
const MAX_FIELD: usize = 256;

/// What a service reported in its last heartbeat (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg_inference_time_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_inference_time_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_total_time_ms: Option<f64>,
}

impl HeartbeatStats {
    /// Reads the optional heartbeat body; anything that is not such an
    /// object is an error naming the field.
    pub fn from_json(v: &Value) -> Result<Self, RegistryError> {
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("the heartbeat body must be a JSON object"))?;
        let num = |k: &str| -> Result<Option<f64>, RegistryError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(Some)
                    .ok_or_else(|| invalid(&format!("`{k}` must be a non-negative number"))),
            }
        };
        Ok(Self {
            total_requests: num("total_requests")?.map(|f| f as u64),
            avg_inference_time_ms: num("avg_inference_time_ms")?,
            last_inference_time_ms: num("last_inference_time_ms")?,
            last_total_time_ms: num("last_total_time_ms")?,
        })
    }
}

/// A registered instance, as stored and listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub service_id: String,
    pub name: String,
    pub task_types: Vec<String>,
    pub endpoint: String,
    pub version: String,
    pub weight: Option<u32>,
    pub max_concurrent: Option<u32>,
    pub priority: Option<String>,
    pub health_path: Option<String>,
    /// Unix seconds.
    pub register_at: u64,
    /// Unix seconds.
    pub last_heartbeat: u64,
    pub stats: Option<HeartbeatStats>,
    /// The 80 % expiry warning was logged (not stored meaningfully).
    #[serde(default, skip_serializing)]
    pub warned: bool,
    /// When the last heartbeat arrived, in ms on the gateway's monotonic
    /// clock (set by the registry): expiry is measured with this, so a
    /// wall-clock step (NTP) cannot expire every registration at once.
    /// `last_heartbeat` is for display.
    #[serde(skip)]
    pub seen_ms: u64,
}

/// A stable id for an instance: 16 hex digits of the xxh3 hash of its endpoint.
pub fn instance_id(endpoint: &str) -> String {
    format!("{:016x}", fulcrum_policy::hash_bytes(endpoint.as_bytes()))
}

fn invalid(m: &str) -> RegistryError {
    RegistryError::Invalid(m.to_string())
}

/// A parsed `register` body.
#[derive(Debug, Clone)]
pub struct RegisterRequest(pub Value);

impl RegisterRequest {
    /// Validates the body and builds the record (registered at `now`).
    /// Whether the config in force allows it is the registry's question.
    pub fn into_record(self, now: u64) -> Result<Record, RegistryError> {
        let obj = self
            .0
            .as_object()
            .ok_or_else(|| invalid("the body must be a JSON object"))?;
        let string = |k: &str, required: bool| -> Result<String, RegistryError> {
            match obj.get(k) {
                None | Some(Value::Null) if required => Err(invalid(&format!("`{k}` is required"))),
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) if required && s.trim().is_empty() => {
                    Err(invalid(&format!("`{k}` must not be empty")))
                }
                Some(Value::String(s)) if s.chars().count() > MAX_FIELD && k != "endpoint" => Err(
                    invalid(&format!("`{k}` is longer than {MAX_FIELD} characters")),
                ),
                Some(Value::String(s)) => Ok(s.trim().to_string()),
                Some(_) => Err(invalid(&format!("`{k}` must be a string"))),
            }
        };
        let uint = |k: &str| -> Result<Option<u32>, RegistryError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=u64::from(MAX_WEIGHT)).contains(n))
                    .map(|n| Some(n as u32))
                    .ok_or_else(|| {
                        invalid(&format!(
                            "`{k}` must be a whole number from 1 to {MAX_WEIGHT}"
                        ))
                    }),
            }
        };
        let service_id = string("service_id", true)?;
        let endpoint = string("endpoint", true)?;
        let parsed = parse_endpoint(&endpoint)
            .map_err(|e| RegistryError::Invalid(format!("`endpoint`: {e}")))?;
        let task_types = match obj.get("task_types") {
            Some(Value::Array(a)) if a.is_empty() => {
                return Err(invalid("`task_types` must not be empty"))
            }
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| match t {
                    Value::String(s)
                        if !s.trim().is_empty()
                            && s.chars().count() <= MAX_FIELD
                            && !s.contains('/') =>
                    {
                        Ok(s.trim().to_string())
                    }
                    _ => Err(invalid(
                        "every entry of `task_types` must be a non-empty string without `/`",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            None | Some(Value::Null) => return Err(invalid("`task_types` is required")),
            Some(_) => return Err(invalid("`task_types` must be an array of strings")),
        };
        let priority = match string("priority", false)? {
            p if p.is_empty() => None,
            p => {
                p.parse::<fulcrum_policy::Priority>()
                    .map_err(RegistryError::Invalid)?;
                Some(p)
            }
        };
        let health_path = match string("health_path", false)? {
            p if p.is_empty() => None,
            p if p.starts_with('/') => Some(p),
            _ => return Err(invalid("`health_path` must start with `/`")),
        };
        // Duplicates removed, first occurrence kept, order kept.
        let mut task_types = task_types;
        let mut seen = std::collections::HashSet::new();
        task_types.retain(|t| seen.insert(t.clone()));
        Ok(Record {
            service_id,
            name: string("name", false)?,
            task_types,
            endpoint: parsed.url,
            version: string("version", false)?,
            weight: uint("weight")?,
            max_concurrent: uint("max_concurrent")?,
            priority,
            health_path,
            register_at: now,
            last_heartbeat: now,
            stats: None,
            warned: false,
            seen_ms: 0,
        })
    }
}

// The `register` body as the OpenAPI document describes it: what
// `RegisterRequest::into_record` accepts, bound for bound. Never built; the
// validation above reads the JSON itself so that each error names its
// field.
//
// Where a rule cannot be said in JSON Schema, the schema is the stricter
// side (every body it allows is accepted): the endpoint pattern admits
// `http(s)://` with a host name or an IPv4 address, a port from 1 to 65535
// and a plain path, while the validation also takes IPv6 literals and any
// path `http::Uri` takes. What depends on the config in force
// (`registry.max_task_types`, `allowed_hosts`, pools closed to
// registration, the gateway's own listeners) is in the descriptions and
// answered with 400 or 403.
/// A registration. Strings are trimmed before they are checked and stored;
/// unknown fields are ignored.
#[derive(ToSchema)]
#[schema(example = json!({"service_id": "yolo11x", "name": "YOLO", "task_types": ["detect"],
    "endpoint": "http://10.0.0.5:7901/infer", "version": "1.0"}))]
#[allow(dead_code)] // a schema only
pub struct RegisterBody {
    #[schema(schema_with = required_text)]
    service_id: String,
    #[schema(schema_with = optional_text)]
    name: Option<String>,
    #[schema(schema_with = task_types)]
    task_types: Vec<String>,
    #[schema(schema_with = endpoint)]
    endpoint: String,
    #[schema(schema_with = optional_text)]
    version: Option<String>,
    #[schema(schema_with = bounded)]
    weight: Option<u32>,
    #[schema(schema_with = bounded)]
    max_concurrent: Option<u32>,
    #[schema(schema_with = priority)]
    priority: Option<String>,
    #[schema(schema_with = health_path)]
    health_path: Option<String>,
}

/// Has a character that is not white space (anywhere: patterns are not anchored).
const NOT_BLANK: &str = r"\S";

fn text(types: &[Type]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter(types.iter().cloned()))
        .max_length(Some(MAX_FIELD))
}

fn required_text() -> utoipa::openapi::Object {
    text(&[Type::String])
        .description(Some("Not empty, nor only white space."))
        .min_length(Some(1))
        .pattern(Some(NOT_BLANK))
        .build()
}

fn optional_text() -> utoipa::openapi::Object {
    text(&[Type::String, Type::Null]).build()
}

fn task_types() -> utoipa::openapi::Array {
    let item = text(&[Type::String])
        .min_length(Some(1))
        .pattern(Some(r"^[^/]*\S[^/]*$"));
    ArrayBuilder::new()
        .description(Some(
            "Task types (pool names): at least one, at most registry.max_task_types \
             (16 by default; 400 beyond). Duplicates are dropped.",
        ))
        .items(item)
        .min_items(Some(1))
        .build()
}

/// An `http(s)://` URL `parse_endpoint` accepts (see [`RegisterBody`]).
const ENDPOINT: &str = concat!(
    r"^https?://",
    // an IPv4 address, or a host name whose last label starts with a letter
    // (a host of digits and dots must be a valid IPv4 address)
    r"(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    r"|([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)",
    r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?",
    r"(/[A-Za-z0-9._~-]*)*$",
);

fn endpoint() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "http:// or https:// URL without credentials, query or fragment. \
             403 when it is one of the gateway's own listeners or outside registry.allowed_hosts.",
        ))
        .max_length(Some(MAX_ENDPOINT_LEN))
        .pattern(Some(ENDPOINT))
        .build()
}

fn bounded() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .description(Some(
            "A whole number from 1 to 1000000 (weight: 1 when absent; \
             max_concurrent: unbounded when absent).",
        ))
        .minimum(Some(1))
        .maximum(Some(MAX_WEIGHT))
        .build()
}

fn priority() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some("The instance's tier; normal when absent."))
        .enum_values(Some(
            fulcrum_policy::Priority::NAMES
                .iter()
                .map(|n| Value::from(*n))
                .chain([Value::Null]),
        ))
        .build()
}

fn health_path() -> utoipa::openapi::Object {
    text(&[Type::String, Type::Null])
        .description(Some("Path of the instance's health check, from `/`."))
        .pattern(Some(r"^\s*/"))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reg(v: Value) -> Result<Record, RegistryError> {
        RegisterRequest(v).into_record(100)
    }

    #[test]
    fn the_platforms_body_is_accepted() {
        let r = reg(json!({"service_id":"yolo11x","name":"YOLO","task_types":["人数统计","人员跌倒"],"endpoint":"http://10.0.0.5:7901/infer","version":"1.0"})).unwrap();
        assert_eq!(r.task_types, vec!["人数统计", "人员跌倒"]);
        assert_eq!(r.endpoint, "http://10.0.0.5:7901/infer");
        assert_eq!(r.register_at, 100);
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = || json!({"service_id":"s","task_types":["t"],"endpoint":"http://h:1/infer"});
        let cases: Vec<(Value, &str)> = vec![
            (json!([1, 2]), "JSON object"),
            (
                {
                    let mut b = base();
                    b["service_id"] = json!("");
                    b
                },
                "`service_id` must not be empty",
            ),
            (
                {
                    let mut b = base();
                    b.as_object_mut().unwrap().remove("endpoint");
                    b
                },
                "`endpoint` is required",
            ),
            (
                {
                    let mut b = base();
                    b["task_types"] = json!([]);
                    b
                },
                "`task_types` must not be empty",
            ),
            (
                {
                    let mut b = base();
                    b["task_types"] = json!("t");
                    b
                },
                "`task_types` must be an array",
            ),
            (
                {
                    let mut b = base();
                    b["service_id"] = json!(5);
                    b
                },
                "`service_id` must be a string",
            ),
            (
                {
                    let mut b = base();
                    b["endpoint"] = json!("ftp://h/x");
                    b
                },
                "`endpoint`",
            ),
            (
                {
                    let mut b = base();
                    b["weight"] = json!(0);
                    b
                },
                "`weight`",
            ),
            (
                {
                    let mut b = base();
                    b["priority"] = json!("urgent");
                    b
                },
                "urgent",
            ),
        ];
        for (body, want) in cases {
            let e = reg(body.clone()).unwrap_err().to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn the_register_schema_states_the_bounds_the_validation_uses() {
        let schema =
            serde_json::to_value(<RegisterBody as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(
            schema["required"],
            json!(["service_id", "task_types", "endpoint"])
        );
        let p = &schema["properties"];
        for k in ["service_id", "name", "version", "health_path"] {
            assert_eq!(p[k]["maxLength"], MAX_FIELD, "{k}");
        }
        assert_eq!(p["task_types"]["items"]["maxLength"], MAX_FIELD);
        assert_eq!(p["task_types"]["minItems"], 1);
        assert_eq!(p["endpoint"]["maxLength"], MAX_ENDPOINT_LEN);
        for k in ["weight", "max_concurrent"] {
            assert_eq!(p[k]["minimum"], 1, "{k}");
            assert_eq!(p[k]["maximum"], MAX_WEIGHT, "{k}");
        }
        let names: Vec<&str> = fulcrum_policy::Priority::NAMES.to_vec();
        for n in names {
            assert!(p["priority"]["enum"]
                .as_array()
                .unwrap()
                .contains(&json!(n)));
        }
    }

    #[test]
    fn bodies_at_the_schemas_bounds_are_accepted_and_past_them_refused() {
        let with = |k: &str, v: Value| {
            let mut b = json!({"service_id":"s","task_types":["t"],"endpoint":"http://h:1/infer"});
            b[k] = v;
            reg(b)
        };
        // Lengths are in characters, as the schema's maxLength counts them.
        let long = "统".repeat(MAX_FIELD);
        for k in ["service_id", "name", "version"] {
            assert!(with(k, json!(long)).is_ok(), "{k}");
            assert!(with(k, json!(format!("{long}x"))).is_err(), "{k}");
        }
        assert!(with("task_types", json!([long])).is_ok());
        assert!(with("task_types", json!([format!("{long}x")])).is_err());
        assert!(with("task_types", json!(["a/b"])).is_err());
        assert!(with("task_types", json!([" \t"])).is_err());
        assert!(with("service_id", json!(" ")).is_err());
        for k in ["weight", "max_concurrent"] {
            assert!(with(k, json!(1)).is_ok(), "{k}");
            assert!(with(k, json!(MAX_WEIGHT)).is_ok(), "{k}");
            assert!(with(k, Value::Null).is_ok(), "{k}");
            assert!(with(k, json!(0)).is_err(), "{k}");
            assert!(with(k, json!(MAX_WEIGHT + 1)).is_err(), "{k}");
        }
        for (k, v) in [
            ("priority", Value::Null),
            ("priority", json!("backup")),
            ("health_path", json!(" /health")),
            ("health_path", Value::Null),
            ("name", Value::Null),
            ("endpoint", json!("https://a-b.example:65535/v1/infer")),
            ("endpoint", json!("http://10.0.0.5:7901")),
        ] {
            assert!(with(k, v.clone()).is_ok(), "{k}: {v}");
        }
        assert!(with("health_path", json!("health")).is_err());
        assert!(with("endpoint", json!("http://h:65536/x")).is_err());
        assert!(with(
            "endpoint",
            json!(format!("http://h/{}", "x".repeat(MAX_ENDPOINT_LEN)))
        )
        .is_err());
    }

    #[test]
    fn instance_ids_are_stable_hex() {
        assert_eq!(instance_id("http://a:1"), instance_id("http://a:1"));
        assert_ne!(instance_id("http://a:1"), instance_id("http://a:2"));
        assert_eq!(instance_id("http://a:1").len(), 16);
    }
}
