//! Opening one event stream: through the lean HTTP/1.1 reader (`wire`) where it can read the
//! URL, else through reqwest; either way the client sees one [`Stream`] (status, headers, a
//! body read piece by piece), so everything after the open is the same code.

use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};

use super::client::describe;
use super::eventsource::MAX_REDIRECTS;
use dropzero_wire as wire;

/// An open stream response, before its status is judged.
pub(super) struct Stream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

/// Why no response came.
pub(super) enum OpenError {
    /// More redirects than fetch follows (`eventsource::MAX_REDIRECTS`).
    Redirects(String),
    /// Anything else: refused, reset, a malformed response head, a header value that cannot
    /// be sent.
    Failed(String),
}

/// A stream's body, from whichever client opened it.
pub(super) enum Body {
    Wire(wire::Body),
    Reqwest {
        response: reqwest::Response,
        chunk: bytes::Bytes,
    },
}

/// `GET url` with `headers` (lower-case names). `lean` is the URL parsed, when the lean
/// reader may read it (`wire::usable`).
///
/// Redirects are followed as reqwest follows them for the other streams (`301`, `302`,
/// `303`, `307`, `308` with a `Location`; `authorization` and `cookie` are not sent to
/// another origin; the 21st is an error). A chain that leads away from plain `http://`
/// continues in reqwest, which counts its own 20 from there.
pub(super) async fn open(
    client: &reqwest::Client,
    url: &str,
    lean: Option<&Url>,
    headers: &[(&str, &str)],
) -> Result<Stream, OpenError> {
    let mut url = std::borrow::Cow::Borrowed(url);
    let mut headers = headers.to_vec();
    if let Some(first) = lean {
        let mut at = first.clone();
        let mut hops = 0;
        loop {
            let r = wire::get(&at, &headers)
                .await
                .map_err(|e| OpenError::Failed(describe(&e)))?;
            let Some(next) = redirect(&at, &r) else {
                return Ok(Stream {
                    status: r.status,
                    headers: r.headers,
                    body: Body::Wire(r.body),
                });
            };
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(OpenError::Redirects(format!(
                    "{at}: more than {MAX_REDIRECTS} redirects"
                )));
            }
            if next.origin() != at.origin() {
                headers.retain(|(name, _)| !matches!(*name, "authorization" | "cookie"));
            }
            at = next;
            if !wire::usable(&at) {
                url = std::borrow::Cow::Owned(at.to_string());
                break;
            }
        }
    }
    let mut req = client.get(url.as_ref());
    for (name, value) in &headers {
        req = req.header(*name, *value);
    }
    match req.send().await {
        Ok(mut response) => Ok(Stream {
            status: response.status(),
            headers: std::mem::take(response.headers_mut()),
            body: Body::Reqwest {
                response,
                chunk: bytes::Bytes::new(),
            },
        }),
        Err(e) if e.is_redirect() => Err(OpenError::Redirects(describe(&e))),
        Err(e) => Err(OpenError::Failed(describe(&e))),
    }
}

/// Where a redirect response sends the request, if it is one reqwest would follow.
fn redirect(from: &Url, r: &wire::Response) -> Option<Url> {
    let code = r.status.as_u16();
    if !matches!(code, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    // UTF-8, not only ASCII: `join` percent-encodes what needs it (as tower-http does).
    let location =
        std::str::from_utf8(r.headers.get(reqwest::header::LOCATION)?.as_bytes()).ok()?;
    from.join(location).ok()
}

impl Body {
    /// The next piece of the body, `None` at its clean end, or why it broke.
    pub(super) async fn next(&mut self) -> Option<Result<&[u8], String>> {
        match self {
            Body::Wire(body) => Some(body.next().await?.map_err(|e| describe(&e))),
            Body::Reqwest { response, chunk } => match response.chunk().await {
                Ok(Some(next)) => {
                    *chunk = next;
                    Some(Ok(&chunk[..]))
                }
                Ok(None) => None,
                Err(e) => Some(Err(describe(&e))),
            },
        }
    }

    /// After the stream's `done`: a lean reader's connection waits (briefly) for the target to
    /// close it, so the target keeps its TIME_WAIT (`dropzero_wire::Body::finish`); reqwest's
    /// goes back to its pool.
    pub(super) async fn finish(self) {
        if let Body::Wire(body) = self {
            body.finish(wire::FINISH_WITHIN).await;
        }
    }

    /// The rest of the body, refused beyond `cap` bytes.
    pub(super) async fn read_capped(&mut self, cap: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        while let Some(piece) = self.next().await {
            let piece = piece?;
            if out.len() + piece.len() > cap {
                return Err(format!("body larger than {cap} bytes"));
            }
            out.extend_from_slice(piece);
        }
        Ok(out)
    }
}
