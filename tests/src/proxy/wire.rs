//! Just enough HTTP/1.1 for the proxy: one message read from a stream (its head and
//! a `Content-Length` body), a head rewritten to close the connection, and one
//! request forwarded to the upstream server.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest head the proxy reads; anything longer is not an SDK request.
const MAX_HEAD: usize = 64 * 1024;

/// One HTTP/1.1 message: its head (start line and headers, up to the blank line)
/// and its body.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The start line and the headers, as sent, with the final blank line.
    pub(crate) head: String,
    /// The body (`Content-Length` bytes; none without that header).
    pub(crate) body: Vec<u8>,
}

impl Message {
    /// The start line: `METHOD target HTTP/1.1` or `HTTP/1.1 status reason`.
    pub(crate) fn start_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    /// The value of the first header called `name` (case-insensitive), trimmed.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The message as bytes to send, with `Connection: close` in place of any
    /// connection header: the proxy serves one request per connection.
    pub(crate) fn closing(&self) -> Vec<u8> {
        let mut lines: Vec<&str> = self
            .head
            .trim_end()
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        lines.push("Connection: close");
        let mut out = lines.join("\r\n").into_bytes();
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads one message from `stream`; `None` when the peer closes first or sends
/// something that is not one.
pub(crate) async fn read_message(stream: &mut TcpStream) -> Option<Message> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut message = Message {
        head,
        body: Vec::new(),
    };
    let length = message
        .header("content-length")
        .map_or(Some(0), |v| v.parse::<usize>().ok())?;
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    message.body = buf[head_end..head_end + length].to_vec();
    Some(message)
}

/// Sends `request` to `upstream` (`host:port`) and returns its answer, ready to
/// hand back to the client.
pub(crate) async fn forward(upstream: &str, request: &Message) -> io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&request.closing()).await?;
    let answer = read_message(&mut server)
        .await
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the server sent no whole answer"))?;
    Ok(answer.closing())
}

/// Accepts connections on `listener` until aborted, each handled by `handle` with
/// its own clone of `state` on a task of its own. The tasks live in a set, so
/// aborting this task closes every connection still open.
pub(crate) async fn serve_each<S, F, Fut>(listener: TcpListener, state: S, handle: F)
where
    S: Clone,
    F: Fn(TcpStream, S) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { return };
                connections.spawn(handle(client, state.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// A complete answer with `status` (e.g. `503 Service Unavailable`), the given
/// headers and body, closing the connection.
pub(crate) fn answer(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_whatever_their_case_and_the_head_is_made_to_close() {
        let m = Message {
            head: "PATCH /usageplans/abc HTTP/1.1\r\nHost: x\r\nconnection: keep-alive\r\nContent-Length: 2\r\n\r\n"
                .into(),
            body: b"{}".to_vec(),
        };
        assert_eq!(m.start_line(), "PATCH /usageplans/abc HTTP/1.1");
        assert_eq!(m.header("CONTENT-LENGTH"), Some("2"));
        assert_eq!(m.header("authorization"), None);
        let sent = String::from_utf8(m.closing()).unwrap_or_default();
        assert_eq!(
            sent,
            "PATCH /usageplans/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
    }
}
