//! The incidents the demo stages, in a loop: when each starts and ends (a
//! pure schedule, [`schedule`]) and doing it to the mock instances
//! ([`run`]). Each period of [`PERIOD`] repeats the same plan; the first
//! starts 5 s in, so a one-minute run shows both incidents begin and end.

use super::fleet::{latency, DYING_ASR, SLOW_LLM, SPECS};
use super::say::Say;
use fulcrum_mock::MockServer;
use std::sync::Arc;
use std::time::Duration;

/// The plan repeats this often.
const PERIOD: Duration = Duration::from_secs(60);
/// How much slower the slow LLM instance gets.
const SLOWDOWN: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Incident {
    /// An LLM instance answers [`SLOWDOWN`]× slower.
    SlowLlm,
    /// An ASR instance dies: its port refuses connections.
    AsrDown,
}

/// One period's plan: each incident, when it starts and when it ends (in
/// seconds from the period's start), in order and without overlap.
const PLAN: [(Incident, u64, u64); 2] = [(Incident::SlowLlm, 5, 25), (Incident::AsrDown, 30, 45)];

/// An incident starting or ending, at `at` from the demo's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    at: Duration,
    incident: Incident,
    starts: bool,
}

/// Every step from the demo's start on, in order, forever.
fn schedule() -> impl Iterator<Item = Step> {
    (0u32..).flat_map(|k| {
        PLAN.into_iter().flat_map(move |(incident, from, to)| {
            [(from, true), (to, false)].map(|(s, starts)| Step {
                at: PERIOD * k + Duration::from_secs(s),
                incident,
                starts,
            })
        })
    })
}

/// The plan in one line.
pub(super) fn describe() -> String {
    let parts: Vec<String> = PLAN
        .iter()
        .map(|&(incident, from, to)| {
            let what = match incident {
                Incident::SlowLlm => format!("{} {SLOWDOWN}× slower", SPECS[SLOW_LLM].name),
                Incident::AsrDown => format!("{} down", SPECS[DYING_ASR].name),
            };
            format!("{what} from +{from}s to +{to}s")
        })
        .collect();
    format!(
        "incidents, every {}s: {}",
        PERIOD.as_secs(),
        parts.join("; ")
    )
}

/// Stages the incidents on `llm` (slowed down) and `asr` (killed and
/// restarted), on schedule from `say`'s start, saying each as it starts
/// and ends. Runs until aborted.
pub(super) async fn run(llm: Arc<MockServer>, asr: Arc<MockServer>, say: Say) {
    let (llm_name, asr_name) = (SPECS[SLOW_LLM].name, SPECS[DYING_ASR].name);
    let base = SPECS[SLOW_LLM].latency_ms;
    for step in schedule() {
        tokio::time::sleep_until(say.t0 + step.at).await;
        match (step.incident, step.starts) {
            (Incident::SlowLlm, true) => {
                llm.set_latency(latency(base * SLOWDOWN));
                say.line(format_args!(
                    "incident: {llm_name} ({}) answers {SLOWDOWN}× slower (~{} ms); its share should fall",
                    llm.url(),
                    base * SLOWDOWN,
                ));
            }
            (Incident::SlowLlm, false) => {
                llm.set_latency(latency(base));
                say.line(format_args!(
                    "healed: {llm_name} is fast again; its share comes back as its estimate decays"
                ));
            }
            (Incident::AsrDown, true) => {
                asr.kill().await;
                say.line(format_args!(
                    "incident: {asr_name} ({}) dies (connections refused); probes should mark it down",
                    asr.url()
                ));
            }
            (Incident::AsrDown, false) => match asr.restart().await {
                Ok(()) => say.line(format_args!(
                    "healed: {asr_name} is back; passing probes mark it up"
                )),
                Err(e) => say.line(format_args!(
                    "cannot bring {asr_name} back on {}: {e}",
                    asr.url()
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_minute_run_sees_both_incidents_start_and_end() {
        let first: Vec<Step> = schedule().take_while(|s| s.at < PERIOD).collect();
        assert_eq!(first.len(), 4, "{first:?}");
        for incident in [Incident::SlowLlm, Incident::AsrDown] {
            let steps: Vec<&Step> = first.iter().filter(|s| s.incident == incident).collect();
            assert_eq!(steps.len(), 2);
            assert!(steps[0].starts && !steps[1].starts);
            let lasts = steps[1].at - steps[0].at;
            assert!(
                lasts >= Duration::from_secs(10),
                "{incident:?} lasts {lasts:?}"
            );
        }
        // The first starts early, and the last heals with time left to see
        // the instance back.
        assert!(first[0].at <= Duration::from_secs(10));
        assert!(first[3].at <= PERIOD - Duration::from_secs(10));
    }

    #[test]
    fn steps_come_in_order_one_incident_at_a_time_and_repeat_each_period() {
        let steps: Vec<Step> = schedule().take(12).collect();
        assert!(steps.windows(2).all(|w| w[0].at < w[1].at), "{steps:?}");
        // Starts and ends alternate: never two incidents at once.
        assert!(steps
            .iter()
            .enumerate()
            .all(|(i, s)| s.starts == (i % 2 == 0)));
        assert!(steps
            .windows(2)
            .step_by(2)
            .all(|w| w[0].incident == w[1].incident));
        for (a, b) in steps.iter().zip(&steps[4..]) {
            assert_eq!(b.at - a.at, PERIOD);
            assert_eq!((a.incident, a.starts), (b.incident, b.starts));
        }
    }

    #[test]
    fn the_plan_reads_as_one_line() {
        assert_eq!(
            describe(),
            "incidents, every 60s: llm-local-1 20× slower from +5s to +25s; asr-2 down from +30s to +45s"
        );
    }
}
