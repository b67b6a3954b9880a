//! A minimal HTTP/1.1 client (one request per connection, `Connection: close`) for tests that
//! check exactly what goes over the wire: status, headers and body bytes as sent.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A server's reply.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// The status line and header lines as received.
    pub head: String,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked when sent chunked.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The first header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses a whole reply as read until the server closed the connection.
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        let split = find(raw, b"\r\n\r\n").ok_or("no end of the reply head")?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or("no status line")?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut reply = Self {
            status,
            head,
            headers,
            body: raw[split + 4..].to_vec(),
        };
        if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            reply.body = dechunk(&reply.body)?;
        }
        Ok(reply)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("no chunk size line")?;
        let size_field = String::from_utf8_lossy(&data[..line_end]);
        // a size may carry extensions after ';'
        let size_hex = size_field.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| format!("bad chunk size {size_hex:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = data
            .get(line_end + 2..line_end + 2 + size)
            .ok_or("a chunk shorter than its size")?;
        out.extend_from_slice(chunk);
        data = data.get(line_end + 2 + size + 2..).unwrap_or_default();
    }
}

fn request_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// One request on this thread; `Err` says what failed (connect, write, read, parse).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpReply, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let head = request_head(addr, method, path, headers, body);
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("write {method} {path}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read the reply to {method} {path}: {e}"))?;
    HttpReply::parse(&raw)
}

/// [`http_request`] from async code: the same request on a blocking thread.
pub async fn http_request_async(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpReply, String> {
    let (method, path, body) = (method.to_owned(), path.to_owned(), body.to_vec());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        http_request(addr, &method, &path, &headers, &body)
    })
    .await
    .map_err(|e| format!("the request task failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_chunked_reply() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let reply = HttpReply::parse(raw).expect("parses");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-a"), Some("b"));
        assert_eq!(reply.body, b"abcde");
    }

    #[test]
    fn a_reply_without_a_head_is_an_error() {
        assert!(HttpReply::parse(b"garbage").is_err());
    }
}
