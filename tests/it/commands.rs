//! Slash commands: the `available_commands_update` sent after a session opens, and what
//! each command does over the wire: `/help`, `/mode`, `/model`, `/clear`, `/compact` (and
//! automatic compaction), `/plan`, `/review`; an unknown `/word` is ordinary text.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::mock_llm::RecordedRequest;
use crate::support::{AcpClient, Message, MockLlm, MockReply, PermissionPolicy, TestEnv, tr, transcript, update_kind};

/// The commands, in the order editors list them.
const COMMAND_NAMES: [&str; 11] =
    ["help", "review", "plan", "compact", "clear", "model", "mode", "approve", "reject", "cron", "team"];
/// The commands that take input (and so carry `input.hint`).
const COMMANDS_WITH_INPUT: [&str; 7] = ["plan", "model", "mode", "approve", "reject", "cron", "team"];
const MODES: [&str; 4] = ["ask", "accept-edits", "plan", "yolo"];

fn load_params(session: &str, env: &TestEnv) -> Value {
    json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []})
}

async fn open(env: &TestEnv) -> (AcpClient, String) {
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    (client, session)
}

/// The system prompt of a recorded OpenAI request (its `system` messages joined).
fn system_prompt(req: &RecordedRequest) -> String {
    req.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "system" || m["role"] == "developer")
        .filter_map(|m| match &m["content"] {
            Value::String(s) => Some(s.clone()),
            Value::Array(blocks) => Some(blocks.iter().filter_map(|b| b["text"].as_str()).collect::<String>()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of the last message of a request's conversation, which must be the user's.
fn last_user_text(req: &RecordedRequest) -> String {
    let conversation = req.conversation();
    let (role, text) = conversation.last().unwrap_or_else(|| panic!("the request has no messages: {}", req.body));
    assert_eq!(role, "user", "the request must end with a user message: {conversation:#?}");
    text.clone()
}

/// The `update` object of the only update of `kind` in the turn.
fn the_update<'a>(turn: &'a crate::support::acp_client::Turn, kind: &str) -> &'a Value {
    let found = turn.of_kind(kind);
    assert_eq!(found.len(), 1, "expected exactly one {kind}: {:#?}", turn.updates);
    &found[0]["update"]
}

/// The config option `id` in a `config_option_update` (or any `configOptions` holder).
fn option<'a>(update: &'a Value, id: &str) -> &'a Value {
    update["configOptions"]
        .as_array()
        .unwrap_or_else(|| panic!("no configOptions: {update:#}"))
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("no {id} option: {update:#}"))
}

/// The mode named first in a `/mode` answer (the current one comes first).
fn first_mode_named(text: &str) -> &'static str {
    MODES
        .iter()
        .filter_map(|m| text.find(m).map(|pos| (pos, *m)))
        .min()
        .unwrap_or_else(|| panic!("the answer names no mode: {text:?}"))
        .1
}

/// Sends a one-text prompt and checks it ended normally.
async fn ask(client: &mut AcpClient, session: &str, text: &str) -> crate::support::acp_client::Turn {
    let turn = client.prompt_text(session, text).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{text:?}: {:#?}", turn.updates);
    turn
}

/// Waits for the response to `id`, checks that no command list came before it and that the
/// very next message is the full command list; returns the response and that update.
async fn expect_commands_right_after(client: &mut AcpClient, id: u64, what: &str) -> (Value, Value) {
    let (before, result) = client.wait_response(id).await;
    let result = result.unwrap_or_else(|e| panic!("{what} failed: {e}"));
    let early: Vec<&Value> = before
        .iter()
        .filter_map(Message::as_update)
        .filter(|u| update_kind(u) == "available_commands_update")
        .collect();
    assert!(early.is_empty(), "{what}: the command list came before the response: {early:#?}");
    let next = client.next_message().await;
    let update = next
        .as_update()
        .filter(|u| update_kind(u) == "available_commands_update")
        .unwrap_or_else(|| {
            panic!("{what}: the message right after the response is not available_commands_update: {next:#?}")
        })
        .clone();
    let commands =
        update["update"]["availableCommands"].as_array().unwrap_or_else(|| panic!("no availableCommands: {update:#}"));
    let names: Vec<&str> = commands.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, COMMAND_NAMES, "{what}: names without the slash, in order: {update:#}");
    for c in commands {
        let name = c["name"].as_str().unwrap();
        assert!(
            c["description"].as_str().is_some_and(|d| !d.trim().is_empty()),
            "{what}: /{name} needs a description: {c:#}"
        );
        if COMMANDS_WITH_INPUT.contains(&name) {
            assert!(
                c["input"]["hint"].as_str().is_some_and(|h| !h.trim().is_empty()),
                "{what}: /{name} takes input and needs input.hint: {c:#}"
            );
        } else {
            assert!(c["input"].is_null(), "{what}: /{name} takes no input: {c:#}");
        }
    }
    (result, update)
}

// ---------------------------------------------------------------------------------------------
// The command list

#[tokio::test]
async fn the_command_list_follows_the_response_of_new_load_and_resume() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);

    let mut client = env.spawn_initialized().await;
    let id = client.send_request("session/new", json!({"cwd": env.cwd(), "mcpServers": []})).await;
    let (created, update) = expect_commands_right_after(&mut client, id, "session/new").await;
    let session = created["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(update["sessionId"], session.as_str(), "{update:#}");
    ask(&mut client, &session, "Hello").await;
    client.shutdown().await;

    let mut client = env.spawn_initialized().await;
    let id = client.send_request("session/load", load_params(&session, &env)).await;
    let (_, update) = expect_commands_right_after(&mut client, id, "session/load").await;
    assert_eq!(update["sessionId"], session.as_str(), "{update:#}");
    client.shutdown().await;

    let mut client = env.spawn_initialized().await;
    let id = client.send_request("session/resume", load_params(&session, &env)).await;
    let (_, update) = expect_commands_right_after(&mut client, id, "session/resume").await;
    assert_eq!(update["sessionId"], session.as_str(), "{update:#}");
    client.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// /help

#[tokio::test]
async fn help_lists_every_command_without_asking_the_model() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut client, session) = open(&env).await;

    let turn = ask(&mut client, &session, "/help").await;
    let text = turn.text();
    for name in COMMAND_NAMES {
        assert!(text.contains(&format!("/{name}")), "/help must list /{name}: {text}");
    }
    assert!(mock.model_requests().is_empty(), "/help must not call the model: {:#?}", mock.model_requests());
}

// ---------------------------------------------------------------------------------------------
// /mode

#[tokio::test]
async fn mode_yolo_switches_the_mode_and_later_writes_run_without_asking() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut client, session) = open(&env).await;

    let turn = ask(&mut client, &session, "/mode yolo").await;
    assert_eq!(the_update(&turn, "current_mode_update")["currentModeId"], "yolo");
    let configs = turn.of_kind("config_option_update");
    assert!(!configs.is_empty(), "a config_option_update must follow: {:#?}", turn.updates);
    assert_eq!(option(&configs.last().unwrap()["update"], "mode")["currentValue"], "yolo");
    assert!(turn.text().contains("yolo"), "{:?}", turn.text());
    assert!(mock.model_requests().is_empty(), "/mode must not call the model");

    // `/mode` alone shows it.
    let turn = ask(&mut client, &session, "/mode").await;
    assert_eq!(first_mode_named(&turn.text()), "yolo", "{:?}", turn.text());
    assert!(turn.of_kind("current_mode_update").is_empty(), "{:#?}", turn.updates);

    // A write now runs without a question (any question would be rejected).
    client.permission_policy = PermissionPolicy::RejectOnce;
    mock.enqueue(MockReply::tool("call_w", "write_file", json!({"path": "yolo.txt", "content": "free\n"})));
    mock.enqueue(MockReply::text(["Written."]));
    let turn = ask(&mut client, &session, "Write yolo.txt").await;
    assert!(turn.requests("session/request_permission").is_empty(), "yolo never asks: {:#?}", turn.messages);
    assert_eq!(std::fs::read_to_string(env.workspace().join("yolo.txt")).unwrap(), "free\n");
}

#[tokio::test]
async fn mode_with_an_unknown_name_names_the_valid_modes_and_changes_nothing() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut client, session) = open(&env).await;

    let turn = ask(&mut client, &session, "/mode bogus").await;
    let text = turn.text();
    for m in MODES {
        assert!(text.contains(m), "the answer must name mode {m}: {text:?}");
    }
    assert!(turn.of_kind("current_mode_update").is_empty(), "{:#?}", turn.updates);
    assert!(turn.of_kind("config_option_update").is_empty(), "{:#?}", turn.updates);

    let turn = ask(&mut client, &session, "/mode").await;
    assert_eq!(first_mode_named(&turn.text()), "ask", "{:?}", turn.text());
    assert!(mock.model_requests().is_empty());

    // Still asking before writes.
    client.permission_policy = PermissionPolicy::RejectOnce;
    mock.enqueue(MockReply::tool("call_w", "write_file", json!({"path": "no.txt", "content": "x\n"})));
    mock.enqueue(MockReply::text(["Refused."]));
    let turn = ask(&mut client, &session, "Write no.txt").await;
    assert_eq!(turn.requests("session/request_permission").len(), 1, "{:#?}", turn.messages);
    assert!(!env.workspace().join("no.txt").exists());
}

// ---------------------------------------------------------------------------------------------
// /model

#[tokio::test]
async fn model_switches_the_model_sent_to_the_provider() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut client, session) = open(&env).await;

    let turn = ask(&mut client, &session, "/model other-model").await;
    let configs = turn.of_kind("config_option_update");
    assert!(!configs.is_empty(), "{:#?}", turn.updates);
    assert_eq!(option(&configs.last().unwrap()["update"], "model")["currentValue"], "other-model");
    assert!(turn.text().contains("other-model"), "{:?}", turn.text());
    assert!(mock.model_requests().is_empty(), "/model must not call the model");

    let turn = ask(&mut client, &session, "/model").await;
    assert!(turn.text().contains("other-model"), "/model shows the current model: {:?}", turn.text());

    mock.enqueue(MockReply::text(["I am the other model."]));
    let turn = ask(&mut client, &session, "Which model?").await;
    assert_eq!(turn.text(), "I am the other model.");
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].model(), Some("other-model"), "{}", requests[0].body);
}

// ---------------------------------------------------------------------------------------------
// /clear

#[tokio::test]
async fn clear_hides_earlier_messages_from_the_model_but_load_replays_them() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut client, session) = open(&env).await;

    mock.enqueue(MockReply::text(["Answer one."]));
    mock.enqueue(MockReply::text(["Answer two."]));
    ask(&mut client, &session, "Question one").await;
    ask(&mut client, &session, "Question two").await;
    let cleared = ask(&mut client, &session, "/clear").await;
    let cleared_text = cleared.text();
    assert!(!cleared_text.is_empty(), "/clear answers something");
    assert_eq!(mock.model_requests().len(), 2, "/clear must not call the model");

    mock.enqueue(MockReply::text(["Answer three."]));
    ask(&mut client, &session, "Fresh start").await;
    let conversation = mock.last_model_request().conversation();
    assert_eq!(conversation.len(), 1, "only the new message after /clear: {conversation:#?}");
    assert_eq!(conversation[0].0, "user");
    assert!(conversation[0].1.contains("Fresh start"), "{conversation:#?}");
    client.shutdown().await;

    let mut client = env.spawn_initialized().await;
    let (replay, result) = client.request_collect("session/load", load_params(&session, &env)).await;
    result.expect("session/load");
    assert_eq!(
        transcript(&replay),
        tr(&[
            ("user", "Question one"),
            ("agent", "Answer one."),
            ("user", "Question two"),
            ("agent", "Answer two."),
            ("user", "/clear"),
            ("agent", cleared_text.as_str()),
            ("user", "Fresh start"),
            ("agent", "Answer three."),
        ]),
        "the whole history is replayed"
    );
}

// ---------------------------------------------------------------------------------------------
// /compact and automatic compaction

const QUESTIONS: [&str; 4] =
    ["Question one ALPHA", "Question two BRAVO", "Question three CHARLIE", "Question four DELTA"];
const ANSWERS: [&str; 4] = ["Answer one alpha.", "Answer two bravo.", "Answer three charlie.", "Answer four delta."];

/// Checks a summarisation request: no tools, the old conversation, then a user message
/// asking for a summary. Returns the number of conversation messages summarised.
fn assert_summary_request(req: &RecordedRequest) -> usize {
    assert!(req.tool_names().is_empty(), "no tools in a summary request: {}", req.body);
    let conversation = req.conversation();
    let last = last_user_text(req);
    assert!(last.to_lowercase().contains("summar"), "the summary request must end by asking for a summary: {last:?}");
    assert!(
        conversation.iter().any(|(_, t)| t.contains(QUESTIONS[0])),
        "the oldest message is summarised: {conversation:#?}"
    );
    conversation.len() - 1
}

/// The next request after a compaction: the summary in the system prompt, the old
/// exchanges gone, at most `keep` earlier messages, the new question last.
fn assert_compacted_request(req: &RecordedRequest, summary: &str, keep: usize, new_question: &str) {
    let system = system_prompt(req);
    assert!(system.contains(summary), "the summary must be in the system prompt: {system:?}");
    let conversation = req.conversation();
    for old in QUESTIONS[..3].iter().chain(&ANSWERS[..3]) {
        assert!(
            !conversation.iter().any(|(_, t)| t.contains(old)),
            "{old:?} was compacted and must not be sent again: {conversation:#?}"
        );
    }
    let kept_old = conversation.iter().filter(|(_, t)| QUESTIONS.iter().chain(&ANSWERS).any(|q| t.contains(q))).count();
    assert!(kept_old <= keep, "at most {keep} messages are kept: {conversation:#?}");
    assert!(last_user_text(req).contains(new_question), "{conversation:#?}");
}

#[tokio::test]
async fn compact_summarises_older_messages_and_the_next_prompt_uses_the_summary() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("compact_keep = 2\n");
    let (mut client, session) = open(&env).await;
    for (q, a) in QUESTIONS.iter().zip(ANSWERS) {
        mock.enqueue(MockReply::text([a]));
        ask(&mut client, &session, q).await;
    }
    assert_eq!(mock.model_requests().len(), 4);

    let summary = "SUMMARY-7F3: the user asked four lettered questions.";
    mock.enqueue(MockReply::text(["SUMMARY-7F3: the user ", "asked four lettered questions."]));
    let turn = ask(&mut client, &session, "/compact").await;
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 5, "one summarisation request");
    let summarised = assert_summary_request(&requests[4]);
    let text = turn.text();
    assert!(
        text.starts_with(&format!("Compacted {summarised} older messages")),
        "{text:?} (the summary request carried {summarised} messages)"
    );
    assert!(!text.contains("SUMMARY-7F3"), "the summary itself is not the answer: {text:?}");

    mock.enqueue(MockReply::text(["Answer five."]));
    let turn = ask(&mut client, &session, "Question five ECHO").await;
    assert_eq!(turn.text(), "Answer five.");
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 6);
    assert!(!requests[5].tool_names().is_empty(), "a normal request offers tools");
    assert_compacted_request(&requests[5], summary, 2, "Question five ECHO");
}

#[tokio::test]
async fn compact_with_too_little_history_says_so_without_calling_the_model() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut client, session) = open(&env).await;
    mock.enqueue(MockReply::text(["Short answer."]));
    ask(&mut client, &session, "A short question").await;

    let turn = ask(&mut client, &session, "/compact").await;
    assert!(turn.text().contains("Nothing to compact yet"), "{:?}", turn.text());
    assert_eq!(mock.model_requests().len(), 1, "no summarisation request");

    ask(&mut client, &session, "Another question").await;
    let conversation = mock.last_model_request().conversation();
    assert!(conversation.iter().any(|(_, t)| t.contains("A short question")), "nothing was dropped: {conversation:#?}");
}

#[tokio::test]
async fn a_full_context_is_compacted_automatically_before_the_next_model_call() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("compact_threshold = 0.5\ncontext_window = 1000\ncompact_keep = 2\n");
    let (mut client, session) = open(&env).await;

    // Three exchanges; the last answer reports a context filled past the threshold.
    for (i, (q, a)) in QUESTIONS[..3].iter().zip(ANSWERS).enumerate() {
        let reply = MockReply::text([a]);
        mock.enqueue(if i == 2 { reply.usage(900, 10) } else { reply });
        let turn = ask(&mut client, &session, q).await;
        assert!(turn.thoughts().is_empty(), "no compaction yet: {:?}", turn.thoughts());
    }
    assert_eq!(mock.model_requests().len(), 3, "no compaction below the threshold");

    let summary = "AUTO-SUMMARY-91: three lettered questions so far.";
    mock.enqueue(MockReply::text([summary]));
    mock.enqueue(MockReply::text([ANSWERS[3]]));
    let turn = ask(&mut client, &session, QUESTIONS[3]).await;
    assert_eq!(turn.text(), ANSWERS[3]);

    let requests = mock.model_requests();
    assert_eq!(requests.len(), 5, "a summarisation request, then the normal one");
    assert_summary_request(&requests[3]);
    assert!(!requests[4].tool_names().is_empty(), "the normal request comes second, with tools");
    let system = system_prompt(&requests[4]);
    assert!(system.contains(summary), "{system:?}");
    let conversation = requests[4].conversation();
    for old in QUESTIONS[..2].iter().chain(&ANSWERS[..2]) {
        assert!(!conversation.iter().any(|(_, t)| t.contains(old)), "{old:?} was compacted: {conversation:#?}");
    }
    assert!(conversation.len() <= 3, "at most the kept messages and the new one: {conversation:#?}");
    assert!(last_user_text(&requests[4]).contains(QUESTIONS[3]));

    // The editor is told, as a thought, before the answer.
    let thoughts = turn.thoughts();
    assert!(thoughts.to_lowercase().contains("compacted"), "{thoughts:?}");
    let first_thought = turn.updates.iter().position(|u| update_kind(u) == "agent_thought_chunk").unwrap();
    let first_answer = turn.updates.iter().position(|u| update_kind(u) == "agent_message_chunk").unwrap();
    assert!(first_thought < first_answer, "{:#?}", turn.updates);
}

// ---------------------------------------------------------------------------------------------
// /plan

#[tokio::test]
async fn plan_switches_to_plan_mode_and_asks_the_model_with_read_only_tools() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut client, session) = open(&env).await;
    mock.enqueue(MockReply::text(["Here is the plan."]));

    let turn = ask(&mut client, &session, "/plan add caching").await;
    assert_eq!(turn.text(), "Here is the plan.");
    assert_eq!(the_update(&turn, "current_mode_update")["currentModeId"], "plan");
    let mode_at = turn.updates.iter().position(|u| update_kind(u) == "current_mode_update").unwrap();
    let answer_at = turn.updates.iter().position(|u| update_kind(u) == "agent_message_chunk").unwrap();
    assert!(mode_at < answer_at, "the mode change is announced first: {:#?}", turn.updates);

    let requests = mock.model_requests();
    assert_eq!(requests.len(), 1);
    assert!(last_user_text(&requests[0]).contains("Make a plan for: add caching"), "{}", requests[0].body);
    let tools = requests[0].tool_names();
    assert!(tools.iter().any(|t| t == "read_file"), "read-only tools stay: {tools:?}");
    for writer in ["write_file", "edit_file", "shell"] {
        assert!(!tools.iter().any(|t| t == writer), "{writer} must not be offered in plan mode: {tools:?}");
    }

    let turn = ask(&mut client, &session, "/mode").await;
    assert_eq!(first_mode_named(&turn.text()), "plan", "{:?}", turn.text());
}

// ---------------------------------------------------------------------------------------------
// /review

/// Runs git in `dir` with a fixed identity and no user or system configuration.
fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.email=it@example.com", "-c", "user.name=Ratchet IT"])
        .args(["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A repository in the workspace with one committed file.
fn committed_repo(env: &TestEnv) {
    let ws = env.workspace();
    std::fs::write(ws.join("lib.txt"), "one\ntwo\nthree\n").unwrap();
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "lib.txt"]);
    git(&ws, &["commit", "-q", "-m", "init"]);
}

#[tokio::test]
async fn review_sends_the_uncommitted_diff_to_the_model() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    committed_repo(&env);
    std::fs::write(env.workspace().join("lib.txt"), "one\nTWO-CHANGED-42\nthree\n").unwrap();
    let (mut client, session) = open(&env).await;
    mock.enqueue(MockReply::text(["Looks fine."]));

    let turn = ask(&mut client, &session, "/review").await;
    assert_eq!(turn.text(), "Looks fine.");
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 1);
    let prompt = last_user_text(&requests[0]);
    assert!(prompt.contains("+TWO-CHANGED-42"), "the diff is in the prompt: {prompt}");
    assert!(prompt.contains("-two"), "{prompt}");
    assert!(prompt.contains("lib.txt"), "{prompt}");
}

#[tokio::test]
async fn review_of_a_clean_repository_has_nothing_to_review() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    committed_repo(&env);
    let (mut client, session) = open(&env).await;

    let turn = ask(&mut client, &session, "/review").await;
    assert!(turn.text().to_lowercase().contains("nothing to review"), "{:?}", turn.text());
    assert!(mock.model_requests().is_empty(), "no model call for a clean tree");
}

// ---------------------------------------------------------------------------------------------
// Not a command

#[tokio::test]
async fn an_unknown_slash_word_goes_to_the_model_as_text() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut client, session) = open(&env).await;
    mock.enqueue(MockReply::text(["It is a directory."]));

    let turn = ask(&mut client, &session, "/usr/bin is odd").await;
    assert_eq!(turn.text(), "It is a directory.");
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(last_user_text(&requests[0]), "/usr/bin is odd");
    assert!(!requests[0].tool_names().is_empty());
    assert!(turn.of_kind("current_mode_update").is_empty());
}
