//! One registration, and the validation of a `register` body.
//!
//! The body is the platform's `{service_id, name, task_types[], endpoint,
//! version}` plus Fulcrum's optional `weight`, `max_concurrent`, `priority`
//! and `health_path`. It is checked field by field so each rejection names
//! the field and what was wrong with it.

use super::error::RegistryError;
use fulcrum_config::parse_endpoint;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest accepted string field (service_id, name, version, task type).
const MAX_FIELD: usize = 256;

/// What a service reported in its last heartbeat (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
                Some(Value::String(s)) if s.len() > MAX_FIELD && k != "endpoint" => Err(invalid(
                    &format!("`{k}` is longer than {MAX_FIELD} characters"),
                )),
                Some(Value::String(s)) => Ok(s.trim().to_string()),
                Some(_) => Err(invalid(&format!("`{k}` must be a string"))),
            }
        };
        let uint = |k: &str| -> Result<Option<u32>, RegistryError> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=u64::from(fulcrum_config::load::MAX_WEIGHT)).contains(n))
                    .map(|n| Some(n as u32))
                    .ok_or_else(|| {
                        invalid(&format!(
                            "`{k}` must be a whole number from 1 to {}",
                            fulcrum_config::load::MAX_WEIGHT
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
                        if !s.trim().is_empty() && s.len() <= MAX_FIELD && !s.contains('/') =>
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
    fn instance_ids_are_stable_hex() {
        assert_eq!(instance_id("http://a:1"), instance_id("http://a:1"));
        assert_ne!(instance_id("http://a:1"), instance_id("http://a:2"));
        assert_eq!(instance_id("http://a:1").len(), 16);
    }
}
