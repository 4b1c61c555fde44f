//! A lean HTTP/1.1 client for one thing: send one request over plain `http://` and read the
//! response body piece by piece in the caller's own task. The harness reads its event streams
//! with it (`dropzero::session::open`), the runtime its LLM streams (`dropzero_runtime::llm`).
//!
//! Why it exists: at thousands of streams, the general client (reqwest over hyper) costs
//! two tasks per event — hyper's connection task reads the socket and hands each chunk to the
//! caller's task through a channel — plus its dispatcher, request channel and 8 KiB buffers
//! per connection (about 29 KB of heap per open connection, measured in the runtime). Here
//! the caller's task reads the socket itself into one small buffer (one `read` per wake-up;
//! tokio clears readiness on a short read, so no second `read` ends in `EAGAIN`) and decodes
//! the body framing in place. `docs/benchmarks.md` ("A lean stream reader", "A lean LLM
//! client") has what it bought.
//!
//! What it does not do, and who does instead (the caller decides, see [`usable`]):
//! - `https://`, credentials in the URL (reqwest's Basic auth) and proxies (an
//!   `HTTP_PROXY`/`ALL_PROXY` environment): reqwest.
//! - Redirects: a `3xx` is handed back as any other response.
//! - Connection reuse: each request has its own connection and asks for `Connection: close`.
//!
//! What it does as hyper would (RFC 9112): skips `1xx` interim responses; frames the body by
//! `Transfer-Encoding: chunked` (extensions and trailers ignored, CRLF line ends required,
//! nothing but spaces before a `;` after the size), else `Content-Length` (digits only), else
//! the connection's close; a body cut before its framing says it ended is an error, a
//! close-delimited one ends cleanly. So a server's framing fails the same way whichever client
//! reads it. Everything the server sends is bounded: the response head
//! ([`MAX_HEAD`], [`MAX_HEADERS`]) and a chunk-size or trailer line ([`MAX_LINE`]); a request
//! header value with a line break is refused before anything is sent.

use std::io;
use std::sync::OnceLock;

use http::StatusCode;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// The read buffer a response starts with, and returns to: events are a few hundred bytes.
/// It holds more than the most the decoder leaves undecoded (a partial chunk-size or trailer
/// line, at most [`MAX_LINE`]), so a read always has room.
const READ_BUFFER: usize = 2 * 1024;
/// The most a burst grows the read buffer to (a resume's replay, an LLM answering at full
/// speed): fewer reads while it lasts, and back to [`READ_BUFFER`] after.
const MAX_READ_BUFFER: usize = 16 * 1024;
const _: () = assert!(READ_BUFFER > MAX_LINE + 2 && MAX_READ_BUFFER >= READ_BUFFER);
/// Largest response head (status line and headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most response headers accepted (hyper's default too).
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size or trailer line.
pub const MAX_LINE: usize = 1024;

/// How long [`Body::finish`] waits for the server's close by default: a server that honours
/// `Connection: close` closes at once; one that does not costs the caller this much.
pub const FINISH_WITHIN: std::time::Duration = std::time::Duration::from_millis(20);

/// Whether this client can read a response from `url`: plain `http://` without credentials in
/// the URL, and no proxy configured in the environment (which reqwest would honour).
pub fn usable(url: &Url) -> bool {
    static PROXIED: OnceLock<bool> = OnceLock::new();
    let proxied = *PROXIED.get_or_init(|| {
        ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
    });
    // Credentials in the URL become reqwest's `Authorization: Basic`: leave those to it.
    let credentials = !url.username().is_empty() || url.password().is_some();
    url.scheme() == "http" && url.host_str().is_some() && !credentials && !proxied
}

/// A response whose head has been read; its body is read with [`Body::next`].
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

/// `GET url` with `headers` (names in lower case) on a new connection, and read the response
/// head. Errors are I/O errors; a malformed response is `InvalidData`.
pub async fn get(url: &Url, headers: &[(&str, &str)]) -> io::Result<Response> {
    request("GET", url, headers, &[]).await
}

/// `method url` with `headers` (names in lower case) and `body` (sent with its
/// `content-length` unless empty) on a new connection, and read the response head. Errors
/// are I/O errors; a malformed response is `InvalidData`.
pub async fn request(
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    // Refused before connecting: a header value that cannot be sent.
    let request = request_bytes(method, url, headers, body)?;
    exchange(connect(url).await?, request).await
}

/// A new connection to `url`'s host and port, for [`send`]: a caller that tells a failed
/// connect (the server is unreachable) from a failure later on connects first.
pub async fn connect(url: &Url) -> io::Result<TcpStream> {
    let host = url
        .host_str()
        .ok_or_else(|| invalid_input("the URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let ip_or_name = host.trim_start_matches('[').trim_end_matches(']');
    let sock = TcpStream::connect((ip_or_name, port)).await?;
    sock.set_nodelay(true)?;
    Ok(sock)
}

/// [`request`] on a connection made by [`connect`].
pub async fn send(
    sock: TcpStream,
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    exchange(sock, request_bytes(method, url, headers, body)?).await
}

/// The request's head and body, for one write: a small request goes out in one segment.
fn request_bytes(
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Vec<u8>> {
    let mut request = request_head(method, url, headers, body.len())?;
    request.extend_from_slice(body);
    Ok(request)
}

/// Write `request` and read the response head.
async fn exchange(mut sock: TcpStream, request: Vec<u8>) -> io::Result<Response> {
    sock.write_all(&request).await?;
    drop(request);
    let mut body = Body {
        sock,
        buf: vec![0; READ_BUFFER],
        pos: 0,
        len: 0,
        framing: Framing::Close,
    };
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Response::new(&mut slots);
        let parsed = head
            .parse(&body.buf[body.pos..body.len])
            .map_err(|e| invalid_data(format!("malformed response head: {e}")))?;
        let httparse::Status::Complete(size) = parsed else {
            body.fill_head().await?;
            continue;
        };
        let code = head.code.unwrap_or_default();
        let status = StatusCode::from_u16(code)
            .map_err(|_| invalid_data(format!("status {code} out of range")))?;
        let mut map = HeaderMap::with_capacity(head.headers.len());
        for h in head.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| invalid_data(format!("bad header name {:?}", h.name)))?;
            let value = HeaderValue::from_bytes(h.value)
                .map_err(|_| invalid_data(format!("bad value of header {name}")))?;
            map.append(name, value);
        }
        body.pos += size;
        // Interim responses (`100 Continue`, `103 Early Hints`) precede the real one.
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            continue;
        }
        body.framing = framing(status, &map)?;
        body.shrink();
        return Ok(Response {
            status,
            headers: map,
            body,
        });
    }
}

fn request_head(
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body_len: usize,
) -> io::Result<Vec<u8>> {
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let mut out = Vec::with_capacity(256);
    for part in [
        method,
        " ",
        target,
        " HTTP/1.1\r\nhost: ",
        authority,
        "\r\n",
    ] {
        out.extend_from_slice(part.as_bytes());
    }
    for (name, value) in headers {
        // What reqwest would refuse to send (a line break would inject a header).
        if HeaderValue::from_str(value).is_err() {
            return Err(invalid_input(format!(
                "the {name} header's value is not a valid header value"
            )));
        }
        for part in [*name, ": ", value, "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
    }
    if body_len > 0 {
        out.extend_from_slice(format!("content-length: {body_len}\r\n").as_bytes());
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    Ok(out)
}

/// How the body's end is known (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Until the connection closes.
    Close,
    /// This many bytes left.
    Length(u64),
    Chunked(Chunk),
    /// Ended; nothing more is read.
    Ended,
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many data bytes left in the chunk.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

fn framing(status: StatusCode, headers: &HeaderMap) -> io::Result<Framing> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Ended);
    }
    let codings: Vec<&[u8]> = headers
        .get_all("transfer-encoding")
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    if let Some(last) = codings.last() {
        // A final coding other than chunked: the close ends the body.
        return Ok(if last.eq_ignore_ascii_case(b"chunked") {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::Close
        });
    }
    let mut length = None;
    for value in headers.get_all("content-length") {
        for part in value.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            let digits = !part.is_empty() && part.iter().all(u8::is_ascii_digit);
            let n = std::str::from_utf8(part)
                .ok()
                .filter(|_| digits)
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| invalid_data("invalid content-length".into()))?;
            if length.is_some_and(|l| l != n) {
                return Err(invalid_data("conflicting content-length values".into()));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        None => Framing::Close,
        Some(0) => Framing::Ended,
        Some(n) => Framing::Length(n),
    })
}

/// A response body being read from its connection.
pub struct Body {
    sock: TcpStream,
    buf: Vec<u8>,
    /// `buf[pos..len]` is read and not yet decoded.
    pos: usize,
    len: usize,
    framing: Framing,
}

/// What decoding the buffered bytes gave.
enum Step {
    /// Body bytes `buf[start..end]`.
    Data(usize, usize),
    /// Read more from the socket.
    More,
    /// The decoder moved on; decode again.
    Again,
}

impl Body {
    /// The next piece of the body, `None` at its end. Cancel-safe only in that dropping the
    /// future loses nothing decoded: a caller that stops waiting stops reading the stream.
    pub async fn next(&mut self) -> Option<io::Result<&[u8]>> {
        loop {
            let step = match self.decode() {
                Ok(step) => step,
                Err(e) => {
                    self.framing = Framing::Ended;
                    return Some(Err(e));
                }
            };
            match step {
                Step::Data(start, end) => return Some(Ok(&self.buf[start..end])),
                Step::Again => continue,
                Step::More if self.framing == Framing::Ended => return None,
                Step::More => {}
            }
            match self.fill_body().await {
                Ok(0) if self.framing == Framing::Close => {
                    self.framing = Framing::Ended;
                    return None;
                }
                Ok(0) => {
                    self.framing = Framing::Ended;
                    return Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed before the body ended",
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    self.framing = Framing::Ended;
                    return Some(Err(e));
                }
            }
        }
    }

    /// Read what is left of the body (discarding it) and then wait for the server to close
    /// the connection, all within `within`. For an exchange that asked for `Connection:
    /// close`, the side that closes first keeps the connection's TIME_WAIT (60 s on Linux);
    /// at hundreds of requests a second to one server, a client that closes first runs out
    /// of ephemeral ports. A server that honours `Connection: close` closes right after the
    /// body's end, so this costs no more than that read.
    pub async fn finish(mut self, within: std::time::Duration) {
        let drain = async {
            while let Some(Ok(_)) = self.next().await {}
            if self.framing == Framing::Ended {
                let mut byte = [0u8; 1];
                let _ = self.sock.read(&mut byte).await;
            }
        };
        let _ = tokio::time::timeout(within, drain).await;
    }

    fn decode(&mut self) -> io::Result<Step> {
        let buffered = (self.len - self.pos) as u64;
        Ok(match self.framing {
            Framing::Ended => Step::More,
            _ if buffered == 0 => Step::More,
            Framing::Close => self.take(buffered),
            Framing::Length(left) => {
                let n = left.min(buffered);
                self.framing = match left - n {
                    0 => Framing::Ended,
                    rest => Framing::Length(rest),
                };
                self.take(n)
            }
            Framing::Chunked(Chunk::Data(left)) => {
                let n = left.min(buffered);
                self.framing = Framing::Chunked(match left - n {
                    0 => Chunk::DataEnd,
                    rest => Chunk::Data(rest),
                });
                self.take(n)
            }
            Framing::Chunked(Chunk::DataEnd) => {
                let rest = &self.buf[self.pos..self.len];
                match rest {
                    [b'\r', b'\n', ..] => {}
                    [b'\r'] => return Ok(Step::More),
                    _ => return Err(invalid_data("chunk data not followed by CRLF".into())),
                }
                self.pos += 2;
                self.framing = Framing::Chunked(Chunk::Size);
                Step::Again
            }
            Framing::Chunked(state @ (Chunk::Size | Chunk::Trailers)) => {
                let Some((start, end)) = self.line()? else {
                    return Ok(Step::More);
                };
                let line = &self.buf[start..end];
                self.framing = match state {
                    Chunk::Size => match chunk_size(line)? {
                        0 => Framing::Chunked(Chunk::Trailers),
                        n => Framing::Chunked(Chunk::Data(n)),
                    },
                    _ if line.is_empty() => Framing::Ended,
                    _ => Framing::Chunked(Chunk::Trailers),
                };
                Step::Again
            }
        })
    }

    fn take(&mut self, n: u64) -> Step {
        let start = self.pos;
        self.pos += n as usize;
        Step::Data(start, self.pos)
    }

    /// Where the next whole line is (without its `\r\n`), consumed; `None` until it is read.
    /// A bare `\n` is an error, as in hyper.
    fn line(&mut self) -> io::Result<Option<(usize, usize)>> {
        let rest = &self.buf[self.pos..self.len];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_LINE {
                return Err(invalid_data("chunk line too long".into()));
            }
            return Ok(None);
        };
        if nl > MAX_LINE {
            return Err(invalid_data("chunk line too long".into()));
        }
        if nl == 0 || rest[nl - 1] != b'\r' {
            return Err(invalid_data("chunk line not ended by CRLF".into()));
        }
        let start = self.pos;
        self.pos += nl + 1;
        Ok(Some((start, start + nl - 1)))
    }

    /// Read into the buffer's free end, first moving what is left undecoded to its front.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        let n = self.sock.read(&mut self.buf[self.len..]).await?;
        self.len += n;
        Ok(n)
    }

    /// [`Body::fill`] for the body, sizing the buffer to what arrives: a read that filled all
    /// the free space doubles it (up to [`MAX_READ_BUFFER`]), so a burst takes fewer reads;
    /// a small read takes a grown buffer back to [`READ_BUFFER`], so a stream that once had a
    /// burst does not keep the memory.
    async fn fill_body(&mut self) -> io::Result<usize> {
        let n = self.fill().await?;
        let free = self.buf.len() - (self.len - n);
        if n == free && self.buf.len() < MAX_READ_BUFFER {
            let grown = (self.buf.len() * 2).min(MAX_READ_BUFFER);
            self.buf.resize(grown, 0);
        } else if n <= READ_BUFFER / 2 {
            self.shrink();
        }
        Ok(n)
    }

    /// Back to a [`READ_BUFFER`] after a large head or a burst grew the buffer, when what is
    /// left fits.
    fn shrink(&mut self) {
        let left = self.len - self.pos;
        if self.buf.len() > READ_BUFFER && left <= READ_BUFFER {
            let mut buf = vec![0; READ_BUFFER];
            buf[..left].copy_from_slice(&self.buf[self.pos..self.len]);
            (self.buf, self.pos, self.len) = (buf, 0, left);
        }
    }

    /// Read more of the response head, growing the buffer up to [`MAX_HEAD`].
    async fn fill_head(&mut self) -> io::Result<()> {
        if self.len - self.pos >= MAX_HEAD {
            return Err(invalid_data(format!(
                "response head larger than {MAX_HEAD} bytes"
            )));
        }
        if self.pos == 0 && self.len == self.buf.len() {
            let grown = (self.buf.len() * 2).min(MAX_HEAD);
            self.buf.resize(grown, 0);
        }
        match self.fill().await? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed before the response head",
            )),
            _ => Ok(()),
        }
    }
}

/// The size of a chunk-size line: hex digits, optional spaces or tabs, then nothing or
/// `;extensions` (what hyper accepts).
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = line[digits..].trim_ascii_start();
    let rest_ok = rest.is_empty() || rest[0] == b';';
    if digits == 0 || !rest_ok {
        return Err(invalid_data(format!(
            "invalid chunk size line {:?}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        )));
    }
    let hex = std::str::from_utf8(&line[..digits]).unwrap_or_default();
    u64::from_str_radix(hex, 16).map_err(|e| invalid_data(format!("invalid chunk size: {e}")))
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn invalid_input(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// Serve `response` in pieces of `split` bytes to the first connection, then close;
    /// return the URL and a handle yielding the request head the server read.
    async fn serve(response: Vec<u8>, split: usize) -> (Url, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/v1/sessions/s/events?x=1",
            listener.local_addr().expect("addr")
        );
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                sock.read_exact(&mut byte).await.expect("request");
                head.push(byte[0]);
            }
            // A request body, by its length.
            let text = String::from_utf8_lossy(&head).to_string();
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().expect("length"));
            let mut body = vec![0u8; length];
            sock.read_exact(&mut body).await.expect("request body");
            head.extend_from_slice(&body);
            for piece in response.chunks(split.max(1)) {
                if sock.write_all(piece).await.is_err() {
                    break;
                }
                sock.flush().await.ok();
                tokio::task::yield_now().await;
            }
            String::from_utf8(head).expect("ascii")
        });
        (url.parse().expect("url"), task)
    }

    /// The whole body as the reader decodes it, or the error that ended it.
    async fn read_all(response: &[u8], split: usize) -> (StatusCode, Result<Vec<u8>, String>) {
        let (url, server) = serve(response.to_vec(), split).await;
        let mut resp = get(&url, &[("accept", "text/event-stream")])
            .await
            .expect("head");
        let mut out = Vec::new();
        let mut result = Ok(());
        while let Some(piece) = resp.body.next().await {
            match piece {
                Ok(p) => out.extend_from_slice(p),
                Err(e) => {
                    result = Err(e.to_string());
                    break;
                }
            }
        }
        server.abort();
        (resp.status, result.map(|()| out))
    }

    const SSE: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n";

    #[tokio::test]
    async fn chunked_bodies_decode_whatever_the_split() {
        let body = "5;ext=1\r\nid: 1\r\nA\r\n\ndata: x\n\n\r\n0\r\ntrailer: t\r\n\r\n";
        let response = format!("{SSE}transfer-encoding: chunked\r\n\r\n{body}");
        for split in [1, 2, 3, 7, 64, 4096] {
            let (status, got) = read_all(response.as_bytes(), split).await;
            assert_eq!(status, 200);
            assert_eq!(
                got.as_deref(),
                Ok(&b"id: 1\ndata: x\n\n"[..]),
                "split {split}"
            );
        }
    }

    #[tokio::test]
    async fn length_and_close_delimited_bodies_end_where_they_say() {
        let (_, got) = read_all(
            format!("{SSE}content-length: 4\r\n\r\nabcdEXTRA").as_bytes(),
            3,
        )
        .await;
        assert_eq!(got.as_deref(), Ok(&b"abcd"[..]));
        let (_, got) = read_all(format!("{SSE}\r\ndata: a\n\n").as_bytes(), 2).await;
        assert_eq!(got.as_deref(), Ok(&b"data: a\n\n"[..]));
        let (status, got) = read_all(b"HTTP/1.1 204 No Content\r\n\r\n", 64).await;
        assert_eq!(
            (status, got.as_deref()),
            (StatusCode::NO_CONTENT, Ok(&b""[..]))
        );
    }

    #[tokio::test]
    async fn interim_responses_are_skipped() {
        let response = format!("HTTP/1.1 100 Continue\r\n\r\n{SSE}content-length: 2\r\n\r\nok");
        let (status, got) = read_all(response.as_bytes(), 5).await;
        assert_eq!((status, got.as_deref()), (StatusCode::OK, Ok(&b"ok"[..])));
    }

    #[tokio::test]
    async fn a_body_cut_before_its_end_is_an_error() {
        let cut_chunk = format!("{SSE}transfer-encoding: chunked\r\n\r\na\r\nabc");
        let cut_length = format!("{SSE}content-length: 10\r\n\r\nabc");
        for response in [cut_chunk, cut_length] {
            let (_, got) = read_all(response.as_bytes(), 4).await;
            let err = got.expect_err("cut");
            assert!(err.contains("closed before the body ended"), "{err}");
        }
    }

    #[tokio::test]
    async fn hostile_framing_is_refused_within_bounds() {
        let long_size = format!(
            "{SSE}transfer-encoding: chunked\r\n\r\n{}\r\n",
            "1".repeat(2000)
        );
        let cases = [
            (
                format!("{SSE}transfer-encoding: chunked\r\n\r\nzz\r\n"),
                "invalid chunk size",
            ),
            (
                format!("{SSE}transfer-encoding: chunked\r\n\r\n1ffffffffffffffff\r\n"),
                "invalid chunk size",
            ),
            (
                format!("{SSE}transfer-encoding: chunked\r\n\r\n2\r\nabX"),
                "not followed by CRLF",
            ),
            (long_size, "chunk line too long"),
            // What hyper refuses too: bare LF line ends, junk after the size.
            (
                format!("{SSE}transfer-encoding: chunked\r\n\r\n2\r\nab\n0\r\n\r\n"),
                "not followed by CRLF",
            ),
            (
                format!("{SSE}transfer-encoding: chunked\r\n\r\n2\nab\r\n"),
                "not ended by CRLF",
            ),
            (
                format!("{SSE}transfer-encoding: chunked\r\n\r\n5 junk\r\nhello\r\n"),
                "invalid chunk size",
            ),
        ];
        for (response, expected) in cases {
            let (_, got) = read_all(response.as_bytes(), 512).await;
            let err = got.expect_err(expected);
            assert!(err.contains(expected), "{err} vs {expected}");
        }
    }

    #[tokio::test]
    async fn a_malformed_or_oversized_head_is_an_error() {
        let huge = format!("{SSE}x-pad: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let conflicting = format!("{SSE}content-length: 1\r\ncontent-length: 2\r\n\r\nab");
        let cases = [
            ("NOT HTTP\r\n\r\n".to_string(), "malformed response head"),
            (huge, "larger than"),
            (conflicting, "conflicting content-length"),
            (
                format!("{SSE}content-length: +5\r\n\r\nhello"),
                "invalid content-length",
            ),
            (SSE.to_string(), "closed before the response head"),
        ];
        for (response, expected) in cases {
            let (url, server) = serve(response.into_bytes(), 4096).await;
            let err = get(&url, &[]).await.err().expect(expected).to_string();
            assert!(err.contains(expected), "{err} vs {expected}");
            server.abort();
        }
    }

    #[tokio::test]
    async fn the_request_carries_the_headers_and_refuses_line_breaks() {
        let (url, server) = serve(format!("{SSE}content-length: 0\r\n\r\n").into_bytes(), 64).await;
        let resp = get(
            &url,
            &[("authorization", "Bearer t"), ("last-event-id", "7")],
        )
        .await;
        assert_eq!(resp.expect("response").status, 200);
        let head = server.await.expect("server");
        let port = url.port().expect("port");
        assert_eq!(
            head,
            format!(
                "GET /v1/sessions/s/events?x=1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
                 authorization: Bearer t\r\nlast-event-id: 7\r\nconnection: close\r\n\r\n"
            )
        );
        let err = get(&url, &[("cookie", "a=b\r\nx-evil: 1")])
            .await
            .err()
            .expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn a_request_body_goes_out_with_its_length() {
        let (url, server) =
            serve(format!("{SSE}content-length: 2\r\n\r\nok").into_bytes(), 64).await;
        let mut resp = request(
            "POST",
            &url,
            &[("content-type", "application/json")],
            b"{\"a\":1}",
        )
        .await
        .expect("response");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.next().await.expect("piece").expect("ok"), b"ok");
        assert!(resp.body.next().await.is_none());
        let port = url.port().expect("port");
        assert_eq!(
            server.await.expect("server"),
            format!(
                "POST /v1/sessions/s/events?x=1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
                 content-type: application/json\r\ncontent-length: 7\r\nconnection: close\r\n\r\n\
                 {{\"a\":1}}"
            )
        );
    }

    #[tokio::test]
    async fn finish_waits_for_the_server_to_close_within_its_bound() {
        // The guard only keeps a broken `finish` from hanging the test run; it is not a
        // performance bound.
        let guard = std::time::Duration::from_secs(60);
        // A server that closes after the body: `finish`, with a bound of an hour, returns at
        // that close.
        let body = "5\r\nhello\r\n0\r\n\r\n";
        let (url, _server) = serve(
            format!("{SSE}transfer-encoding: chunked\r\n\r\n{body}").into_bytes(),
            3,
        )
        .await;
        let resp = get(&url, &[]).await.expect("response");
        let hour = std::time::Duration::from_secs(3600);
        tokio::time::timeout(guard, resp.body.finish(hour))
            .await
            .expect("finish returned at the server's close");
        // A server that keeps the connection open until the client has given up: `finish`
        // returns at its own bound.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url: Url = format!("http://{}/", listener.local_addr().expect("addr"))
            .parse()
            .expect("url");
        let (gave_up, keep_open) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let head = format!("{SSE}content-length: 2\r\n\r\nok");
            sock.write_all(head.as_bytes()).await.expect("write");
            let _ = keep_open.await;
        });
        let resp = get(&url, &[]).await.expect("response");
        let bound = std::time::Duration::from_millis(100);
        tokio::time::timeout(guard, resp.body.finish(bound))
            .await
            .expect("finish gave up at its bound while the server kept the connection");
        let _ = gave_up.send(());
        server.await.expect("server");
    }

    #[tokio::test]
    async fn a_burst_grows_the_buffer_and_a_quiet_stream_gives_it_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url: Url = format!("http://{}/", listener.local_addr().expect("addr"))
            .parse()
            .expect("url");
        let burst = vec![b'x'; 48 * 1024];
        let (written, burst_written) = tokio::sync::oneshot::channel::<()>();
        let (read, burst_read) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn({
            let burst = burst.clone();
            async move {
                let (mut sock, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                let mut out = format!(
                    "{SSE}transfer-encoding: chunked\r\n\r\n{:x}\r\n",
                    burst.len()
                )
                .into_bytes();
                out.extend_from_slice(&burst);
                out.extend_from_slice(b"\r\n");
                sock.write_all(&out).await.expect("burst");
                written.send(()).expect("signal");
                // Once the client has read the burst: one small event, and the end.
                burst_read.await.expect("client read the burst");
                sock.write_all(b"3\r\nend\r\n0\r\n\r\n")
                    .await
                    .expect("tail");
            }
        });
        let mut resp = get(&url, &[]).await.expect("response");
        // The whole burst is queued in the socket before the first read of the body.
        burst_written.await.expect("server wrote the burst");
        let (mut body, mut largest, mut read) = (Vec::new(), 0, Some(read));
        while let Some(piece) = resp.body.next().await {
            body.extend_from_slice(piece.expect("piece"));
            largest = largest.max(resp.body.buf.len());
            if body.len() == burst.len()
                && let Some(read) = read.take()
            {
                read.send(()).expect("signal");
            }
        }
        let mut sent = burst;
        sent.extend_from_slice(b"end");
        assert_eq!(body, sent);
        assert!(
            largest > READ_BUFFER,
            "the burst grew the buffer: {largest}"
        );
        assert!(largest <= MAX_READ_BUFFER, "{largest}");
        assert_eq!(
            resp.body.buf.len(),
            READ_BUFFER,
            "given back after the burst"
        );
        server.await.expect("server");
    }

    #[test]
    fn only_plain_http_is_read_here() {
        let url = |u: &str| u.parse::<Url>().expect("url");
        let proxied = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
        assert_eq!(usable(&url("http://127.0.0.1:1/x")), !proxied);
        assert!(!usable(&url("https://example.com/x")));
        // reqwest sends URL credentials as Basic auth; the lean reader leaves them to it.
        assert!(!usable(&url("http://user:pw@127.0.0.1:1/x")));
    }

    #[tokio::test]
    async fn a_large_head_does_not_keep_a_large_buffer() {
        let big = format!(
            "{SSE}x-pad: {}\r\ncontent-length: 2\r\n\r\nok",
            "a".repeat(40_000)
        );
        let (url, server) = serve(big.into_bytes(), 4096).await;
        let mut resp = get(&url, &[]).await.expect("head");
        assert_eq!(resp.body.buf.len(), READ_BUFFER);
        let body = resp.body.next().await.expect("body").expect("ok").to_vec();
        assert_eq!(body, b"ok");
        server.abort();
    }

    /// A chunked encoding of `body` in chunks of the given sizes (cycled), with upper- or
    /// lower-case hex, optional extensions, bare-LF or CRLF line ends and trailers.
    fn chunked(body: &[u8], sizes: &[usize], upper: bool, ext: bool, lf: bool) -> Vec<u8> {
        let eol: &[u8] = if lf { b"\n" } else { b"\r\n" };
        let mut out = Vec::new();
        let mut rest = body;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            let hex = if upper {
                format!("{:X}", chunk.len())
            } else {
                format!("{:x}", chunk.len())
            };
            out.extend_from_slice(hex.as_bytes());
            if ext {
                out.extend_from_slice(b";name=\"v\"");
            }
            out.extend_from_slice(eol);
            out.extend_from_slice(chunk);
            out.extend_from_slice(eol);
            rest = tail;
        }
        out.extend_from_slice(b"0");
        out.extend_from_slice(eol);
        if ext {
            out.extend_from_slice(b"x-trailer: 1");
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(eol);
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the chunk sizes, extensions, trailers and the way the bytes arrive, the
        /// decoded body is the body sent; with bare-LF line ends it is an error.
        #[test]
        fn any_chunking_decodes_to_the_body(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40_000),
            sizes in proptest::collection::vec(1usize..9_000, 1..6),
            split in 1usize..20_000,
            upper in proptest::prelude::any::<bool>(),
            ext in proptest::prelude::any::<bool>(),
            lf in proptest::prelude::any::<bool>(),
        ) {
            let mut response = format!("{SSE}transfer-encoding: chunked\r\n\r\n").into_bytes();
            response.extend_from_slice(&chunked(&body, &sizes, upper, ext, lf));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let (_, got) = rt.block_on(read_all(&response, split));
            if lf {
                // Bare LF line ends are refused, as hyper refuses them.
                let err = got.expect_err("bare LF");
                proptest::prop_assert!(err.contains("CRLF"), "{}", err);
            } else {
                proptest::prop_assert_eq!(got, Ok(body));
            }
        }
    }
}
