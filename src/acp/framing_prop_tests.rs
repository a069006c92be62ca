//! Property: the line reader gives the same lines however the input is cut into reads and
//! whatever its buffer size, and they are the lines a plain split of the whole input gives.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use proptest::prelude::*;
use tokio::io::{AsyncRead, BufReader, ReadBuf};

use super::{BOM, Line, read_line};

/// An input that arrives in the given pieces, one piece (or what fits of it) per read. Empty
/// pieces are left out: a read of nothing is the end of the input.
struct Pieces(VecDeque<Vec<u8>>);

impl AsyncRead for Pieces {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Some(mut piece) = self.0.pop_front() {
            let n = piece.len().min(buf.remaining());
            buf.put_slice(&piece[..n]);
            if n < piece.len() {
                self.0.push_front(piece.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn read_all(pieces: Vec<Vec<u8>>, capacity: usize, max: usize) -> Vec<Line> {
    let pieces = pieces.into_iter().filter(|p| !p.is_empty()).collect();
    let mut reader = BufReader::with_capacity(capacity, Pieces(pieces));
    let mut buf = Vec::new();
    let mut out = Vec::new();
    futures::executor::block_on(async {
        while let Some(line) = read_line(&mut reader, &mut buf, max).await.unwrap() {
            out.push(line);
        }
    });
    out
}

/// What the reader should give: the input split at each newline (a last line without one
/// counts), a line over `max` bytes as `TooLong`, one `\r` before the newline and a leading
/// byte order mark dropped.
fn expected(input: &[u8], max: usize) -> Vec<Line> {
    let mut segments: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if segments.last().is_some_and(|s| s.is_empty()) {
        segments.pop();
    }
    segments
        .into_iter()
        .map(|s| {
            if s.len() > max {
                return Line::TooLong;
            }
            let s = s.strip_suffix(b"\r").unwrap_or(s);
            let s = s.strip_prefix(BOM).unwrap_or(s);
            String::from_utf8(s.to_vec()).map_or(Line::NotUtf8, Line::Text)
        })
        .collect()
}

/// Bytes rich in what the reader treats specially: newlines, carriage returns, the byte order
/// mark and bytes that are not UTF-8.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"{}\"a:1 ".to_vec()),
        2 => Just(b'\n'),
        1 => Just(b'\r'),
        1 => prop::sample::select(vec![0xef, 0xbb, 0xbf, 0xff, 0xc3, 0xa9]),
    ];
    prop::collection::vec(byte, 0..200)
}

/// `input` cut at the given points.
fn cut(input: &[u8], mut points: Vec<usize>) -> Vec<Vec<u8>> {
    points.iter_mut().for_each(|p| *p %= input.len() + 1);
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain([input.len()]) {
        pieces.push(input[start..p].to_vec());
        start = p;
    }
    pieces
}

proptest! {
    #[test]
    fn lines_do_not_depend_on_how_the_input_is_cut(
        input in input(),
        points in prop::collection::vec(any::<usize>(), 0..12),
        capacity in 1usize..40,
        max in prop_oneof![Just(usize::MAX), 1usize..30],
    ) {
        let got = read_all(cut(&input, points), capacity, max);
        prop_assert_eq!(&got, &read_all(vec![input.clone()], 8192, max));
        prop_assert_eq!(got, expected(&input, max));
    }
}
