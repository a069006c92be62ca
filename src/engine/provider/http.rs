//! Shared plumbing for the HTTP providers: the `reqwest` client, retries, error mapping, and the
//! readers that turn a response body into SSE events or NDJSON lines.
//!
//! Every provider needs the same things around its wire format: a client with sane timeouts,
//! retrying 429/5xx/connection failures *before* any answer byte is read, turning a failed
//! response into a [`ProviderError`] that tells the user what to fix, and a loop that feeds
//! body pieces to a per-provider [`Decoder`]. Keeping them here means the provider modules only
//! hold JSON shapes. Nothing here ever logs or formats an API key.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Once;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::engine::content::ContentPart;
use crate::engine::provider::{EventStream, ProviderError, ProviderEvent};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("ratchet/", env!("CARGO_PKG_VERSION"));
/// Connecting may take this long; answers themselves may stream for minutes, so there is no
/// overall timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A stream that stays silent this long is considered dead (reasoning models can think quietly
/// for a few minutes before the first token). `provider_timeout_secs` in `config.toml` or
/// `RATCHET_PROVIDER_TIMEOUT_SECS` changes it.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Error bodies are read up to this size; the useful part is always at the start.
const MAX_ERROR_BODY: usize = 16 * 1024;
/// Error details quoted in messages are cut to this many characters.
const MAX_DETAIL_CHARS: usize = 300;

/// The names a provider's errors mention: which provider, which variable holds its key and
/// which one holds its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    pub provider: &'static str,
    /// `None` for providers that take no key (Ollama).
    pub key_env: Option<&'static str>,
    pub url_env: &'static str,
}

/// How often and how long to retry a request that failed before its answer started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Wait before the first retry; doubles each time.
    pub first_delay: Duration,
    /// Upper bound of the doubling.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the error is returned at once.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// 3 retries, 250 ms, 500 ms, 1 s (capped at 2 s); `Retry-After` honoured up to 10 s.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_retries: 3,
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(2),
        max_retry_after: Duration::from_secs(10),
    };

    /// The wait before retry number `retry_idx` (0-based).
    pub fn backoff(&self, retry_idx: u32) -> Duration {
        let factor = 1u32.checked_shl(retry_idx).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Installs rustls' `ring` crypto provider for the process (reqwest is built with
/// `rustls-no-provider` and panics without one). Safe to call any number of times.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means another provider is already installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Builds the HTTP client all providers use, with the default stall timeout.
pub fn new_client() -> Result<reqwest::Client, ProviderError> {
    client_with_stall_timeout(DEFAULT_STALL_TIMEOUT)
}

/// Builds the HTTP client all providers use: a response (its headers, or the next piece of
/// its body) that keeps the connection silent for `stall_timeout` fails the model call.
pub fn client_with_stall_timeout(stall_timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(super::tls::client_config()?)
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(stall_timeout)
        .build()
        .map_err(|e| ProviderError::Config(format!("cannot set up the HTTP client: {}", error_chain(&e))))
}

/// A provider's HTTP client, built on its first request rather than when the provider is
/// chosen: building one needs the shared TLS settings (`provider::tls`), which may still be
/// loading when `session/new` chooses the provider, and which the first prompt, coming
/// after the user typed it, finds ready.
pub struct LazyClient {
    stall_timeout: Duration,
    client: std::sync::OnceLock<Result<reqwest::Client, String>>,
}

impl LazyClient {
    pub fn new(stall_timeout: Duration) -> LazyClient {
        LazyClient { stall_timeout, client: std::sync::OnceLock::new() }
    }

    /// The client, built now if this is the first request.
    pub fn get(&self) -> Result<&reqwest::Client, ProviderError> {
        self.client
            .get_or_init(|| client_with_stall_timeout(self.stall_timeout).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ProviderError::Config(e.clone()))
    }
}

/// Sends the request `build` makes, retrying 429, 5xx and connection failures with exponential
/// backoff. Returns the response once its status is a success; the body is left unread.
///
/// `build` is called once per attempt. `url` is only used in error messages.
pub async fn send_with_retry(
    labels: Labels,
    url: &str,
    policy: RetryPolicy,
    build: impl Fn() -> RequestBuilder,
) -> Result<Response, ProviderError> {
    let mut retry_idx = 0;
    loop {
        let (error, retry_after) = match build().send().await {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response) => {
                let status = response.status();
                let retry_after = retry_after(response.headers());
                let error = status_error(labels, status, read_error_detail(response).await);
                if !is_retryable_status(status) {
                    return Err(error);
                }
                if retry_after.is_some_and(|wait| wait > policy.max_retry_after) {
                    return Err(error);
                }
                (error, retry_after)
            }
            Err(e) if e.is_builder() => return Err(invalid_url_error(labels, url, &e)),
            Err(e) => (connect_error(labels, url, &e), None),
        };
        if retry_idx >= policy.max_retries {
            return Err(error);
        }
        let delay = retry_after.unwrap_or_else(|| policy.backoff(retry_idx));
        tracing::debug!(provider = labels.provider, retry = retry_idx + 1, ?delay, %error, "retrying model request");
        tokio::time::sleep(delay).await;
        retry_idx += 1;
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Maps a failed HTTP status to the error the user sees.
pub fn status_error(labels: Labels, status: StatusCode, detail: String) -> ProviderError {
    let provider = labels.provider;
    match (status.as_u16(), labels.key_env) {
        (401 | 403, Some(env_var)) => ProviderError::Auth { provider, status: status.as_u16(), env_var, detail },
        (401 | 403, None) => ProviderError::Http {
            provider,
            status: status.as_u16(),
            detail: format!(
                "{detail} ({provider} needs no key: check that {} points at the right server)",
                labels.url_env
            ),
        },
        (429, _) => ProviderError::RateLimited { provider, detail },
        (404, _) => ProviderError::Http {
            provider,
            status: 404,
            detail: format!("{detail} (check the model name and {})", labels.url_env),
        },
        (code, _) => ProviderError::Http { provider, status: code, detail },
    }
}

fn connect_error(labels: Labels, url: &str, error: &reqwest::Error) -> ProviderError {
    ProviderError::Connect {
        provider: labels.provider,
        url: url.to_string(),
        env_var: labels.url_env,
        detail: error_chain(error),
    }
}

fn invalid_url_error(labels: Labels, url: &str, error: &reqwest::Error) -> ProviderError {
    ProviderError::Config(format!(
        "cannot build the {} request to {url}: {}; fix {}",
        labels.provider,
        error_chain(error),
        labels.url_env
    ))
}

/// A header value holding a secret (`value` is the key, or `Bearer <key>`), marked sensitive so
/// it never shows in debug output. Fails when the key cannot be sent in a header.
pub fn secret_header(labels: Labels, value: &str) -> Result<HeaderValue, ProviderError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        ProviderError::Config(format!(
            "the {} API key contains characters that cannot be sent (a newline or stray quote?); fix {}",
            labels.provider,
            labels.key_env.unwrap_or("the key")
        ))
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// An error and its causes, joined with `: ` (reqwest hides the useful part in the sources).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Reads the start of an error response and extracts its message.
async fn read_error_detail(mut response: Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    error_detail(&String::from_utf8_lossy(&body))
}

/// The human part of an error body: `error.message` (OpenAI, Anthropic), `error` as a string
/// (Ollama), `message`, else the start of the raw body.
pub fn error_detail(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message").or_else(|| v.get("error")).or_else(|| v.get("message")).and_then(|m| m.as_str())
    });
    let text = message.unwrap_or(body).trim();
    if text.is_empty() {
        return "(empty response body)".to_string();
    }
    truncate_chars(text, MAX_DETAIL_CHARS)
}

fn truncate_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The error for a body that broke off or could not be read.
fn broken_stream(labels: Labels, detail: String) -> ProviderError {
    ProviderError::Protocol {
        provider: labels.provider,
        detail: format!("the answer stream broke off: {detail}; try again"),
    }
}

/// The error for a body that could not be read: a stall past the timeout says which
/// setting bounds it, anything else is a broken stream.
/// A body stream's transport error: HTTP's own (a timeout says which setting to raise), or any
/// other stream's (tests and fuzz targets) as a broken stream.
fn transport_error(labels: Labels, error: &(dyn std::error::Error + 'static)) -> ProviderError {
    match error.downcast_ref::<reqwest::Error>() {
        Some(http) => body_error(labels, http),
        None => broken_stream(labels, error_chain(error)),
    }
}

fn body_error(labels: Labels, error: &reqwest::Error) -> ProviderError {
    if error.is_timeout() {
        return ProviderError::Protocol {
            provider: labels.provider,
            detail: "the answer stream went silent for longer than the provider timeout; try again, or raise \
                     provider_timeout_secs in config.toml (or RATCHET_PROVIDER_TIMEOUT_SECS) if the model \
                     thinks that long"
                .to_string(),
        };
    }
    broken_stream(labels, error_chain(error))
}

/// A body item stream, boxed so decoders can name it.
pub type BodyStream<T> = Pin<Box<dyn Stream<Item = Result<T, ProviderError>> + Send>>;

/// The Server-Sent Events of a response body (`response.bytes_stream()`, or any stream of
/// byte chunks: tests and the fuzz targets feed bytes without a server).
pub fn sse_events<S, B, E>(body: S, labels: Labels) -> BodyStream<eventsource_stream::Event>
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let events = body.eventsource();
    Box::pin(events.map(move |item| {
        item.map_err(|e| match &e {
            eventsource_stream::EventStreamError::Transport(transport) => transport_error(labels, transport),
            _ => broken_stream(labels, error_chain(&e)),
        })
    }))
}

/// Longest line of an NDJSON answer: far above any real event, and what a server that never
/// sends a newline may make ratchet hold.
const MAX_STREAM_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The non-empty lines of a newline-delimited response body (NDJSON); any stream of byte
/// chunks, as for [`sse_events`].
pub fn ndjson_lines<S, E>(body: S, labels: Labels) -> BodyStream<String>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    ndjson_lines_within(body, labels, MAX_STREAM_LINE_BYTES)
}

/// [`ndjson_lines`], with a line longer than `max_line` failing the stream.
fn ndjson_lines_within<S, E>(body: S, labels: Labels, max_line: usize) -> BodyStream<String>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let bytes = Box::pin(body.map(move |chunk| chunk.map_err(|e| transport_error(labels, &e))));
    let state = LineState { bytes, buffer: Vec::new(), ended: false, max_line };
    Box::pin(futures::stream::unfold(state, move |mut state| async move {
        let item = state.next_line(labels).await?;
        Some((item, state))
    }))
}

struct LineState {
    /// Body chunks; an error is already the provider error it stands for.
    bytes: Pin<Box<dyn Stream<Item = Result<bytes::Bytes, ProviderError>> + Send>>,
    buffer: Vec<u8>,
    ended: bool,
    max_line: usize,
}

impl LineState {
    async fn next_line(&mut self, labels: Labels) -> Option<Result<String, ProviderError>> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                match line_text(line, labels) {
                    Ok(Some(text)) => return Some(Ok(text)),
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            if self.ended {
                let rest = std::mem::take(&mut self.buffer);
                return line_text(rest, labels).transpose();
            }
            match self.bytes.next().await {
                Some(Ok(chunk)) => {
                    self.buffer.extend_from_slice(&chunk);
                    // The buffer held no newline before this chunk (lines are drained above).
                    if self.buffer.len() > self.max_line && !chunk.contains(&b'\n') {
                        self.ended = true;
                        self.buffer = Vec::new();
                        return Some(Err(ProviderError::Protocol {
                            provider: labels.provider,
                            detail: format!(
                                "a line of the answer is longer than {} bytes; check that {} points at a real server",
                                self.max_line, labels.url_env
                            ),
                        }));
                    }
                }
                Some(Err(e)) => {
                    self.ended = true;
                    self.buffer.clear();
                    return Some(Err(e));
                }
                None => self.ended = true,
            }
        }
    }
}

fn line_text(line: Vec<u8>, labels: Labels) -> Result<Option<String>, ProviderError> {
    let text = String::from_utf8(line).map_err(|_| ProviderError::Protocol {
        provider: labels.provider,
        detail: "a line of the answer is not valid UTF-8".to_string(),
    })?;
    let trimmed = text.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_string()))
}

/// Turns the items of one response body (SSE events, NDJSON lines) into provider events.
pub trait Decoder: Send + 'static {
    /// One item of the body.
    type Input: Send + 'static;
    /// Handles one item; may return any number of events.
    fn feed(&mut self, input: Self::Input) -> Result<Vec<ProviderEvent>, ProviderError>;
    /// The body ended. Returns the closing events, or an error if the answer is incomplete.
    fn end(&mut self) -> Result<Vec<ProviderEvent>, ProviderError>;
}

/// Runs `decoder` over `source`. The stream stops after the first error or after the event
/// `Finish` (the rest of the body is dropped, which closes the connection).
pub fn decode_stream<D: Decoder>(source: BodyStream<D::Input>, decoder: D) -> EventStream {
    let state = DecodeState { source, decoder, pending: VecDeque::new(), finished: false };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        let item = state.next_event().await?;
        Some((item, state))
    }))
}

struct DecodeState<D: Decoder> {
    source: BodyStream<D::Input>,
    decoder: D,
    pending: VecDeque<ProviderEvent>,
    finished: bool,
}

impl<D: Decoder> DecodeState<D> {
    async fn next_event(&mut self) -> Option<Result<ProviderEvent, ProviderError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            let step = match self.source.next().await {
                Some(Ok(input)) => self.decoder.feed(input),
                Some(Err(e)) => Err(e),
                None => {
                    self.finished = true;
                    self.decoder.end()
                }
            };
            match step {
                Ok(events) => self.queue(events),
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }

    fn queue(&mut self, events: Vec<ProviderEvent>) {
        for event in events {
            let is_finish = matches!(event, ProviderEvent::Finish(_));
            self.pending.push_back(event);
            if is_finish {
                self.finished = true;
                return;
            }
        }
    }
}

/// The text a non-image, non-thought part stands for when sent to a model: text as is, an
/// attached resource wrapped in `<resource>` tags, a resource link as a short mention.
pub fn part_as_text(part: &ContentPart) -> Option<String> {
    match part {
        ContentPart::Text { text } => Some(text.clone()),
        ContentPart::Resource { uri, text, .. } => Some(format!("<resource uri=\"{uri}\">\n{text}\n</resource>")),
        ContentPart::ResourceLink { uri, name } => Some(format!("<resource_link name=\"{name}\" uri=\"{uri}\" />")),
        ContentPart::Thought { .. } | ContentPart::Image { .. } => None,
    }
}

/// The error for an `error` object that arrives inside an otherwise successful stream.
pub fn in_stream_error(labels: Labels, status: Option<u16>, message: &str) -> ProviderError {
    let detail = format!("error inside the answer stream: {}", truncate_chars(message, MAX_DETAIL_CHARS));
    match status {
        Some(429) => ProviderError::RateLimited { provider: labels.provider, detail },
        status => ProviderError::Http { provider: labels.provider, status: status.unwrap_or(200), detail },
    }
}

/// The error for a body item that is not the JSON the provider documents.
pub fn malformed(labels: Labels, what: &str, error: &serde_json::Error) -> ProviderError {
    ProviderError::Protocol { provider: labels.provider, detail: format!("{what} is not valid JSON ({error})") }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests;
