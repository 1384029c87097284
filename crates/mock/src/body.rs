//! The single response body type of the mock.
//!
//! An enum instead of a boxed body keeps the hot path allocation-free: a
//! static or prebuilt `Bytes` is sent as one frame, an SSE stream is a small
//! timer-driven state machine (no task, no channel: when the client goes
//! away hyper drops the body and the stream simply stops), and `/echo`
//! forwards the request body frame by frame. Streaming bodies may carry the
//! request's [`InFlight`] guard so capacity stays held until they end.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::state::InFlight;

pub(crate) struct MockBody {
    kind: Kind,
    _guard: Option<InFlight>,
}

enum Kind {
    Full(Option<Bytes>),
    Sse(Box<Sse>),
    Echo(Incoming),
}

impl MockBody {
    pub fn full(b: impl Into<Bytes>) -> MockBody {
        let b = b.into();
        MockBody {
            kind: Kind::Full((!b.is_empty()).then_some(b)),
            _guard: None,
        }
    }

    pub fn echo(incoming: Incoming, guard: InFlight) -> MockBody {
        MockBody {
            kind: Kind::Echo(incoming),
            _guard: Some(guard),
        }
    }

    /// `events` events of `{"i":k,"instance":NAME}`, `interval` apart (the first
    /// one immediately), followed by `[DONE]`.
    pub fn sse(name_json: &str, events: u64, interval: Duration, guard: InFlight) -> MockBody {
        Self::stream(
            SseStyle::Plain(name_json.to_string()),
            events,
            interval,
            guard,
        )
    }

    /// An OpenAI-style chat completion stream: `tokens` chunks
    /// (`chat.completion.chunk`, the first with the assistant role, the
    /// last with `finish_reason: "stop"`), `interval` apart, then `[DONE]`.
    pub fn openai(model_json: &str, tokens: u64, interval: Duration, guard: InFlight) -> MockBody {
        Self::stream(
            SseStyle::OpenAi(model_json.to_string()),
            tokens,
            interval,
            guard,
        )
    }

    fn stream(style: SseStyle, events: u64, interval: Duration, guard: InFlight) -> MockBody {
        let sse = Sse {
            style,
            next: 0,
            total: events,
            interval,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
        };
        MockBody {
            kind: Kind::Sse(Box::new(sse)),
            _guard: Some(guard),
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Echo(incoming) => Pin::new(incoming).poll_frame(cx),
            Kind::Sse(sse) => sse.poll_next(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Echo(incoming) => incoming.is_end_stream(),
            Kind::Sse(sse) => sse.next > sse.total,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Echo(incoming) => incoming.size_hint(),
            Kind::Sse(_) => SizeHint::default(),
        }
    }
}

/// What each SSE event carries.
enum SseStyle {
    /// `{"i":k,"instance":NAME}` (the JSON-encoded instance name).
    Plain(String),
    /// An OpenAI `chat.completion.chunk` of the JSON-encoded model name.
    OpenAi(String),
}

/// The text of token `i` of the mock's chat answers.
pub(crate) fn token(i: u64) -> String {
    format!("tok{i} ")
}

struct Sse {
    style: SseStyle,
    /// Index of the next event; `total` means `[DONE]` is next, above it the stream ended.
    next: u64,
    total: u64,
    interval: Duration,
    sleep: Pin<Box<Sleep>>,
    /// Whether `sleep` must elapse before the next event.
    armed: bool,
}

impl Sse {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.next > self.total {
            return Poll::Ready(None);
        }
        if self.next == self.total {
            self.next += 1;
            return Poll::Ready(Some(Bytes::from_static(b"data: [DONE]\n\n")));
        }
        if self.armed {
            ready!(self.sleep.as_mut().poll(cx));
            self.armed = false;
        }
        let event = match &self.style {
            SseStyle::Plain(name) => {
                format!("data: {{\"i\":{},\"instance\":{name}}}\n\n", self.next)
            }
            SseStyle::OpenAi(model) => {
                let role = if self.next == 0 {
                    "\"role\":\"assistant\","
                } else {
                    ""
                };
                let finish = if self.next + 1 == self.total {
                    "\"stop\""
                } else {
                    "null"
                };
                format!(
                    "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":{model},\"choices\":[{{\"index\":0,\"delta\":{{{role}\"content\":\"{}\"}},\"finish_reason\":{finish}}}]}}\n\n",
                    token(self.next)
                )
            }
        };
        self.next += 1;
        if self.next < self.total && !self.interval.is_zero() {
            self.sleep.as_mut().reset(Instant::now() + self.interval);
            self.armed = true;
        }
        Poll::Ready(Some(Bytes::from(event)))
    }
}
