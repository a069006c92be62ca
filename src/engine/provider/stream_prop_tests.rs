//! Property: the providers' stream parsers (SSE, NDJSON) and decoders give the same result
//! however the body's bytes are cut into chunks, for well-formed answers and for noise.

use std::convert::Infallible;

use futures::StreamExt;
use proptest::prelude::*;
use serde_json::json;

use crate::engine::provider::http::{self, Labels};
use crate::fuzz_entry::{Wire, decoded_text, provider_stream};

const LABELS: Labels = Labels { provider: "test", key_env: None, url_env: "TEST_URL" };

/// `body` cut at the given points (taken modulo its length).
fn cut(body: &[u8], mut points: Vec<usize>) -> Vec<Vec<u8>> {
    points.iter_mut().for_each(|p| *p %= body.len() + 1);
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain([body.len()]) {
        pieces.push(body[start..p].to_vec());
        start = p;
    }
    pieces
}

fn chunks(pieces: Vec<Vec<u8>>) -> impl futures::Stream<Item = Result<bytes::Bytes, Infallible>> + Send + 'static {
    futures::stream::iter(pieces.into_iter().map(|p| Ok(bytes::Bytes::from(p))))
}

/// The raw SSE events (or the error) of a body in pieces.
fn sse(pieces: Vec<Vec<u8>>) -> Vec<String> {
    let events = http::sse_events(chunks(pieces), LABELS);
    futures::executor::block_on(events.map(|e| format!("{e:?}")).collect())
}

/// The NDJSON lines (or the error) of a body in pieces.
fn ndjson(pieces: Vec<Vec<u8>>) -> Vec<String> {
    let lines = http::ndjson_lines(chunks(pieces), LABELS);
    futures::executor::block_on(lines.map(|l| format!("{l:?}")).collect())
}

/// Text with the characters wire formats treat specially (and a two-byte UTF-8 character).
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!['a', ' ', '\n', '"', '\\', ':', 'é', '{']), 0..12)
        .prop_map(|c| c.into_iter().collect())
}

/// Bytes rich in SSE and NDJSON syntax, valid or not.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(vec![
        &b"data: "[..],
        b"data:{\"x\":1}",
        b"event: e",
        b": comment",
        b"id: 7",
        b"retry: 10",
        b"\n",
        b"\r\n",
        b"\r",
        b"x",
        b"\xc3\xa9",
        b"\xc3",
        b"\xff",
        b"{}",
    ]);
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

fn sse_body(events: &[serde_json::Value], names: Option<&[&str]>) -> Vec<u8> {
    let mut body = String::new();
    for (i, e) in events.iter().enumerate() {
        if let Some(names) = names {
            body.push_str(&format!("event: {}\n", names[i]));
        }
        body.push_str(&format!("data: {e}\r\n\n"));
    }
    body.into_bytes()
}

fn openai_body(texts: &[String], tool: Option<(String, String)>) -> Vec<u8> {
    let mut events: Vec<_> =
        texts.iter().map(|t| json!({"choices": [{"index": 0, "delta": {"content": t}}]})).collect();
    if let Some((name, args)) = tool {
        let half = args.char_indices().nth(args.chars().count() / 2).map_or(args.len(), |(i, _)| i);
        let (a, b) = args.split_at(half);
        events.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": name, "arguments": a}}]}}]}));
        events.push(
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": b}}]}}]}),
        );
    }
    events.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}));
    let mut body = sse_body(&events, None);
    body.extend_from_slice(b"data: [DONE]\n\n");
    body
}

fn anthropic_body(texts: &[String]) -> Vec<u8> {
    let mut events =
        vec![json!({"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}})];
    let mut names = vec!["message_start"];
    events.push(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
    names.push("content_block_start");
    for t in texts {
        events.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}));
        names.push("content_block_delta");
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    names.push("content_block_stop");
    events.push(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}));
    names.push("message_delta");
    events.push(json!({"type": "message_stop"}));
    names.push("message_stop");
    sse_body(&events, Some(&names))
}

fn ollama_body(texts: &[String], tool: Option<(String, String)>) -> Vec<u8> {
    let mut lines: Vec<_> =
        texts.iter().map(|t| json!({"message": {"role": "assistant", "content": t}, "done": false})).collect();
    if let Some((name, arg)) = tool {
        lines.push(json!({"message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": {"a": arg}}}]}, "done": false}));
    }
    lines.push(
        json!({"message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "eval_count": 2}),
    );
    lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes()
}

fn decoded(wire: Wire, pieces: Vec<Vec<u8>>) -> (Vec<String>, Option<String>) {
    decoded_text(provider_stream(wire, pieces))
}

proptest! {
    #[test]
    fn raw_sse_and_ndjson_do_not_depend_on_the_cuts(body in noise(), points in prop::collection::vec(any::<usize>(), 0..10)) {
        prop_assert_eq!(sse(cut(&body, points.clone())), sse(vec![body.clone()]));
        prop_assert_eq!(ndjson(cut(&body, points)), ndjson(vec![body]));
    }

    #[test]
    fn decoders_do_not_depend_on_the_cuts(
        body in noise(),
        points in prop::collection::vec(any::<usize>(), 0..10),
        wire in prop::sample::select(vec![Wire::OpenAi, Wire::Anthropic, Wire::Ollama]),
    ) {
        prop_assert_eq!(decoded(wire, cut(&body, points)), decoded(wire, vec![body]));
    }

    #[test]
    fn answers_decode_the_same_however_cut(
        texts in prop::collection::vec(text(), 0..6),
        tool in prop::option::of((text(), text())),
        points in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let joined: String = texts.concat();
        let answers = [
            (Wire::OpenAi, openai_body(&texts, tool.clone())),
            (Wire::Anthropic, anthropic_body(&texts)),
            (Wire::Ollama, ollama_body(&texts, tool.clone())),
        ];
        for (wire, body) in answers {
            let whole = provider_stream(wire, vec![body.clone()]);
            prop_assert!(whole.1.is_none(), "{:?}: {:?}", wire, whole.1);
            let text: String = whole.0.iter().filter_map(|e| match e {
                super::ProviderEvent::TextDelta(t) => Some(t.as_str()),
                _ => None,
            }).collect();
            prop_assert_eq!(&text, &joined, "{:?}", wire);
            prop_assert_eq!(decoded(wire, cut(&body, points.clone())), decoded_text(whole));
        }
    }
}
