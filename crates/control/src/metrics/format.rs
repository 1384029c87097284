//! Which exposition format a scraper asked for: OpenMetrics when its
//! `Accept` header prefers `application/openmetrics-text`, the classic
//! Prometheus text format (0.0.4) otherwise (curl, older scrapers).
//! Prometheus itself asks for OpenMetrics first.

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (`# EOF` at the end; counters typed without `_total`).
    OpenMetrics,
    /// The Prometheus text format 0.0.4.
    Prometheus,
}

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when its
    /// quality is above 0 and at least that of `text/plain` (or a
    /// wildcard), else the classic text format.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let (mut om, mut text) = (0.0f32, 0.0f32);
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The answer's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::Prometheus => PROMETHEUS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked_for_and_preferred() {
        let f = |a: Option<&str>| Format::from_accept(a);
        assert_eq!(f(None), Format::Prometheus);
        assert_eq!(f(Some("*/*")), Format::Prometheus);
        assert_eq!(f(Some("text/plain")), Format::Prometheus);
        assert_eq!(
            f(Some("application/openmetrics-text; version=1.0.0")),
            Format::OpenMetrics
        );
        // What Prometheus 2.x/3.x sends.
        assert_eq!(
            f(Some("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")),
            Format::OpenMetrics
        );
        assert_eq!(
            f(Some("application/openmetrics-text;q=0.2, text/plain;q=0.9")),
            Format::Prometheus
        );
        assert_eq!(
            f(Some("application/openmetrics-text;q=0")),
            Format::Prometheus
        );
    }
}
