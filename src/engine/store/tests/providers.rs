//! Provider entries: add, list, the single default, remove; no secret column exists.

use rusqlite::Connection;

use super::open_in;
use crate::engine::provider_kind::ProviderKind;
use crate::engine::store::*;

fn entry(name: &str, kind: &str) -> NewProvider {
    NewProvider {
        name: name.to_owned(),
        kind: ProviderKind::parse(kind).unwrap(),
        base_url: Some("http://127.0.0.1:9/v1".to_owned()),
        model: "m".to_owned(),
        api_key_env: Some("WORK_KEY".to_owned()),
    }
}

#[tokio::test]
async fn add_list_and_refuse_a_taken_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    assert!(store.providers().await.unwrap().is_empty());
    let work = store.add_provider(entry("work", "openai")).await.unwrap().expect("added");
    assert_eq!((work.name.as_str(), work.kind.as_str(), work.model.as_str()), ("work", "openai", "m"));
    assert_eq!(work.api_key_env.as_deref(), Some("WORK_KEY"));
    assert!(!work.is_default);
    store
        .add_provider(NewProvider { base_url: None, api_key_env: None, ..entry("alpha", "ollama") })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.add_provider(entry("work", "anthropic")).await.unwrap(), None, "the name is taken");

    let all = store.providers().await.unwrap();
    assert_eq!(all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["alpha", "work"]);
    assert_eq!(all[0].base_url, None);
    assert_eq!(store.provider("work").await.unwrap(), Some(work));
    assert_eq!(store.provider("nope").await.unwrap(), None);
}

#[tokio::test]
async fn one_default_at_a_time_and_removal_returns_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    store.add_provider(entry("a", "openai")).await.unwrap().unwrap();
    store.add_provider(entry("b", "ollama")).await.unwrap().unwrap();
    assert_eq!(store.default_provider().await.unwrap(), None);
    assert_eq!(store.set_default_provider("nope").await.unwrap(), None);

    assert!(store.set_default_provider("a").await.unwrap().unwrap().is_default);
    let b = store.set_default_provider("b").await.unwrap().unwrap();
    assert!(b.is_default);
    assert_eq!(store.default_provider().await.unwrap(), Some(b.clone()));
    let defaults: Vec<_> = store.providers().await.unwrap().into_iter().filter(|p| p.is_default).collect();
    assert_eq!(defaults, vec![b.clone()], "setting b cleared a");

    assert_eq!(store.remove_provider("b").await.unwrap(), Some(b));
    assert_eq!(store.remove_provider("b").await.unwrap(), None);
    assert_eq!(store.default_provider().await.unwrap(), None, "removing the default leaves none");
}

#[tokio::test]
async fn the_table_has_no_column_for_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    drop(open_in(dir.path()).await);
    let raw = Connection::open(dir.path().join("ratchet.db")).unwrap();
    let mut stmt = raw.prepare("SELECT name FROM pragma_table_info('providers')").unwrap();
    let columns: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(columns, ["name", "kind", "base_url", "model", "api_key_env", "is_default", "created_at"]);
}

#[tokio::test]
async fn a_stored_entry_of_an_unknown_kind_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    store.add_provider(entry("work", "openai")).await.unwrap().expect("added");
    store.set_default_provider("work").await.unwrap().expect("made default");
    // Kinds are parsed when a row is read: one this binary does not know is an error that names it.
    let raw = Connection::open(dir.path().join("ratchet.db")).unwrap();
    raw.execute("UPDATE providers SET kind = 'gemini' WHERE name = 'work'", []).unwrap();
    let err = store.default_provider().await.unwrap_err();
    assert!(err.to_string().contains("\"gemini\" in the provider store"), "{err}");
    assert!(matches!(err, StoreError::UnknownProviderKind(_)), "{err:?}");
}
