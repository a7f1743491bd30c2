//! Just enough HTTP/1.1 for a page, a scrape and a JSON file: one request per connection, a `GET` (or
//! `HEAD`) with no body, a response with a length and `Connection: close`. Every read and write has a
//! deadline and a request head has a size limit, so a slow, stuck or hostile client costs one bounded
//! connection for a bounded time and nothing else.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A request's head (its line and headers) at most: larger ones get 431.
pub(super) const MAX_HEAD: usize = 16 * 1024;

/// The time a client has to send its request head, all of it: a client that sends a byte a second
/// (slowloris) is cut off as surely as one that sends nothing.
pub(super) const READ_DEADLINE: Duration = Duration::from_secs(5);

/// The time a response may take to write, for a client that stops reading.
pub(super) const WRITE_DEADLINE: Duration = Duration::from_secs(5);

/// A request the server understood well enough to answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Request {
    pub(super) head_only: bool,
    /// The target, split at its `?`.
    pub(super) path: String,
    pub(super) query: String,
}

/// Why a request gets no page: each becomes its own 4xx.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// 400: not an HTTP/1.x request line.
    Malformed(&'static str),
    /// 405: a method other than `GET` or `HEAD` (the server changes nothing).
    Method(String),
    /// 408: the head did not arrive in time.
    Timeout,
    /// 431: the head is larger than [`MAX_HEAD`].
    TooLarge,
    /// 413: a request with a body, which nothing here reads.
    Body,
}

impl Refused {
    pub(super) fn response(&self) -> Response {
        let (status, text) = match self {
            Self::Malformed(why) => (400, format!("bad request: {why}\n")),
            Self::Method(method) => (405, format!("method {method} is not served here: only GET and HEAD\n")),
            Self::Timeout => (408, "the request did not arrive in time\n".to_owned()),
            Self::TooLarge => (431, format!("the request's head is larger than {MAX_HEAD} bytes\n")),
            Self::Body => (413, "requests here have no body\n".to_owned()),
        };
        let mut response = Response::text(status, text);
        if matches!(self, Self::Method(_)) {
            response.headers.push(("Allow", "GET, HEAD".to_owned()));
        }
        response
    }
}

/// Reads one request head from `stream` within [`READ_DEADLINE`].
pub(super) fn read_request(stream: &mut TcpStream) -> Result<Request, Refused> {
    let deadline = Instant::now() + READ_DEADLINE;
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0_u8; 2048];
    // Where the blank line may start that the last read could have completed: each read is scanned once.
    let mut scanned = 0;
    loop {
        if let Some(end) = find_head_end(&head[scanned..]) {
            head.truncate(scanned + end);
            break;
        }
        scanned = head.len().saturating_sub(3);
        if head.len() > MAX_HEAD {
            return Err(Refused::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Refused::Timeout);
        }
        // A timeout of zero would mean none; `left` is not zero here.
        if stream.set_read_timeout(Some(left)).is_err() {
            return Err(Refused::Timeout);
        }
        match stream.read(&mut buffer) {
            Ok(0) => return Err(Refused::Malformed("the connection closed before the request's end")),
            Ok(read) => head.extend_from_slice(&buffer[..read]),
            Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(Refused::Timeout);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Refused::Malformed("the connection failed")),
        }
    }
    if head.len() > MAX_HEAD {
        return Err(Refused::TooLarge);
    }
    parse(&head)
}

/// Where the blank line ending a head starts (`\r\n\r\n`, or `\n\n` from lenient clients).
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|window| window == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|window| window == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse(head: &[u8]) -> Result<Request, Refused> {
    let head = std::str::from_utf8(head).map_err(|_| Refused::Malformed("the request's head is not UTF-8"))?;
    let mut lines = head.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Malformed("the request line is not `METHOD TARGET HTTP/1.x`"));
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(Refused::Malformed("only HTTP/1.0 and HTTP/1.1 are served"));
    }
    if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(Refused::Malformed("the method is not a word in capitals"));
    }
    if !target.starts_with('/') {
        return Err(Refused::Malformed("the target is not a path starting with `/`"));
    }
    for header in lines.filter(|line| !line.is_empty()) {
        let Some((name, value)) = header.split_once(':') else {
            return Err(Refused::Malformed("a header line without a `:`"));
        };
        let value = value.trim();
        let body = (name.eq_ignore_ascii_case("content-length") && value != "0")
            || name.eq_ignore_ascii_case("transfer-encoding");
        if body {
            return Err(Refused::Body);
        }
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        other => return Err(Refused::Method(other.to_owned())),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request { head_only, path: path.to_owned(), query: query.to_owned() })
}

/// A response: a status, its headers beyond the length and the connection's, and a body.
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Vec<u8>,
}

impl Response {
    pub(super) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", content_type.to_owned()), ("Cache-Control", "no-store".to_owned())],
            body: body.into(),
        }
    }

    pub(super) fn text(status: u16, text: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", text)
    }

    /// Writes the response within [`WRITE_DEADLINE`], all of it: a client that reads a little now and then
    /// is cut off as surely as one that reads nothing. `head_only` leaves the body out (`HEAD`).
    pub(super) fn write(&self, stream: &mut TcpStream, head_only: bool) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len()));
        let deadline = Instant::now() + WRITE_DEADLINE;
        write_by(stream, head.as_bytes(), deadline)?;
        if !head_only {
            write_by(stream, &self.body, deadline)?;
        }
        stream.flush()
    }
}

/// Writes all of `bytes` before `deadline`, each write given the time left.
fn write_by(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the client did not read the answer in time"));
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the connection closed")),
            Ok(written) => bytes = &bytes[written..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Closes a connection after its answer without resetting it: a socket closed with bytes unread (the rest
/// of a request refused as too large, a body) is reset, and the client may see the reset before the
/// answer. So the write side is shut first and what the client still sends is read and dropped, for at
/// most 200 ms and 1 MiB.
pub(super) fn close(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + Duration::from_millis(200);
    let mut buffer = [0_u8; 4096];
    let mut drained = 0;
    while drained < 1 << 20 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => drained += read,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_get_is_parsed_into_its_path_and_query() {
        let request = parse(b"GET /summary.json?x=1 HTTP/1.1\r\nHost: a\r\n").expect("a request");
        assert_eq!(request, Request { head_only: false, path: "/summary.json".into(), query: "x=1".into() });
        assert!(parse(b"HEAD / HTTP/1.0").expect("a request").head_only);
    }

    #[test]
    fn each_kind_of_bad_request_is_refused_as_itself() {
        assert_eq!(parse(b"POST / HTTP/1.1"), Err(Refused::Method("POST".into())));
        assert!(matches!(parse(b"GET / HTTP/2"), Err(Refused::Malformed(_))));
        assert!(matches!(parse(b"GET /"), Err(Refused::Malformed(_))));
        assert!(matches!(parse(b"GET  / HTTP/1.1"), Err(Refused::Malformed(_))));
        assert!(matches!(parse(b"get / HTTP/1.1"), Err(Refused::Malformed(_))));
        assert!(matches!(parse(b"GET http://x/ HTTP/1.1"), Err(Refused::Malformed(_))));
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nno colon"), Err(Refused::Malformed(_))));
        assert!(matches!(parse(b"GET / HTTP/1.1\r\n\xff: x"), Err(Refused::Malformed(_))));
        assert_eq!(parse(b"GET / HTTP/1.1\r\nContent-Length: 5"), Err(Refused::Body));
        assert_eq!(parse(b"GET / HTTP/1.1\r\ntransfer-encoding: chunked"), Err(Refused::Body));
        assert!(parse(b"GET / HTTP/1.1\r\nContent-Length: 0").is_ok());
    }

    #[test]
    fn a_head_ends_at_its_blank_line() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
