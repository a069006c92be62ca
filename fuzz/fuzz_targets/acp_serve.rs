//! The whole ACP connection: the reader loop, batches, `$/cancel_request`, responses to
//! requests we never sent, and the dispatch to a handler that decodes params as the bridge
//! does. Whatever the client sends, every line written back is one valid JSON value.
#![no_main]

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::future::BoxFuture;
use libfuzzer_sys::fuzz_target;
use ratchet::acp::{Handler, RequestContext, RpcError, serve};
use serde_json::Value;

/// Answers each request with its decoded params (or the decoding error).
struct Decoder;

impl Handler for Decoder {
    fn handle_request(
        self: Arc<Self>,
        method: &str,
        params: Value,
        _cx: RequestContext,
    ) -> BoxFuture<'static, Result<Value, RpcError>> {
        let answer = ratchet::fuzz_entry::acp_params(method, params.clone()).map(|()| params);
        futures::future::ready(answer).boxed()
    }

    fn handle_notification(self: Arc<Self>, method: &str, params: Value) {
        let _ = ratchet::fuzz_entry::acp_params(method, params);
    }
}

/// What the agent wrote.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl tokio::io::AsyncWrite for Output {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let output = Output::default();
    let written = output.clone();
    runtime().block_on(serve(data, output, |_| Arc::new(Decoder))).expect("reading a slice cannot fail");
    let written = written.0.lock().unwrap();
    let text = std::str::from_utf8(&written).expect("the agent writes UTF-8");
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("the agent wrote a line that is not JSON ({e}): {line}"));
    }
});
