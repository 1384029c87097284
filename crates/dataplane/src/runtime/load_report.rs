//! ORCA load reports: instances may describe their load in each response
//! with the `endpoint-load-metrics` header (the format Envoy and gRPC use
//! for Open Request Cost Aggregation):
//!
//! ```text
//! endpoint-load-metrics: TEXT cpu_utilization=0.3, mem_utilization=0.8, named_metrics.queue=4
//! endpoint-load-metrics: JSON {"cpu_utilization":0.3,"mem_utilization":0.8,"named_metrics":{"queue":4}}
//! ```
//!
//! These feed `resource_based`. The binary (`BIN`, protobuf) form and
//! anything unparsable are ignored: a bad report never fails a request.

use std::collections::BTreeMap;

pub const HEADER: &str = "endpoint-load-metrics";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// 0..=1 (clamped).
    pub cpu: Option<f64>,
    /// 0..=1 (clamped).
    pub mem: Option<f64>,
    pub named: BTreeMap<String, f64>,
}

/// Parses one header value; `None` when it is not a usable report.
pub fn parse(value: &str) -> Option<LoadReport> {
    let v = value.trim();
    let mut r = LoadReport::default();
    if let Some(text) = v.strip_prefix("TEXT ") {
        // A bad pair is skipped, not the whole report.
        for pair in text.split(',') {
            let Some((k, val)) = pair.split_once('=') else {
                continue;
            };
            if let Some(val) = val.trim().parse::<f64>().ok().filter(|x| x.is_finite()) {
                set(&mut r, k.trim(), val);
            }
        }
    } else if let Some(json) = v.strip_prefix("JSON ") {
        let obj: serde_json::Value = serde_json::from_str(json).ok()?;
        let obj = obj.as_object()?;
        for (k, val) in obj {
            if k == "named_metrics" || k == "namedMetrics" {
                for (nk, nv) in val.as_object()? {
                    if let Some(x) = nv.as_f64() {
                        r.named.insert(nk.clone(), x);
                    }
                }
            } else if let Some(x) = val.as_f64() {
                set(&mut r, k, x);
            }
        }
    } else {
        return None;
    }
    (r.cpu.is_some() || r.mem.is_some() || !r.named.is_empty()).then_some(r)
}

fn set(r: &mut LoadReport, key: &str, val: f64) {
    match key {
        // snake_case as in the TEXT form, camelCase as protobuf JSON writes it.
        "cpu_utilization" | "cpuUtilization" => r.cpu = Some(val.clamp(0.0, 1.0)),
        "mem_utilization" | "memUtilization" => r.mem = Some(val.clamp(0.0, 1.0)),
        k => {
            if let Some(name) = k.strip_prefix("named_metrics.") {
                r.named.insert(name.to_string(), val);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form() {
        let r =
            parse("TEXT cpu_utilization=0.3, mem_utilization=0.8, named_metrics.queue=4").unwrap();
        assert_eq!(r.cpu, Some(0.3));
        assert_eq!(r.mem, Some(0.8));
        assert_eq!(r.named["queue"], 4.0);
    }

    #[test]
    fn json_form() {
        let r = parse(
            r#"JSON {"cpu_utilization":0.5,"mem_utilization":1.7,"named_metrics":{"gpu":0.9}}"#,
        )
        .unwrap();
        assert_eq!(r.cpu, Some(0.5));
        assert_eq!(r.mem, Some(1.0), "clamped");
        assert_eq!(r.named["gpu"], 0.9);
    }

    #[test]
    fn garbage_is_ignored() {
        let r = parse("TEXT cpu_utilization=0.4, bogus, mem_utilization=abc,").unwrap();
        assert_eq!(
            (r.cpu, r.mem),
            (Some(0.4), None),
            "good pairs survive bad ones"
        );
        let r = parse(r#"JSON {"cpuUtilization":0.2,"namedMetrics":{"q":1}}"#).unwrap();
        assert_eq!(
            (r.cpu, r.named["q"]),
            (Some(0.2), 1.0),
            "protobuf JSON spelling"
        );
        for bad in [
            "",
            "BIN Cg==",
            "TEXT cpu_utilization",
            "TEXT cpu_utilization=abc",
            "JSON {",
            "JSON []",
            "TEXT x=NaN",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
