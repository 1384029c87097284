//! The attempt loop: acquire an instance → try it → decide. A try that
//! fails in the instance's fault (no response head, or a status listed in
//! `retry.on`) is recorded against it and, when the retry decision allows,
//! repeated on a different instance. Once a response is handed to the
//! caller it is never retried. A failed try is a [`TryError`] that says
//! who is to blame; what each try taught about the instance is recorded by
//! [`feedback`](super::feedback).

use super::admission::{acquire, Env};
use super::feedback;
use super::request::Outgoing;
use super::response::respond;
use super::tunnel;
use crate::http::body::ProxyBody;
use crate::http::ProxyError;
use crate::observe::Pending;
use crate::runtime::{InFlightGuard, InstanceState, PoolRuntime};
use crate::upstream::{self, Deadlines, Pooled, TryError};
use fulcrum_policy::retry::{decide, Attempt, Decision, Failure};
use fulcrum_policy::RequestClass;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What the loop carries from one try to the next.
pub struct Request {
    pub out: Outgoing,
    pub idempotent: bool,
    pub key: Option<u64>,
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
    /// Its class in the pool's admission queue.
    pub class: RequestClass,
    /// `limits.max_body`, for a body that grows too large while streaming.
    pub max_body: u64,
}

/// An instance's answer and the connection it came on.
type Answer = (Response<Incoming>, Pooled);

/// A try that failed in the instance's fault.
struct Failed {
    failure: Failure,
    detail: String,
    /// The instance's answer, when the failure is a listed status.
    answer: Option<Answer>,
}

/// Tries `req` on instances of `pool` until one answers or the retry
/// policy gives up.
pub async fn run(
    env: Env<'_>,
    pool: &Arc<PoolRuntime>,
    mut req: Request,
    rec: &mut Pending,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (policy, clock) = (&pool.cfg.retry, env.clock);
    // Only read the clock when a retry budget needs it.
    let started = policy.timeout.map(|_| clock.instant());
    let mut tried: Vec<usize> = Vec::new();
    // The last try's error, and its answer when it was a status listed for
    // retry: if no other instance can take the request, the caller gets
    // that answer (as with nginx), not a gateway-made 502.
    let mut last: Option<(ProxyError, Option<Answer>)> = None;
    loop {
        let (slot, guard) = match acquire(pool, env, &tried, req.key, req.class).await {
            Ok(x) => x,
            Err(e) => return Err(e).or_else(|e| give_up(e, last, pool, rec)),
        };
        let inst = &pool.members[slot].inst;
        rec.tried(pool, slot);
        let head = head_timeout(pool, started);
        let last_try = !req.out.replayable() || tried.len() + 1 >= policy.tries as usize;
        let f = match try_once(env, pool, inst, &mut req, head, last_try, rec).await {
            Ok(Ok((resp, conn))) => {
                return Ok(answer(resp, conn, guard, inst, &mut req, pool, rec))
            }
            Ok(Err(f)) => f,
            Err(e) => return Err(e),
        };
        if let Some(n) = feedback::failed(
            pool,
            inst,
            f.failure,
            f.answer.is_some(),
            head,
            clock.now_ms(),
        ) {
            feedback::note(env, pool, inst, n);
        }
        tried.push(slot);
        let attempt = Attempt {
            tries_made: tried.len() as u32,
            idempotent: req.idempotent,
            replayable: req.out.can_resend(),
            elapsed: started.map_or(Duration::ZERO, |s| s.elapsed()),
        };
        let decision = decide(policy, f.failure, attempt);
        tracing::debug!(pool = %pool.cfg.name, instance = %inst.endpoint.url, failure = %f.failure, ?decision, "try failed");
        let error = ProxyError::Upstream {
            pool: pool.cfg.name.clone(),
            failure: f.failure,
            detail: f.detail,
        };
        if decision != Decision::Retry {
            // A listed status that will not be retried is still the
            // instance's answer: pass it on.
            return match f.answer {
                Some((resp, conn)) => Ok(respond(resp, conn, Some(guard), pool, rec)),
                None => Err(error),
            };
        }
        drop(guard);
        pool.counters.retried(f.failure);
        rec.retrying(f.failure);
        last = Some((error, f.answer));
    }
}

/// One try on `inst`: its answer, a failure in the instance's fault
/// (`Ok(Err(_))`), or an error that ends the request (`Err(_)`). Its
/// timings go to the record.
async fn try_once(
    env: Env<'_>,
    pool: &PoolRuntime,
    inst: &InstanceState,
    req: &mut Request,
    head: Duration,
    last_try: bool,
    rec: &mut Pending,
) -> Result<Result<Answer, Failed>, ProxyError> {
    let limits = Deadlines {
        connect: pool.cfg.timeouts.connect,
        head,
    };
    let clock = env.clock;
    let outgoing = req.out.build(inst, last_try)?;
    let sent_at = clock.instant();
    rec.sent(sent_at);
    let res = match req.upgrade.is_some() {
        true => upstream::send_upgrade(&inst.origin, outgoing, limits).await,
        false => upstream::send(&inst.origin, outgoing, limits).await,
    };
    match res {
        Ok((resp, conn)) => {
            let status = resp.status();
            let (took, now) = (sent_at.elapsed(), clock.now_ms());
            rec.answered(conn.connect_time(), took);
            if let Some(n) = feedback::answered(pool, inst, status, resp.headers(), took, now) {
                feedback::note(env, pool, inst, n);
            }
            let upgraded = status == StatusCode::SWITCHING_PROTOCOLS && req.upgrade.is_some();
            let unasked = status == StatusCode::SWITCHING_PROTOCOLS && !upgraded;
            let listed = !upgraded && pool.cfg.retry.on.statuses.contains(&status.as_u16());
            feedback::counted(inst, Some((status, took)), unasked || listed, now);
            if unasked {
                // RFC 9110 §15.2.2: a switch nobody asked for is not an
                // answer the caller can use; the connection is dropped.
                return Ok(Err(Failed {
                    failure: Failure::InvalidResponse,
                    detail:
                        "answered 101 Switching Protocols to a request that asked for no upgrade"
                            .into(),
                    answer: None,
                }));
            }
            if !listed {
                return Ok(Ok((resp, conn)));
            }
            Ok(Err(Failed {
                failure: Failure::Status(status.as_u16()),
                detail: format!("answered {status}"),
                answer: Some((resp, conn)),
            }))
        }
        Err(mut e) => {
            if let Some(unsent) = e.take_unsent() {
                req.out.restore(unsent);
            }
            match e {
                TryError::Instance {
                    failure, detail, ..
                } => {
                    feedback::counted(inst, None, true, clock.now_ms());
                    Ok(Err(Failed {
                        failure,
                        detail,
                        answer: None,
                    }))
                }
                // The caller's or the gateway's fault: not retried.
                e => {
                    if let TryError::Local { detail } = &e {
                        tracing::error!(pool = %pool.cfg.name, instance = %inst.endpoint.url, %detail, "cannot open an upstream connection");
                    }
                    let idle = pool.cfg.timeouts.idle;
                    Err(e.into_proxy_error(&pool.cfg.name, req.max_body, idle))
                }
            }
        }
    }
}

/// Each try waits for a response head at most `response_header`, and
/// never beyond what is left of the retry budget.
fn head_timeout(pool: &PoolRuntime, started: Option<Instant>) -> Duration {
    let t = &pool.cfg.timeouts;
    match (pool.cfg.retry.timeout, started) {
        (Some(budget), Some(t0)) => t.response_header.min(budget.saturating_sub(t0.elapsed())),
        _ => t.response_header,
    }
}

/// The caller's response for an answer that ends the loop: a WebSocket
/// switch becomes a tunnel, anything else streams back.
fn answer(
    resp: Response<Incoming>,
    conn: Pooled,
    guard: InFlightGuard,
    inst: &Arc<InstanceState>,
    req: &mut Request,
    pool: &PoolRuntime,
    rec: &mut Pending,
) -> Response<ProxyBody> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client) = req.upgrade.take() {
            rec.head(resp.status(), None);
            let (idle, record) = (pool.cfg.timeouts.idle, rec.hand_over());
            return tunnel::open(resp, client, guard, inst.clone(), idle, record);
        }
    }
    respond(resp, conn, Some(guard), pool, rec)
}

/// Out of instances to retry on: the last listed answer if there is one,
/// else the last try's error, else why none could be acquired.
fn give_up(
    e: ProxyError,
    last: Option<(ProxyError, Option<Answer>)>,
    pool: &PoolRuntime,
    rec: &mut Pending,
) -> Result<Response<ProxyBody>, ProxyError> {
    match last {
        Some((_, Some((resp, conn)))) => Ok(respond(resp, conn, None, pool, rec)),
        Some((last_error, None)) => Err(last_error),
        None => Err(e),
    }
}
