//! The Redis keys the replicas share, all under `registry.redis_prefix`.

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// One registration (a JSON record), expiring with its heartbeats.
    pub fn registration(&self, endpoint: &str) -> String {
        format!("{}reg:{endpoint}", self.prefix)
    }

    /// The endpoint a registration key names, if it is one.
    pub fn endpoint_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix("reg:")
    }

    /// The SCAN pattern of every registration key (the prefix's glob
    /// characters escaped).
    pub fn registrations_pattern(&self) -> String {
        let mut p = String::new();
        for c in self.prefix.chars() {
            if matches!(c, '?' | '[' | ']' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p + "reg:*"
    }

    /// Hash: endpoint → the operator's override (JSON).
    pub fn overrides(&self) -> String {
        format!("{}overrides", self.prefix)
    }

    /// Hash: endpoint → the fleet's tries on it.
    pub fn calls(&self) -> String {
        format!("{}calls", self.prefix)
    }

    /// Hash: endpoint → the fleet's failed tries on it.
    pub fn failures(&self) -> String {
        format!("{}failures", self.prefix)
    }

    /// Hash: endpoint → until when (Unix ms) a replica keeps it out
    /// (passive ejection or `Retry-After` cool-down).
    pub fn holds(&self) -> String {
        format!("{}holds", self.prefix)
    }

    /// Hash: replica → when (Unix ms) it last flushed its counts.
    pub fn replicas(&self) -> String {
        format!("{}replicas", self.prefix)
    }

    /// Pub/sub channel: a replica that changed something says so.
    pub fn changes(&self) -> String {
        format!("{}changes", self.prefix)
    }

    /// Written once the replicas have filled Redis; its absence means
    /// Redis is new or lost its data, and every replica re-writes what it
    /// knows.
    pub fn epoch(&self) -> String {
        format!("{}epoch", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_keys_round_trip_and_the_pattern_escapes_globs() {
        let k = Keys::new("f[1]:");
        let key = k.registration("http://10.0.0.1:80");
        assert_eq!(key, "f[1]:reg:http://10.0.0.1:80");
        assert_eq!(k.endpoint_of(&key), Some("http://10.0.0.1:80"));
        assert_eq!(k.endpoint_of("f[1]:overrides"), None);
        assert_eq!(k.endpoint_of("other:reg:x"), None);
        assert_eq!(k.registrations_pattern(), "f\\[1\\]:reg:*");
    }
}
