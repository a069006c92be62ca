//! Tests of provider selection: precedence, defaults, endpoint overrides and error text.

use super::*;
use crate::engine::provider::http::test_support::{MockServer, Reply};

fn env() -> EnvSnapshot {
    EnvSnapshot::default()
}

fn config(text: &str) -> ConfigFile {
    ConfigFile::parse(text).unwrap()
}

fn no_lookup(_: &str) -> Option<String> {
    None
}

fn pick(env: &EnvSnapshot, file: &ConfigFile) -> Result<ProviderChoice, SelectError> {
    choose_with_lookup(env, file, &no_lookup)
}

#[test]
fn ratchet_provider_wins_over_config_and_keys() {
    let env = EnvSnapshot {
        ratchet_provider: Some("OpenAI".into()),
        ratchet_model: Some("gpt-x".into()),
        openai_api_key: Some("sk-o".into()),
        anthropic_api_key: Some("sk-a".into()),
        ..env()
    };
    let file = config("provider = \"anthropic\"\nmodel = \"claude-x\"");
    let choice = pick(&env, &file).unwrap();
    assert_eq!(choice.kind, ProviderKind::OpenAi);
    assert_eq!(choice.model, "gpt-x");
    assert_eq!(choice.api_key.as_deref(), Some("sk-o"));
    assert_eq!(choice.base_url.as_deref(), Some("https://api.openai.com/v1"));
}

#[test]
fn config_provider_wins_over_keys_and_uses_its_model() {
    let env = EnvSnapshot { anthropic_api_key: Some("sk-a".into()), ..env() };
    let file = config("provider = \"ollama\"\nmodel = \"qwen3\"\n[ollama]\nbase_url = \"gpu:1234\"");
    let choice = pick(&env, &file).unwrap();
    assert_eq!(choice.kind, ProviderKind::Ollama);
    assert_eq!(choice.model, "qwen3");
    assert_eq!(choice.base_url.as_deref(), Some("http://gpu:1234"));
    assert_eq!(choice.api_key, None);
}

#[test]
fn keys_choose_anthropic_before_openai_with_default_models() {
    let both = EnvSnapshot { anthropic_api_key: Some("sk-a".into()), openai_api_key: Some("sk-o".into()), ..env() };
    let choice = pick(&both, &ConfigFile::default()).unwrap();
    assert_eq!((choice.kind, choice.model.as_str()), (ProviderKind::Anthropic, "claude-sonnet-4-5"));
    assert_eq!(choice.base_url.as_deref(), Some("https://api.anthropic.com"));

    let openai_only = EnvSnapshot { openai_api_key: Some("sk-o".into()), ..env() };
    let choice = pick(&openai_only, &ConfigFile::default()).unwrap();
    assert_eq!((choice.kind, choice.model.as_str()), (ProviderKind::OpenAi, "gpt-4o-mini"));
}

#[test]
fn config_model_alone_applies_to_the_detected_provider_but_not_to_another() {
    let env = EnvSnapshot { openai_api_key: Some("sk-o".into()), ..env() };
    assert_eq!(pick(&env, &config("model = \"gpt-4.1\"")).unwrap().model, "gpt-4.1");
    let env = EnvSnapshot { ratchet_provider: Some("ollama".into()), ..env };
    let file = config("provider = \"openai\"\nmodel = \"gpt-4.1\"");
    assert_eq!(pick(&env, &file).unwrap().model, "llama3.2");
}

#[test]
fn environment_endpoints_win_over_config_ones() {
    let env = EnvSnapshot {
        openai_api_key: Some("sk-o".into()),
        openai_base_url: Some("http://127.0.0.1:8080/v1/".into()),
        ..env()
    };
    let file = config("[openai]\nbase_url = \"http://other/v1\"");
    assert_eq!(pick(&env, &file).unwrap().base_url.as_deref(), Some("http://127.0.0.1:8080/v1"));
    let env = EnvSnapshot { openai_base_url: None, ..env };
    assert_eq!(pick(&env, &file).unwrap().base_url.as_deref(), Some("http://other/v1"));
}

#[test]
fn api_key_env_names_a_custom_variable_and_the_conventional_one_wins() {
    let file = config("provider = \"anthropic\"\n[anthropic]\napi_key_env = \"WORK_CLAUDE_KEY\"");
    let lookup = |name: &str| (name == "WORK_CLAUDE_KEY").then(|| "sk-work".to_string());
    let choice = choose_with_lookup(&env(), &file, &lookup).unwrap();
    assert_eq!(choice.api_key.as_deref(), Some("sk-work"));
    let env = EnvSnapshot { anthropic_api_key: Some("sk-conv".into()), ..env() };
    assert_eq!(choose_with_lookup(&env, &file, &lookup).unwrap().api_key.as_deref(), Some("sk-conv"));

    let err = pick(&EnvSnapshot::default(), &file).unwrap_err();
    assert!(err.to_string().contains("ANTHROPIC_API_KEY or WORK_CLAUDE_KEY"), "{err}");
}

#[test]
fn hosted_provider_without_key_is_an_error_unless_the_endpoint_is_custom() {
    let env = EnvSnapshot { ratchet_provider: Some("openai".into()), ..env() };
    let err = pick(&env, &ConfigFile::default()).unwrap_err();
    assert!(matches!(err, SelectError::MissingKey { kind: ProviderKind::OpenAi, .. }));
    let message = err.to_string();
    assert!(message.contains("OPENAI_API_KEY") && message.contains("RATCHET_PROVIDER"), "{message}");

    let local = EnvSnapshot { openai_base_url: Some("http://127.0.0.1:8080/v1".into()), ..env };
    let choice = pick(&local, &ConfigFile::default()).unwrap();
    assert_eq!((choice.kind, choice.api_key), (ProviderKind::OpenAi, None));
}

#[test]
fn unknown_provider_lists_the_valid_names() {
    let env = EnvSnapshot { ratchet_provider: Some("gemini".into()), ..env() };
    let message = pick(&env, &ConfigFile::default()).unwrap_err().to_string();
    for name in ["\"gemini\"", "RATCHET_PROVIDER", "openai", "anthropic", "ollama", "scripted"] {
        assert!(message.contains(name), "{name} missing from: {message}");
    }
    let message = pick(&EnvSnapshot::default(), &config("provider = \"x\"")).unwrap_err().to_string();
    assert!(message.contains("config.toml"), "{message}");
}

#[test]
fn scripted_only_when_asked_and_carries_the_script() {
    let env = EnvSnapshot { ratchet_script: Some("/tmp/s.json".into()), ..env() };
    assert_eq!(pick(&env, &ConfigFile::default()), Err(SelectError::NothingConfigured));

    let env = EnvSnapshot { ratchet_provider: Some("scripted".into()), ..env };
    let choice = pick(&env, &config("script = \"/other.json\"")).unwrap();
    assert_eq!(choice.kind, ProviderKind::Scripted);
    assert_eq!(choice.model, "scripted-demo");
    assert_eq!(choice.script, Some(PathBuf::from("/tmp/s.json")));
    assert_eq!(choice.base_url, None);
    let from_config =
        pick(&EnvSnapshot::default(), &config("provider = \"scripted\"\nscript = \"/other.json\"")).unwrap();
    assert_eq!(from_config.script, Some(PathBuf::from("/other.json")));
}

#[test]
fn nothing_configured_explains_every_way_out() {
    let message = pick(&env(), &ConfigFile::default()).unwrap_err().to_string();
    for needle in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "RATCHET_PROVIDER=openai|anthropic|ollama",
        "RATCHET_MODEL",
        "config.toml",
        "provider = \"ollama\"",
        "RATCHET_PROVIDER=scripted",
        "OLLAMA_HOST",
    ] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
}

#[test]
fn debug_output_redacts_the_key() {
    let env = EnvSnapshot { openai_api_key: Some("sk-very-secret".into()), ..env() };
    let debug = format!("{:?}", pick(&env, &ConfigFile::default()).unwrap());
    assert!(!debug.contains("sk-very-secret") && debug.contains("<redacted>"), "{debug}");
}

#[tokio::test]
async fn resolve_falls_back_to_a_local_ollama_and_build_makes_each_kind() {
    let server = MockServer::start(vec![Reply::json(200, serde_json::json!({"models": []}))]).await;
    let env = EnvSnapshot { ollama_host: Some(server.base.clone()), ..env() };
    let choice = resolve(&env, &ConfigFile::default()).await.unwrap();
    assert_eq!(choice.kind, ProviderKind::Ollama);
    assert_eq!(choice.base_url.as_deref(), Some(server.base.as_str()));
    assert_eq!(build(&choice).unwrap().name(), "ollama");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap().to_string();
    drop(listener);
    let env = EnvSnapshot { ollama_host: Some(closed), ..EnvSnapshot::default() };
    assert_eq!(resolve(&env, &ConfigFile::default()).await, Err(SelectError::NothingConfigured));

    for (name, want) in [("openai", "openai"), ("anthropic", "anthropic"), ("scripted", "scripted")] {
        let env = EnvSnapshot {
            ratchet_provider: Some(name.into()),
            openai_api_key: Some("k".into()),
            anthropic_api_key: Some("k".into()),
            ..EnvSnapshot::default()
        };
        let choice = resolve(&env, &ConfigFile::default()).await.unwrap();
        assert_eq!(build(&choice).unwrap().name(), want);
    }
    let bad_script = ProviderChoice { script: Some(PathBuf::from("/nonexistent/script.json")), ..choose_scripted() };
    assert!(matches!(build(&bad_script), Err(ProviderError::Config(m)) if m.contains("/nonexistent/script.json")));
}

fn choose_scripted() -> ProviderChoice {
    let env = EnvSnapshot { ratchet_provider: Some("scripted".into()), ..env() };
    pick(&env, &ConfigFile::default()).unwrap()
}

fn stored(kind: &str, base_url: Option<&str>, key_env: Option<&str>) -> ProviderRecord {
    ProviderRecord {
        name: "work".into(),
        kind: ProviderKind::parse(kind).unwrap(),
        base_url: base_url.map(Into::into),
        model: "stored-model".into(),
        api_key_env: key_env.map(Into::into),
        is_default: true,
        created_at: 0,
    }
}

fn lookup_work_key(name: &str) -> Option<String> {
    (name == "WORK_KEY").then(|| "sk-work".to_string())
}

#[test]
fn a_stored_entry_reads_its_key_from_the_variable_it_names() {
    let choice =
        stored_choice(&stored("openai", None, Some("WORK_KEY")), &env(), &ConfigFile::default(), &lookup_work_key)
            .unwrap();
    assert_eq!((choice.kind, choice.model.as_str()), (ProviderKind::OpenAi, "stored-model"));
    assert_eq!(choice.api_key.as_deref(), Some("sk-work"));
    assert_eq!(choice.base_url.as_deref(), Some("https://api.openai.com/v1"));
    assert_eq!((choice.stored.as_deref(), choice.label()), (Some("work"), "work"));

    let usual = EnvSnapshot { anthropic_api_key: Some("sk-a".into()), ..env() };
    let choice = stored_choice(&stored("anthropic", None, None), &usual, &ConfigFile::default(), &no_lookup).unwrap();
    assert_eq!(choice.api_key.as_deref(), Some("sk-a"), "no variable named: the usual one");
}

#[test]
fn a_stored_entry_without_its_key_says_which_variable_to_set() {
    let missing = stored_choice(
        &stored("openai", Some("http://127.0.0.1:8080/v1"), Some("GONE_KEY")),
        &env(),
        &ConfigFile::default(),
        &no_lookup,
    );
    let err = missing.unwrap_err();
    assert!(matches!(&err, SelectError::StoredKeyMissing { env_var, .. } if env_var == "GONE_KEY"), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("\"work\"") && text.contains("GONE_KEY") && text.contains("ratchet daemon restart"),
        "{text}"
    );

    // The usual variable may be absent when the entry points at a local server.
    let local = stored_choice(
        &stored("openai", Some("http://127.0.0.1:8080/v1"), None),
        &env(),
        &ConfigFile::default(),
        &no_lookup,
    )
    .unwrap();
    assert_eq!((local.api_key, local.base_url.as_deref()), (None, Some("http://127.0.0.1:8080/v1")));
    let hosted = stored_choice(&stored("anthropic", None, None), &env(), &ConfigFile::default(), &no_lookup);
    assert!(matches!(hosted, Err(SelectError::StoredKeyMissing { env_var, .. }) if env_var == "ANTHROPIC_API_KEY"));
}

#[tokio::test]
async fn the_stored_default_sits_between_ratchet_provider_and_the_config_file() {
    let entry = stored("ollama", Some("http://127.0.0.1:9"), None);
    let file = config("provider = \"scripted\"");
    let keys = EnvSnapshot { openai_api_key: Some("sk-o".into()), ..env() };
    let choice = resolve_with_default(&keys, &file, Some(&entry)).await.unwrap();
    assert_eq!((choice.kind, choice.label()), (ProviderKind::Ollama, "work"), "wins over config and keys");

    let forced = EnvSnapshot { ratchet_provider: Some("openai".into()), ..keys.clone() };
    let choice = resolve_with_default(&forced, &file, Some(&entry)).await.unwrap();
    assert_eq!((choice.kind, choice.label()), (ProviderKind::OpenAi, "openai"), "RATCHET_PROVIDER wins");

    let choice = resolve_with_default(&keys, &file, None).await.unwrap();
    assert_eq!(choice.kind, ProviderKind::Scripted, "no default: the config file");
}

#[test]
fn the_stall_timeout_comes_from_the_environment_then_the_config_then_the_default() {
    let env = EnvSnapshot { ratchet_provider: Some("scripted".into()), ..env() };
    let default = pick(&env, &ConfigFile::default()).unwrap();
    assert_eq!(default.stall_timeout, http::DEFAULT_STALL_TIMEOUT);
    let file = config("provider_timeout_secs = 7");
    assert_eq!(pick(&env, &file).unwrap().stall_timeout, std::time::Duration::from_secs(7));
    let from_env = EnvSnapshot { ratchet_provider_timeout: Some("3".into()), ..env.clone() };
    assert_eq!(pick(&from_env, &file).unwrap().stall_timeout, std::time::Duration::from_secs(3));
    for bad in ["0", "soon", "-1"] {
        let bad_env = EnvSnapshot { ratchet_provider_timeout: Some(bad.into()), ..env.clone() };
        assert_eq!(pick(&bad_env, &file).unwrap().stall_timeout, std::time::Duration::from_secs(7), "{bad}");
    }
}
