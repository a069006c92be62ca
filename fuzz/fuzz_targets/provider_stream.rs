//! The providers' stream parsers (SSE for OpenAI and Anthropic, NDJSON for Ollama) and their
//! decoders: any body, cut into chunks anywhere, never panics, and gives the same events and
//! the same error as the body in one piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratchet::fuzz_entry::{Wire, decoded_text, provider_stream};

fuzz_target!(|data: &[u8]| {
    let Some((&[pick, cut], body)) = data.split_first_chunk::<2>() else { return };
    let wire = [Wire::OpenAi, Wire::Anthropic, Wire::Ollama][usize::from(pick % 3)];
    let whole = decoded_text(provider_stream(wire, vec![body.to_vec()]));
    // Chunks of 1 to 64 bytes (a chunk may split a UTF-8 character or a line ending).
    let size = usize::from(cut % 64) + 1;
    let pieces = body.chunks(size).map(<[u8]>::to_vec).collect();
    let split = decoded_text(provider_stream(wire, pieces));
    assert_eq!(whole, split, "{wire:?}: the events depend on where the body was cut (chunks of {size})");
});
