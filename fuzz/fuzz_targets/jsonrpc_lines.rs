//! The ACP line reader and message classification: any bytes, read through a buffer of any
//! size with any line limit, give lines without newlines, and every line is classified (or
//! refused with an error) without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratchet::acp::envelope::{self, Frame};
use ratchet::acp::framing::{self, Line};
use ratchet::acp::message::{classify, classify_raw};

fuzz_target!(|data: &[u8]| {
    let Some((&[capacity, limit], input)) = data.split_first_chunk::<2>() else { return };
    let capacity = usize::from(capacity).max(1);
    // A small limit exercises the too-long path; 0 stands for the real one.
    let max = if limit == 0 { framing::MAX_LINE_BYTES } else { usize::from(limit) };
    let mut reader = tokio::io::BufReader::with_capacity(capacity, input);
    let mut buf = Vec::new();
    let mut lines = 0;
    futures::executor::block_on(async {
        while let Some(line) = framing::read_line(&mut reader, &mut buf, max).await.expect("reading a slice cannot fail") {
            lines += 1;
            assert!(lines <= input.len() + 1, "more lines than bytes");
            let Line::Text(text) = line else { continue };
            assert!(!text.contains('\n') && text.len() <= max, "a line holds a newline or is over the limit");
            match envelope::split(&text) {
                Ok(Frame::Single(message)) => drop(classify(message)),
                Ok(Frame::Batch(items)) => items.into_iter().for_each(|item| drop(classify_raw(item))),
                Err(e) => assert!(e.code == -32700 || e.code == -32600, "{e:?}"),
            }
        }
    });
});
