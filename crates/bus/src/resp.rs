//! The lean RESP2 client every Redis bus command goes through, over TCP, TLS or a Unix
//! socket.
//!
//! Each call borrows a connection of its own from a small pool, writes its commands in one
//! go, frames the replies in the read buffer without building them and lets the caller
//! read them in place ([`Replies`]), so a read of many jobs copies out only their payloads. Compared with the multiplexed
//! connection this skips a channel hop to a driver task per call and the generic reply
//! parser, which together cost more client CPU per job than Redis spends on the XADD; on a
//! small machine the client and Redis share the cores, so that CPU is throughput.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Value;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::redis_connect::{RedisUrl, CONNECT_TIMEOUT};
use crate::BusError;

/// Idle connections kept for reuse: enough for a few hundred calls in flight at once, so
/// that a burst does not close connections only to open them again for the next one.
const MAX_IDLE: usize = 256;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    addr: Addr,
    username: Option<String>,
    password: Option<String>,
    db: i64,
}

#[derive(Clone)]
enum Addr {
    Tcp(String, u16),
    Tls {
        host: String,
        port: u16,
        server_name: ServerName<'static>,
        connector: tokio_rustls::TlsConnector,
    },
    Unix(PathBuf),
}

impl std::fmt::Debug for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(host, port) => write!(f, "tcp {host}:{port}"),
            Addr::Tls { host, port, .. } => write!(f, "tls {host}:{port}"),
            Addr::Unix(path) => write!(f, "unix {}", path.display()),
        }
    }
}

impl Endpoint {
    /// The endpoint `url` names.
    pub(crate) fn of(url: &RedisUrl) -> Result<Self, BusError> {
        let info = url.client().get_connection_info();
        let unsupported = || BusError::InvalidUrl {
            url: url.display().to_owned(),
            reason: "unsupported address".to_owned(),
        };
        let addr = match (info.addr(), url.tls()) {
            (redis::ConnectionAddr::Tcp(host, port), _) => Addr::Tcp(host.clone(), *port),
            (redis::ConnectionAddr::TcpTls { host, port, .. }, Some(config)) => Addr::Tls {
                host: host.clone(),
                port: *port,
                server_name: ServerName::try_from(host.clone()).map_err(|e| {
                    BusError::InvalidUrl {
                        url: url.display().to_owned(),
                        reason: format!("host is not a tls server name: {e}"),
                    }
                })?,
                connector: tokio_rustls::TlsConnector::from(Arc::clone(config)),
            },
            (redis::ConnectionAddr::Unix(path), _) => Addr::Unix(path.clone()),
            _ => return Err(unsupported()),
        };
        let settings = info.redis_settings();
        Ok(Self {
            addr,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            db: settings.db(),
        })
    }
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
    Unix(tokio::net::UnixStream),
}

/// One connection with its read buffer.
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(endpoint: &Endpoint) -> Result<Self, BusError> {
        let opened = Self::connect(endpoint).await;
        crate::metrics::connected(opened.is_ok());
        opened
    }

    async fn connect(endpoint: &Endpoint) -> Result<Self, BusError> {
        let unavailable = |e: std::io::Error| BusError::Unavailable(format!("connect: {e}"));
        let connect = async {
            Ok::<_, std::io::Error>(match &endpoint.addr {
                Addr::Tcp(host, port) => {
                    let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                    stream.set_nodelay(true)?;
                    Stream::Tcp(stream)
                }
                Addr::Tls {
                    host,
                    port,
                    server_name,
                    connector,
                } => {
                    let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                    stream.set_nodelay(true)?;
                    let stream = connector.connect(server_name.clone(), stream).await?;
                    Stream::Tls(Box::new(stream))
                }
                Addr::Unix(path) => Stream::Unix(tokio::net::UnixStream::connect(path).await?),
            })
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| BusError::Timeout(CONNECT_TIMEOUT))?
            .map_err(unavailable)?;
        let mut conn = Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        };
        let mut out = Vec::new();
        let mut replies = 0;
        if let Some(password) = &endpoint.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &endpoint.username {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            encode(&mut out, &args);
            replies += 1;
        }
        if endpoint.db != 0 {
            encode(&mut out, &[b"SELECT", endpoint.db.to_string().as_bytes()]);
            replies += 1;
        }
        if replies > 0 {
            tokio::time::timeout(CONNECT_TIMEOUT, conn.exchange(&out, replies))
                .await
                .map_err(|_| BusError::Timeout(CONNECT_TIMEOUT))?
                .map_err(unavailable)?;
            let mut got = Replies::new(&conn.buf);
            for _ in 0..replies {
                got.value()?;
            }
        }
        Ok(conn)
    }

    /// Writes `out` and reads until `replies` whole replies sit in the read buffer; the
    /// caller parses them from there, so no reply is built twice.
    async fn exchange(&mut self, out: &[u8], replies: usize) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Tcp(s) => s.write_all(out).await?,
            Stream::Tls(s) => {
                s.write_all(out).await?;
                // TLS buffers what it encrypts; push it out.
                s.flush().await?;
            }
            Stream::Unix(s) => s.write_all(out).await?,
        }
        self.buf.clear();
        let mut done = 0;
        let mut pos = 0;
        while done < replies {
            if skip(&self.buf, &mut pos)? {
                done += 1;
                continue;
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(self.buf.capacity().max(16 * 1024));
            }
            let n = match &mut self.stream {
                Stream::Tcp(s) => s.read_buf(&mut self.buf).await?,
                Stream::Tls(s) => s.read_buf(&mut self.buf).await?,
                Stream::Unix(s) => s.read_buf(&mut self.buf).await?,
            };
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed by server",
                ));
            }
        }
        if pos != self.buf.len() {
            // Bytes nobody asked for: the connection is out of step, do not reuse it.
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "unexpected extra reply",
            ));
        }
        Ok(())
    }
}

/// A pool of [`Conn`]s to one endpoint.
pub(crate) struct Pool {
    endpoint: Endpoint,
    idle: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        crate::metrics::register();
        Self {
            endpoint,
            idle: Mutex::default(),
        }
    }

    fn take(&self) -> Option<Conn> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }

    fn give_back(&self, conn: Conn) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Sends the encoded commands in `out`, waits for their `replies` replies and hands them
    /// to `parse`, which reads them in place. A pooled connection found dead (the server
    /// restarted while it sat idle) is replaced and the commands sent once more, which
    /// at-least-once delivery allows for; a call running past `limit` fails and its
    /// connection is dropped, as the server may still answer on it.
    pub(crate) async fn call_with<T>(
        &self,
        out: &[u8],
        replies: usize,
        limit: Duration,
        parse: impl FnOnce(&mut Replies<'_>) -> Result<T, BusError>,
    ) -> Result<T, BusError> {
        let (mut conn, mut reused) = match self.take() {
            Some(conn) => (conn, true),
            None => (Conn::open(&self.endpoint).await?, false),
        };
        loop {
            match tokio::time::timeout(limit, conn.exchange(out, replies)).await {
                Err(_) => {
                    crate::metrics::call_failed();
                    return Err(BusError::Timeout(limit));
                }
                Ok(Ok(())) => break,
                Ok(Err(error)) if reused => {
                    tracing::debug!(%error, "pooled redis connection dead, reconnecting");
                    conn = Conn::open(&self.endpoint).await?;
                    reused = false;
                }
                Ok(Err(error)) => {
                    crate::metrics::call_failed();
                    return Err(BusError::Unavailable(error.to_string()));
                }
            }
        }
        // The replies were framed whole, so the connection stays in step whatever `parse`
        // makes of them.
        let parsed = parse(&mut Replies::new(&conn.buf));
        self.give_back(conn);
        parsed
    }
}

impl Pool {
    /// Sends `cmd` and returns its reply as a redis value (or the error the server gave):
    /// for the commands off the hot path, which need no parser of their own.
    pub(crate) async fn query(&self, cmd: &redis::Cmd, limit: Duration) -> Result<Value, BusError> {
        let out = cmd.get_packed_command();
        self.call_with(&out, 1, limit, |replies| replies.value())
            .await
    }
}

/// Whole replies in a read buffer, read one after another without copying.
pub(crate) struct Replies<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Replies<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    #[cfg(test)]
    pub(crate) fn for_tests(buf: &'a [u8]) -> Self {
        Self::new(buf)
    }

    fn truncated() -> BusError {
        BusError::Protocol("truncated reply".to_owned())
    }

    /// The type byte and line of the next reply; an error reply as its error.
    fn header(&mut self) -> Result<(u8, &'a [u8]), BusError> {
        let kind = *self.buf.get(self.pos).ok_or_else(Self::truncated)?;
        let (text, next) = line(self.buf, self.pos + 1).ok_or_else(Self::truncated)?;
        self.pos = next;
        if kind == b'-' {
            return Err(server_error(String::from_utf8_lossy(text).into_owned()));
        }
        Ok((kind, text))
    }

    /// An array's length; `None` for a nil array.
    pub(crate) fn array(&mut self) -> Result<Option<usize>, BusError> {
        match self.header()? {
            (b'*', text) => {
                let len = num(text)?;
                Ok(usize::try_from(len).ok())
            }
            (kind, _) => Err(unexpected(kind, "an array")),
        }
    }

    /// A bulk string in place; `None` for nil.
    pub(crate) fn bulk(&mut self) -> Result<Option<&'a [u8]>, BusError> {
        match self.header()? {
            (b'$', text) => {
                let Ok(len) = usize::try_from(num(text)?) else {
                    return Ok(None);
                };
                let start = self.pos;
                let end = start.checked_add(len).ok_or_else(Self::truncated)?;
                if self.buf.len() < end + 2 {
                    return Err(Self::truncated());
                }
                self.pos = end + 2;
                Ok(Some(&self.buf[start..end]))
            }
            (b'+', text) => Ok(Some(text)),
            (b'*', text) if num(text)? < 0 => Ok(None),
            (kind, _) => Err(unexpected(kind, "a string")),
        }
    }

    /// An integer reply.
    pub(crate) fn int(&mut self) -> Result<i64, BusError> {
        match self.header()? {
            (b':', text) => Ok(num(text)?),
            (kind, _) => Err(unexpected(kind, "an integer")),
        }
    }

    /// The next reply as a redis value, or the error the server answered; the reply is
    /// consumed either way.
    pub(crate) fn value(&mut self) -> Result<Value, BusError> {
        match parse(self.buf, &mut self.pos).map_err(|e| BusError::Protocol(e.to_string()))? {
            Some(reply) => reply.into_result(),
            None => Err(Self::truncated()),
        }
    }
}

/// A decimal in a reply line.
fn num(text: &[u8]) -> Result<i64, BusError> {
    int(text).map_err(|e| BusError::Protocol(e.to_string()))
}

fn unexpected(kind: u8, wanted: &str) -> BusError {
    BusError::Protocol(format!(
        "expected {wanted}, got a reply of type {:?}",
        char::from(kind)
    ))
}

/// A RESP2 reply.
#[derive(Debug, PartialEq)]
enum Reply {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Simple(Vec<u8>),
    Error(String),
    Array(Vec<Reply>),
}

impl Reply {
    /// The reply as a redis value; an error reply, or an array holding one (a failed
    /// command inside `EXEC`), as the error. Errors that go away on their own (the server is
    /// loading its data, a failover) are retryable.
    fn into_result(self) -> Result<Value, BusError> {
        Ok(match self {
            Reply::Nil => Value::Nil,
            Reply::Int(n) => Value::Int(n),
            Reply::Bulk(b) => Value::BulkString(b),
            Reply::Simple(s) => Value::SimpleString(String::from_utf8_lossy(&s).into_owned()),
            Reply::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(Reply::into_result)
                    .collect::<Result<_, _>>()?,
            ),
            Reply::Error(message) => return Err(server_error(message)),
        })
    }
}

/// An error reply as an error; those that go away on their own (the server is loading its
/// data, a failover) are retryable.
fn server_error(message: String) -> BusError {
    let transient = [
        "LOADING",
        "TRYAGAIN",
        "MASTERDOWN",
        "READONLY",
        "CLUSTERDOWN",
    ];
    if transient.iter().any(|t| message.starts_with(t)) {
        BusError::Unavailable(message)
    } else {
        BusError::Backend(message)
    }
}

/// Appends one command to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    begin(out, args.len());
    for arg in args {
        push_arg(out, arg);
    }
}

/// Starts a command of `n` arguments; push them with [`push_arg`].
pub(crate) fn begin(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

pub(crate) fn push_arg(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'$');
    push_decimal(out, arg.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// An argument written as a decimal number.
pub(crate) fn push_u64_arg(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let len = decimal(&mut digits, n);
    push_arg(out, &digits[20 - len..]);
}

/// `<ms>-<seq>` as one argument, without an intermediate string.
pub(crate) fn push_id_arg(out: &mut Vec<u8>, id: crate::MessageId) {
    let mut text = [0u8; 41];
    let mut digits = [0u8; 20];
    let ms = decimal(&mut digits, id.ms);
    text[..ms].copy_from_slice(&digits[20 - ms..]);
    text[ms] = b'-';
    let seq = decimal(&mut digits, id.seq);
    text[ms + 1..ms + 1 + seq].copy_from_slice(&digits[20 - seq..]);
    push_arg(out, &text[..ms + 1 + seq]);
}

fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let len = decimal(&mut digits, n);
    out.extend_from_slice(&digits[20 - len..]);
}

/// Writes `n` right-aligned into `digits`; returns how many digits it took.
fn decimal(digits: &mut [u8; 20], mut n: u64) -> usize {
    let mut i = 20;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return 20 - i;
        }
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("bad reply: {what}"),
    )
}

/// The line starting at `pos` without its CRLF, and the position after it; `None` if
/// incomplete.
fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let end = buf.get(pos..)?.iter().position(|&b| b == b'\n')? + pos;
    let text = buf[pos..end].strip_suffix(b"\r")?;
    Some((text, end + 1))
}

/// A decimal in a reply line; by hand, since every length in every reply goes through here.
fn int(text: &[u8]) -> std::io::Result<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        // Anything unusual (a sign, long enough to overflow): let the library decide.
        return std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("not a number"));
    }
    let n = digits
        .iter()
        .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    Ok(if negative { -n } else { n })
}

/// Moves `*pos` past one whole reply and returns true; false (and `*pos` unchanged) if
/// the buffer does not hold all of it yet. Nothing is allocated.
fn skip(buf: &[u8], pos: &mut usize) -> std::io::Result<bool> {
    let start = *pos;
    let mut pending = 1usize;
    while pending > 0 {
        let Some((&kind, (text, next))) = buf.get(*pos).zip(line(buf, *pos + 1)) else {
            *pos = start;
            return Ok(false);
        };
        *pos = next;
        pending -= 1;
        match kind {
            b'+' | b'-' | b':' => {}
            b'$' => {
                if let Ok(len) = usize::try_from(int(text)?) {
                    let end = next.saturating_add(len).saturating_add(2);
                    if buf.len() < end {
                        *pos = start;
                        return Ok(false);
                    }
                    *pos = end;
                }
            }
            b'*' => {
                if let Ok(len) = usize::try_from(int(text)?) {
                    pending = pending.saturating_add(len);
                }
            }
            _ => return Err(invalid("unknown type byte")),
        }
    }
    Ok(true)
}

/// Parses one reply at `*pos`, advancing it; `None` (and `*pos` unchanged) if the buffer
/// does not hold all of it yet.
fn parse(buf: &[u8], pos: &mut usize) -> std::io::Result<Option<Reply>> {
    let start = *pos;
    let reply = parse_at(buf, pos)?;
    if reply.is_none() {
        *pos = start;
    }
    Ok(reply)
}

fn parse_at(buf: &[u8], pos: &mut usize) -> std::io::Result<Option<Reply>> {
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, *pos + 1) else {
        return Ok(None);
    };
    *pos = next;
    Ok(Some(match kind {
        b'+' => Reply::Simple(text.to_vec()),
        b'-' => Reply::Error(String::from_utf8_lossy(text).into_owned()),
        b':' => Reply::Int(int(text)?),
        b'$' => {
            let len = int(text)?;
            if len < 0 {
                return Ok(Some(Reply::Nil));
            }
            let len = usize::try_from(len).map_err(|_| invalid("bulk length"))?;
            let end = next + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(invalid("bulk string not followed by crlf"));
            }
            *pos = end + 2;
            Reply::Bulk(buf[next..end].to_vec())
        }
        b'*' => {
            let len = int(text)?;
            if len < 0 {
                return Ok(Some(Reply::Nil));
            }
            let len = usize::try_from(len).map_err(|_| invalid("array length"))?;
            // Never trust a length for an allocation bigger than the bytes we hold.
            let mut items = Vec::with_capacity(len.min(buf.len()));
            for _ in 0..len {
                match parse_at(buf, pos)? {
                    Some(item) => items.push(item),
                    None => return Ok(None),
                }
            }
            Reply::Array(items)
        }
        _ => return Err(invalid("unknown type byte")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Option<Reply> {
        let mut pos = 0;
        let reply = parse(bytes, &mut pos).expect("valid resp");
        if reply.is_some() {
            assert_eq!(pos, bytes.len());
        } else {
            assert_eq!(pos, 0);
        }
        reply
    }

    #[test]
    fn replies_parse_and_partial_input_waits() {
        let whole = b"*3\r\n$3\r\n1-2\r\n*-1\r\n*2\r\n:-7\r\n+OK\r\n".as_slice();
        let expected = Reply::Array(vec![
            Reply::Bulk(b"1-2".to_vec()),
            Reply::Nil,
            Reply::Array(vec![Reply::Int(-7), Reply::Simple(b"OK".to_vec())]),
        ]);
        assert_eq!(parse_all(whole), Some(expected));
        for cut in 0..whole.len() {
            assert_eq!(parse_all(&whole[..cut]), None, "cut at {cut}");
        }
        assert_eq!(
            parse_all(b"-NOGROUP no such group\r\n"),
            Some(Reply::Error("NOGROUP no such group".to_owned()))
        );
        assert_eq!(parse_all(b"$-1\r\n"), Some(Reply::Nil));
        let mut pos = 0;
        assert!(parse(b"?x\r\n", &mut pos).is_err());
        assert!(parse(b"$1\r\nab\r\n", &mut pos).is_err());
    }

    #[test]
    fn numbers_parse_like_the_library() {
        for text in [
            "0",
            "-1",
            "7",
            "123456789012345678",
            "-9223372036854775808",
            "+5",
        ] {
            assert_eq!(
                int(text.as_bytes()).ok(),
                text.parse::<i64>().ok(),
                "{text}"
            );
        }
        for bad in ["", "-", "1a", "9223372036854775808", " 1"] {
            assert!(int(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn skip_frames_whole_replies_only() {
        let whole = b"*2\r\n*3\r\n$3\r\nabc\r\n$-1\r\n:5\r\n-ERR x\r\n+OK\r\n".as_slice();
        let mut pos = 0;
        assert!(skip(whole, &mut pos).expect("valid"));
        let first = pos;
        assert!(skip(whole, &mut pos).expect("valid"));
        assert_eq!(pos, whole.len());
        for cut in 0..first {
            let mut pos = 0;
            assert!(
                !skip(&whole[..cut], &mut pos).expect("valid prefix"),
                "cut at {cut}"
            );
            assert_eq!(pos, 0);
        }
        assert!(skip(b"?\r\n", &mut 0).is_err());
    }

    #[test]
    fn replies_read_in_place() {
        let buf =
            b"*2\r\n$2\r\nab\r\n$-1\r\n:-3\r\n+QUEUED\r\n-NOGROUP no\r\n*-1\r\n:1\r\n".as_slice();
        let mut got = Replies::new(buf);
        assert_eq!(got.array().expect("array"), Some(2));
        assert_eq!(got.bulk().expect("bulk"), Some(b"ab".as_slice()));
        assert_eq!(got.bulk().expect("nil"), None);
        assert_eq!(got.int().expect("int"), -3);
        assert_eq!(got.bulk().expect("simple"), Some(b"QUEUED".as_slice()));
        assert!(matches!(got.int(), Err(BusError::Backend(m)) if m == "NOGROUP no"));
        assert_eq!(got.array().expect("nil array"), None);
        // The wrong type is an error, not a misread.
        assert!(matches!(got.bulk(), Err(BusError::Protocol(_))));
        assert!(matches!(got.int(), Err(BusError::Protocol(_))));
    }

    #[test]
    fn commands_encode_as_resp_arrays() {
        let mut out = Vec::new();
        encode(&mut out, &[b"XACK", b"s"]);
        begin(&mut out, 2);
        push_u64_arg(&mut out, 0);
        push_id_arg(&mut out, crate::MessageId::new(1_700_000_000_123, 45));
        assert_eq!(
            out,
            b"*2\r\n$4\r\nXACK\r\n$1\r\ns\r\n*2\r\n$1\r\n0\r\n$16\r\n1700000000123-45\r\n"
        );
        let mut out = Vec::new();
        push_u64_arg(&mut out, u64::MAX);
        assert_eq!(out, b"$20\r\n18446744073709551615\r\n");
    }

    #[test]
    fn error_replies_become_errors() {
        let error = Reply::Error("NOGROUP nope".to_owned()).into_result();
        assert!(matches!(error, Err(BusError::Backend(m)) if m == "NOGROUP nope"));
        let error = Reply::Error("LOADING wait".to_owned()).into_result();
        assert!(matches!(error, Err(BusError::Unavailable(_))));
        let nested = Reply::Array(vec![Reply::Int(1), Reply::Error("WRONGTYPE x".to_owned())]);
        assert!(matches!(nested.into_result(), Err(BusError::Backend(_))));
        let value = Reply::Bulk(b"x".to_vec())
            .into_result()
            .expect("not an error");
        assert_eq!(value, Value::BulkString(b"x".to_vec()));
    }
}
