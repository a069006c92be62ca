//! The LSP base protocol's framing: each message is `Content-Length: N\r\n` (other headers
//! allowed and ignored), an empty line, then N bytes of JSON.
//!
//! Bounded: a header line longer than [`MAX_HEADER_LINE`] or a body longer than
//! [`MAX_MESSAGE_BYTES`] is an error (the connection is then dropped, which the client
//! treats like a crashed server), so a broken server cannot make us buffer without end.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest body accepted: diagnostics of a big workspace fit many times over.
pub const MAX_MESSAGE_BYTES: usize = 32 << 20;

/// Longest header line accepted; real headers are under 100 bytes.
const MAX_HEADER_LINE: usize = 1024;

/// Reads one message body. `Ok(None)` at a clean end of stream (between messages).
pub async fn read_message<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut length = None;
    let mut first = true;
    loop {
        let mut line = Vec::new();
        let n = (&mut *reader).take(MAX_HEADER_LINE as u64 + 1).read_until(b'\n', &mut line).await?;
        if n == 0 {
            if first {
                return Ok(None);
            }
            return Err(broken("the stream ended inside a message's headers"));
        }
        first = false;
        if !line.ends_with(b"\n") {
            return Err(broken("a header line is too long or the stream ended inside it"));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            break;
        }
        if let Some((name, value)) = text.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            let n: usize =
                value.trim().parse().map_err(|_| broken(&format!("bad Content-Length {:?}", value.trim())))?;
            length = Some(n);
        }
    }
    let length = length.ok_or_else(|| broken("a message has no Content-Length header"))?;
    if length > MAX_MESSAGE_BYTES {
        return Err(broken(&format!("a message of {length} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Writes one message and flushes it.
pub async fn write_message<W: AsyncWrite + Unpin>(writer: &mut W, body: &[u8]) -> io::Result<()> {
    let header = format!("Content-Length: {}\r\n\r\n", body.len());
    writer.write_all(header.as_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await
}

fn broken(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(bytes: &[u8]) -> Vec<io::Result<Option<Vec<u8>>>> {
        let mut reader = tokio::io::BufReader::new(bytes);
        let mut out = Vec::new();
        loop {
            let r = read_message(&mut reader).await;
            let stop = !matches!(r, Ok(Some(_)));
            out.push(r);
            if stop {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn round_trip_of_back_to_back_messages() {
        let mut wire = Vec::new();
        write_message(&mut wire, br#"{"a":1}"#).await.unwrap();
        write_message(&mut wire, "{\"é\":2}".as_bytes()).await.unwrap();
        assert!(wire.starts_with(b"Content-Length: 7\r\n\r\n{\"a\":1}Content-Length: 8\r\n"));
        let got = read_all(&wire).await;
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap().as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(got[1].as_ref().unwrap().as_deref(), Some("{\"é\":2}".as_bytes()));
        assert!(matches!(got[2], Ok(None)), "a clean end between messages");
    }

    #[tokio::test]
    async fn other_headers_and_any_case_are_accepted() {
        let wire = b"content-length:  2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}";
        let got = read_all(wire).await;
        assert_eq!(got[0].as_ref().unwrap().as_deref(), Some(&b"{}"[..]));
        // A bare `\n` line end works too.
        let got = read_all(b"Content-Length: 2\n\n[]").await;
        assert_eq!(got[0].as_ref().unwrap().as_deref(), Some(&b"[]"[..]));
    }

    #[tokio::test]
    async fn broken_frames_are_errors_not_hangs() {
        let cases: [(&[u8], &str); 5] = [
            (b"Content-Type: x\r\n\r\n{}", "no Content-Length"),
            (b"Content-Length: abc\r\n\r\n", "bad Content-Length"),
            (b"Content-Length: 10\r\n\r\n{}", "early eof"),
            (b"Content-Length: 2\r\n", "inside a message's headers"),
            (b"Content-Length: 99999999999\r\n\r\n", "over the"),
        ];
        for (wire, want) in cases {
            let got = read_all(wire).await;
            let err = got.last().unwrap().as_ref().unwrap_err().to_string();
            assert!(err.contains(want), "{:?}: {err}", String::from_utf8_lossy(wire));
        }
        let long = format!("X-Pad: {}\r\n", "a".repeat(MAX_HEADER_LINE + 10));
        let err = read_all(long.as_bytes()).await.pop().unwrap().unwrap_err().to_string();
        assert!(err.contains("too long"), "{err}");
    }
}
