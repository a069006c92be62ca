//! The three provider wire formats (OpenAI Chat Completions SSE, Anthropic Messages SSE,
//! Ollama NDJSON) end to end: streamed text and thoughts, usage, titles, stop reasons,
//! authentication errors and retries.

use serde_json::{Value, json};

use crate::support::{ANTHROPIC_KEY, AcpClient, Finish, MODEL, MockLlm, MockReply, OPENAI_KEY, TestEnv};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Anthropic,
    Ollama,
}

pub fn env_for(wire: Wire, mock: &MockLlm) -> TestEnv {
    match wire {
        Wire::OpenAi => TestEnv::openai(mock),
        Wire::Anthropic => TestEnv::anthropic(mock),
        Wire::Ollama => TestEnv::ollama(mock),
    }
}

/// Asserts that `title` was derived from `prompt`: non-empty, and the prompt starts with
/// it (a trailing ellipsis from shortening is allowed).
pub fn assert_title_derived_from(title: &str, prompt: &str) {
    let core = title.trim().trim_end_matches('…').trim_end_matches("...").trim();
    assert!(!core.is_empty(), "empty title");
    assert!(prompt.starts_with(core), "title {title:?} is not derived from the first prompt {prompt:?}");
}

async fn open_session(env: &TestEnv) -> (AcpClient, String) {
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    (client, session)
}

/// One full turn against the mock for `wire`: text and thoughts stream through, usage and
/// the title arrive, the request has the provider's auth and shape, and a second turn does
/// not send the title again.
async fn answer_streams_text_thoughts_usage_and_title(wire: Wire) {
    let mock = MockLlm::start().await;
    let env = env_for(wire, &mock);
    env.write_config("context_window = 32000\n");
    mock.enqueue(MockReply::text(["Hello", ", ", "world", "!"]).thinking(["Let me ", "think."]).usage(42, 7));
    let (mut client, session) = open_session(&env).await;

    let prompt = "Say hello to the world";
    let turn = client.prompt_text(&session, prompt).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Hello, world!");
    assert_eq!(turn.thoughts(), "Let me think.");

    for u in &turn.updates {
        if crate::support::update_kind(u) != "available_commands_update" {
            assert_eq!(u["sessionId"], session.as_str(), "update for another session: {u}");
        }
    }
    // The reasoning came first on the wire, so it is reported first.
    let first_thought =
        turn.updates.iter().position(|u| crate::support::update_kind(u) == "agent_thought_chunk").unwrap();
    let first_text = turn.updates.iter().position(|u| crate::support::update_kind(u) == "agent_message_chunk").unwrap();
    assert!(first_thought < first_text, "thought chunks must precede the answer text");

    let usage = turn.of_kind("usage_update");
    let last = usage.last().unwrap_or_else(|| panic!("no usage_update in the turn: {:#?}", turn.updates));
    assert_eq!(last["update"]["size"], 32000, "size is the configured context window: {last}");
    let used = last["update"]["used"].as_u64().expect("used");
    assert!(
        (42..=49).contains(&used),
        "used should come from the provider's usage (42 input + 7 output tokens), got {used}"
    );

    let titles: Vec<&Value> =
        turn.of_kind("session_info_update").into_iter().filter(|u| u["update"]["title"].is_string()).collect();
    assert_eq!(titles.len(), 1, "exactly one title on the first prompt: {titles:#?}");
    assert_title_derived_from(titles[0]["update"]["title"].as_str().unwrap(), prompt);

    let requests = mock.model_requests();
    assert_eq!(requests.len(), 1, "one model call for a plain answer");
    let req = &requests[0];
    assert_eq!(req.model(), Some(MODEL));
    let conversation = req.conversation();
    assert_eq!(conversation.len(), 1, "{conversation:?}");
    assert_eq!(conversation[0].0, "user");
    assert!(conversation[0].1.contains(prompt), "{conversation:?}");
    match wire {
        Wire::OpenAi => {
            assert_eq!(req.path, "/v1/chat/completions");
            assert_eq!(req.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
            assert_eq!(req.body["stream"], true, "{}", req.raw_body);
        }
        Wire::Anthropic => {
            assert_eq!(req.path, "/v1/messages");
            assert_eq!(req.header("x-api-key"), Some(ANTHROPIC_KEY));
            assert!(req.header("anthropic-version").is_some(), "anthropic-version header missing");
            assert_eq!(req.body["stream"], true, "{}", req.raw_body);
            assert!(req.body["max_tokens"].is_u64(), "max_tokens is required: {}", req.raw_body);
        }
        Wire::Ollama => {
            assert_eq!(req.path, "/api/chat");
            assert_ne!(req.body["stream"], false, "{}", req.raw_body);
        }
    }

    // The title is set once, on the first prompt only.
    mock.enqueue(MockReply::text(["Second answer."]));
    let turn2 = client.prompt_text(&session, "And now something else").await;
    assert_eq!(turn2.stop_reason(), "end_turn");
    assert_eq!(turn2.text(), "Second answer.");
    let titles2: Vec<&Value> =
        turn2.of_kind("session_info_update").into_iter().filter(|u| u["update"].get("title").is_some()).collect();
    assert!(titles2.is_empty(), "the title must not change on later prompts: {titles2:#?}");
}

#[tokio::test]
async fn openai_answer_streams_text_thoughts_usage_and_title() {
    answer_streams_text_thoughts_usage_and_title(Wire::OpenAi).await;
}

#[tokio::test]
async fn anthropic_answer_streams_text_thoughts_usage_and_title() {
    answer_streams_text_thoughts_usage_and_title(Wire::Anthropic).await;
}

#[tokio::test]
async fn ollama_answer_streams_text_thoughts_usage_and_title() {
    answer_streams_text_thoughts_usage_and_title(Wire::Ollama).await;
}

async fn finish_maps_to_stop_reason(wire: Wire, finish: Finish, expected: &str) {
    let mock = MockLlm::start().await;
    let env = env_for(wire, &mock);
    mock.enqueue(MockReply::text(["This answer was cut"]).finish(finish));
    let (mut client, session) = open_session(&env).await;
    let turn = client.prompt_text(&session, "Write a long essay").await;
    assert_eq!(turn.stop_reason(), expected, "updates: {:#?}", turn.updates);
    assert_eq!(turn.text(), "This answer was cut", "the partial text is still shown");
}

#[tokio::test]
async fn openai_length_finish_ends_the_turn_with_max_tokens() {
    finish_maps_to_stop_reason(Wire::OpenAi, Finish::Length, "max_tokens").await;
}

#[tokio::test]
async fn anthropic_max_tokens_stop_ends_the_turn_with_max_tokens() {
    finish_maps_to_stop_reason(Wire::Anthropic, Finish::Length, "max_tokens").await;
}

#[tokio::test]
async fn ollama_length_done_reason_ends_the_turn_with_max_tokens() {
    finish_maps_to_stop_reason(Wire::Ollama, Finish::Length, "max_tokens").await;
}

#[tokio::test]
async fn anthropic_refusal_stop_ends_the_turn_with_refusal() {
    finish_maps_to_stop_reason(Wire::Anthropic, Finish::Refusal, "refusal").await;
}

#[tokio::test]
async fn openai_content_filter_finish_ends_the_turn_with_refusal() {
    finish_maps_to_stop_reason(Wire::OpenAi, Finish::Refusal, "refusal").await;
}

async fn unauthorized_fails_the_prompt_naming_the_key_variable(wire: Wire, var: &str) {
    let mock = MockLlm::start().await;
    let env = env_for(wire, &mock);
    mock.enqueue(MockReply::error(401));
    let (mut client, session) = open_session(&env).await;
    let turn = client.prompt_text(&session, "Hello?").await;
    let err = turn.error();
    assert!(err.full_text().contains(var), "the error should tell the user to set {var}: {err}");
    assert_eq!(mock.model_requests().len(), 1, "a 401 must not be retried");

    // The process keeps serving: the same session answers the next prompt.
    mock.enqueue(MockReply::text(["Back in business."]));
    let turn = client.prompt_text(&session, "Try again").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Back in business.");
}

#[tokio::test]
async fn openai_401_fails_the_prompt_naming_openai_api_key_and_the_process_keeps_serving() {
    unauthorized_fails_the_prompt_naming_the_key_variable(Wire::OpenAi, "OPENAI_API_KEY").await;
}

#[tokio::test]
async fn anthropic_401_fails_the_prompt_naming_anthropic_api_key_and_the_process_keeps_serving() {
    unauthorized_fails_the_prompt_naming_the_key_variable(Wire::Anthropic, "ANTHROPIC_API_KEY").await;
}

async fn server_error_is_retried_transparently(wire: Wire) {
    let mock = MockLlm::start().await;
    let env = env_for(wire, &mock);
    mock.enqueue(MockReply::error(500));
    mock.enqueue(MockReply::text(["Worked ", "the second time."]));
    let (mut client, session) = open_session(&env).await;
    let turn = client.prompt_text(&session, "Hello?").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Worked the second time.");
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 2, "one failed attempt and one retry");
    assert_eq!(requests[0].body, requests[1].body, "the retry sends the same request");
}

#[tokio::test]
async fn openai_500_then_200_is_retried_transparently() {
    server_error_is_retried_transparently(Wire::OpenAi).await;
}

#[tokio::test]
async fn anthropic_500_then_200_is_retried_transparently() {
    server_error_is_retried_transparently(Wire::Anthropic).await;
}

#[tokio::test]
async fn ollama_500_then_200_is_retried_transparently() {
    server_error_is_retried_transparently(Wire::Ollama).await;
}

async fn config_max_tokens_reaches_the_request(wire: Wire) -> Value {
    let mock = MockLlm::start().await;
    let env = env_for(wire, &mock);
    env.write_config("max_tokens = 321\n");
    let (mut client, session) = open_session(&env).await;
    let turn = client.prompt_text(&session, "Short answer please").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    mock.last_model_request().body
}

#[tokio::test]
async fn config_max_tokens_is_sent_to_openai() {
    let body = config_max_tokens_reaches_the_request(Wire::OpenAi).await;
    let sent = body.get("max_completion_tokens").or_else(|| body.get("max_tokens")).cloned();
    assert_eq!(sent, Some(json!(321)), "{body}");
}

#[tokio::test]
async fn config_max_tokens_is_sent_to_anthropic() {
    let body = config_max_tokens_reaches_the_request(Wire::Anthropic).await;
    assert_eq!(body["max_tokens"], 321, "{body}");
}

#[tokio::test]
async fn config_max_tokens_is_sent_to_ollama_as_num_predict() {
    let body = config_max_tokens_reaches_the_request(Wire::Ollama).await;
    assert_eq!(body["options"]["num_predict"], 321, "{body}");
}

#[tokio::test]
async fn anthropic_429_then_200_is_retried_transparently() {
    let mock = MockLlm::start().await;
    let env = TestEnv::anthropic(&mock);
    mock.enqueue(MockReply::error(429));
    mock.enqueue(MockReply::text(["After the rate limit."]));
    let (mut client, session) = open_session(&env).await;
    let turn = client.prompt_text(&session, "Hello?").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "After the rate limit.");
    assert_eq!(mock.model_requests().len(), 2);
}

#[tokio::test]
async fn unreachable_provider_fails_the_prompt_naming_the_base_url_variable() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    env.set("OPENAI_BASE_URL", format!("http://127.0.0.1:{port}/v1"));
    let (mut client, session) = open_session(&env).await;
    let turn = client.prompt_text(&session, "Anyone there?").await;
    let err = turn.error();
    assert!(err.full_text().contains("OPENAI_BASE_URL"), "{err}");
    // Still serving.
    let again = client.new_session(&env.cwd()).await;
    assert!(!again.is_empty());
}

#[tokio::test]
async fn answer_text_with_newlines_and_unicode_round_trips_exactly() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let chunks = [
        "Line one\n",
        "\tindented \"quoted\" \\ back\\slash\n",
        "emoji 🦀 and CJK 漢字, ",
        "separators \u{2028}\u{2029} and NUL-free control \u{1b}[0m\r\n",
        "end",
    ];
    mock.enqueue(MockReply::text(chunks));
    let (mut client, session) = open_session(&env).await;
    let prompt = "Multi-line\nprompt with 🦀 and \"quotes\"";
    let turn = client.prompt_text(&session, prompt).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), chunks.concat());
    assert!(mock.last_model_request().conversation()[0].1.contains(prompt));
}

#[tokio::test]
async fn a_large_answer_streams_completely() {
    let mock = MockLlm::start().await;
    let env = TestEnv::ollama(&mock);
    let chunks: Vec<String> = (0..400).map(|i| format!("chunk-{i:04} {}\n", "x".repeat(200))).collect();
    mock.enqueue(MockReply::text(chunks.clone()).delay(std::time::Duration::ZERO));
    let (mut client, session) = open_session(&env).await;
    let turn = client.prompt_text(&session, "Dump it all").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), chunks.concat());
}

#[tokio::test]
async fn stdout_stays_clean_with_trace_logging() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("RUST_LOG", "trace");
    mock.enqueue(MockReply::text(["Clean."]).thinking(["quiet"]));
    let (mut client, session) = open_session(&env).await;
    let turn = client.prompt_text(&session, "Hi").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    // Every stdout line was checked by the client; drain the rest through shutdown.
    client.shutdown().await;
}
