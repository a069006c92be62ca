//! Newline-delimited framing: one JSON-RPC message per line.
//!
//! Hand-rolled instead of `tokio_util::codec::LinesCodec` because a codec error ends a
//! `FramedRead` stream, and a bad line (too long, not UTF-8) must get an error reply while
//! the connection keeps going.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest line accepted. Generous, because prompts can embed whole files and images.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// One line read from the peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its terminator.
    Text(String),
    /// The line was longer than the limit; it was skipped up to its newline.
    TooLong,
    /// The line was not UTF-8.
    NotUtf8,
}

/// Reads the next line, or `None` at end of input.
///
/// # Cancel safety
/// Not cancel safe: a partly read line is lost if the future is dropped. The reader loop
/// owns the input and never drops this future early.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Line>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            // EOF: a final line without a newline still counts.
            if buf.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (part, found) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                // Freed, not just emptied: its capacity would keep up to MAX_LINE_BYTES
                // resident for the rest of the connection.
                *buf = Vec::new();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let consumed = found.unwrap_or(chunk.len());
        reader.consume(consumed);
        if found.is_some() {
            break;
        }
    }
    if too_long {
        return Ok(Some(Line::TooLong));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    // Some Windows writers start the stream with a UTF-8 byte order mark. RFC 8259 §8.1 lets
    // a parser ignore it; failing instead would leave the client's `initialize` unanswered.
    if buf.starts_with(BOM) {
        buf.drain(..BOM.len());
    }
    match String::from_utf8(std::mem::take(buf)) {
        Ok(s) => Ok(Some(Line::Text(s))),
        Err(_) => Ok(Some(Line::NotUtf8)),
    }
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

#[cfg(test)]
#[path = "framing_prop_tests.rs"]
mod prop_tests;

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = tokio::io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(l) = read_line(&mut r, &mut buf, max).await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_across_small_buffers() {
        let got = lines(b"{\"a\":1}\n{\"b\":2}\r\nlast", 100).await;
        assert_eq!(
            got,
            vec![Line::Text("{\"a\":1}".into()), Line::Text("{\"b\":2}".into()), Line::Text("last".into())]
        );
    }

    #[tokio::test]
    async fn too_long_line_is_skipped_and_reading_goes_on() {
        let got = lines(b"0123456789abc\nok\n", 8).await;
        assert_eq!(got, vec![Line::TooLong, Line::Text("ok".into())]);
    }

    #[tokio::test]
    async fn a_leading_byte_order_mark_is_dropped() {
        let got = lines(b"\xef\xbb\xbf{\"a\":1}\r\n\xef\xbb\xbf\n", 100).await;
        assert_eq!(got, vec![Line::Text("{\"a\":1}".into()), Line::Text(String::new())]);
    }

    #[tokio::test]
    async fn invalid_utf8_is_reported_not_fatal() {
        let got = lines(b"\xff\xfe\nok\n", 100).await;
        assert_eq!(got, vec![Line::NotUtf8, Line::Text("ok".into())]);
    }
}
