//! The rules a browser's `EventSource` applies to a stream, applied by the session client so
//! that a stream no browser would accept can never pass as completed.
//!
//! From WHATWG HTML §9.2 "Server-sent events"
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html>):
//! - §9.2.3 (processing model): a response is a stream only if its status is `200` and its
//!   `Content-Type` is `text/event-stream` (the MIME type's essence: parameters such as
//!   `charset` are ignored, case does not matter). Any other status or type makes the browser
//!   *fail the connection*, and "once the user agent has failed the connection, it does not
//!   attempt to reconnect". A network error makes it *reestablish the connection*.
//! - §9.2.7 (authoring notes): `204 No Content` is how a server tells a client to stop
//!   reconnecting.
//! - The request is a fetch, which follows redirects up to 20 (fetch's "HTTP-redirect fetch":
//!   the 21st is a network error) and drops `Authorization` on a cross-origin redirect;
//!   reconnections go to the original URL, not to where a redirect led.
//! - §9.2.4 and §9.2.6: a reconnection sends the event source's *last event ID string* as
//!   `Last-Event-ID` (no header when it is empty). The string is set at each dispatch from the
//!   last event ID buffer, which only an `id` field changes (an `id` with an empty value empties
//!   it; one containing NUL is ignored) and which survives events without an `id`.
//!
//! What the client makes of each case (the labels appear in `report.json` and
//! `sessions.jsonl`; `docs/protocol.md` "How the harness's client judges a stream" has the table):
//! - `200` that is not `text/event-stream` → drop `not_event_stream`; `204` → drop
//!   `no_content`; any other status the protocol does not name → drop `http_status`.
//! - The protocol's own statuses win over the spec where docs/protocol.md §1 names them:
//!   `404` → drop `session_unknown`, `409` → drop `resume_refused`; and `408`, `429` and every
//!   `5xx` are retried (interruption `retryable_status`), because a deploy or a load balancer
//!   answers `502`/`503`/`504` for a moment. A browser would give up on those: a target that
//!   relies on this retry does not serve browsers across a deploy, and the interruption
//!   reason says so.
//! - More than [`MAX_REDIRECTS`] redirects → drop `too_many_redirects`. Fetch calls that a
//!   network error, which a browser may retry "unless it knows that to be futile"; a
//!   redirect chain that long is a loop, so retrying is futile.
//! - A reconnection sends what a browser would send as `Last-Event-ID`: the last event ID
//!   string, which for a well-behaved target is the last seq the verifier accepted. When it is
//!   another number (an `id`-only block, a repeated older id) the client resumes from there as
//!   a browser would, and the verifier counts the consequences as lost or duplicated events.
//!   When a browser could not resume at all, the session is dropped before reconnecting:
//!   `no_event_id` (events arrived but none carried an `id`: a browser would start over),
//!   `event_id_reset` (the last `id` was empty: no header), `non_numeric_event_id` (protocol
//!   v1 resumes from a seq).
//!
//! One deliberate deviation: the spec initialises the last event ID buffer to the empty string
//! for each new connection, so read literally a reconnected stream's first dispatch (the
//! protocol's `retry: 1000` block, which has no data) would empty the last event ID string.
//! The client seeds each stream's parser with the string instead, as the buffer's "does not get
//! reset" note intends; otherwise every resumed stream cut before its first event would count
//! as `no_event_id`.
//!
//! Pure: no I/O, no time. `client.rs` calls it and acts on the verdicts.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};

use super::outcome::{DropReason, InterruptReason};

/// Redirects followed in one request before it fails (fetch's limit).
pub const MAX_REDIRECTS: usize = 20;

/// The redirect policy of the HTTP client that [`super::run_session`] is given: follow up to
/// [`MAX_REDIRECTS`], then fail with an error for which `reqwest::Error::is_redirect` holds.
/// reqwest, like fetch, removes `Authorization` and `Cookie` on a redirect to another origin.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::limited(MAX_REDIRECTS)
}

/// What a stream response is, judged on its status and headers before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Opened {
    /// A stream: read it.
    Stream,
    /// Reconnect after the backoff (the protocol retries it; a browser would not).
    Retry(InterruptReason),
    /// Give up on the session.
    Fail(DropReason),
}

/// Judge a stream response (§9.2.3, with the protocol's exceptions; see the module docs).
pub(super) fn judge_response(status: StatusCode, headers: &HeaderMap) -> Opened {
    match status.as_u16() {
        200 if is_event_stream(headers) => Opened::Stream,
        200 => Opened::Fail(DropReason::NotEventStream),
        204 => Opened::Fail(DropReason::NoContent),
        404 => Opened::Fail(DropReason::SessionUnknown),
        409 => Opened::Fail(DropReason::ResumeRefused),
        s @ (408 | 429 | 500..=599) => Opened::Retry(InterruptReason::RetryableStatus(s)),
        s => Opened::Fail(DropReason::HttpStatus(s)),
    }
}

/// Whether the response's MIME type (fetch's "extract a MIME type": the last valid type across
/// every `Content-Type` value, split at commas) has the essence `text/event-stream`.
/// Simplified: a quoted parameter containing a comma is not handled.
fn is_event_stream(headers: &HeaderMap) -> bool {
    let mut essence = None;
    for value in headers.get_all(CONTENT_TYPE) {
        let Ok(value) = value.to_str() else { continue };
        for candidate in value.split(',') {
            let e = candidate.split(';').next().unwrap_or_default();
            let e = e.trim_matches([' ', '\t']);
            let valid = e
                .split_once('/')
                .is_some_and(|(t, s)| is_token(t) && is_token(s));
            if valid && e != "*/*" {
                essence = Some(e);
            }
        }
    }
    essence.is_some_and(|e| e.eq_ignore_ascii_case("text/event-stream"))
}

/// An HTTP token (RFC 9110 `tchar`), as a MIME type's type and subtype must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Why a browser could not resume this session, if it could not (see the module docs):
/// `last_event_id` is the event source's last event ID string (`None`: no `id` field yet),
/// `events` the events received so far. When this is `None`, the non-empty string is what a
/// reconnection sends as `Last-Event-ID`.
pub(super) fn resume_check(last_event_id: Option<&str>, events: u64) -> Option<DropReason> {
    match last_event_id {
        // Nothing arrived yet: starting over loses nothing.
        None | Some("") if events == 0 => None,
        None => Some(DropReason::NoEventId),
        Some("") => Some(DropReason::EventIdReset),
        Some(id) if !id.bytes().all(|b| b.is_ascii_digit()) => Some(DropReason::NonNumericEventId),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn check(status: u16, content_types: &[&str], expected: Opened) {
        let mut headers = HeaderMap::new();
        for ct in content_types {
            headers.append(CONTENT_TYPE, HeaderValue::from_str(ct).expect("header"));
        }
        let status = StatusCode::from_u16(status).expect("status");
        assert_eq!(
            judge_response(status, &headers),
            expected,
            "{status} {content_types:?}"
        );
    }

    #[test]
    fn status_and_content_type_decide_what_a_stream_is() {
        let es = "text/event-stream";
        check(200, &[es], Opened::Stream);
        check(200, &["text/event-stream; charset=utf-8"], Opened::Stream);
        check(200, &["Text/Event-Stream"], Opened::Stream);
        check(200, &[" text/event-stream ;x=y"], Opened::Stream);
        check(200, &["application/json", es], Opened::Stream);
        // The last valid type wins, and "*/*" or garbage does not count.
        check(200, &["text/event-stream, */*"], Opened::Stream);
        check(200, &["text/event-stream, nonsense"], Opened::Stream);
        let not = Opened::Fail(DropReason::NotEventStream);
        check(200, &[], not.clone());
        check(200, &["application/json"], not.clone());
        check(200, &["text/plain"], not.clone());
        check(200, &["text/event-stream-x"], not.clone());
        check(200, &["text/event-stream, text/html"], not.clone());
        check(200, &[es, "application/json"], not.clone());
        check(200, &["text/ event-stream"], not);
        check(204, &[es], Opened::Fail(DropReason::NoContent));
        for s in [201, 202, 206, 301, 304, 400, 401, 403, 410, 418] {
            check(s, &[es], Opened::Fail(DropReason::HttpStatus(s)));
        }
        check(404, &[], Opened::Fail(DropReason::SessionUnknown));
        check(409, &[], Opened::Fail(DropReason::ResumeRefused));
        for s in [408, 429, 500, 502, 503, 504] {
            check(s, &[], Opened::Retry(InterruptReason::RetryableStatus(s)));
        }
    }

    #[test]
    fn a_browser_resumes_only_from_a_numeric_last_event_id() {
        let cases: &[(Option<&str>, u64, Option<DropReason>)] = &[
            (None, 0, None),
            (Some(""), 0, None),
            (Some("5"), 7, None),
            (Some("0"), 1, None),
            // Another number than the client's cursor still resumes (from there).
            (Some("99999999999999999999999"), 5, None),
            (None, 3, Some(DropReason::NoEventId)),
            (Some(""), 4, Some(DropReason::EventIdReset)),
            (Some("abc"), 1, Some(DropReason::NonNumericEventId)),
            (Some("+5"), 5, Some(DropReason::NonNumericEventId)),
            (Some(" 5"), 5, Some(DropReason::NonNumericEventId)),
            (Some("abc"), 0, Some(DropReason::NonNumericEventId)),
        ];
        for &(id, events, expected) in cases {
            assert_eq!(resume_check(id, events), expected, "{id:?} {events}");
        }
    }
}
