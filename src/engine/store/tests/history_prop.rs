//! Property: history order. Messages appended to interleaved sessions come back, per
//! session, in the order they were appended, with rising sequence numbers, also after the
//! database is opened again.

use proptest::prelude::*;

use super::{new_session, open_in};
use crate::engine::content::{ContentPart, Role};
use crate::engine::store::*;

/// Which session each message goes to, and its text (some texts repeat, some are empty).
fn appends() -> impl Strategy<Value = Vec<(usize, String)>> {
    let text = prop::sample::select(vec!["", "a", "same", "ü\n{\"x\":1}", "'; DROP TABLE messages; --"]);
    prop::collection::vec((0usize..3, text.prop_map(str::to_string)), 0..40)
}

fn texts(messages: &[StoredMessage]) -> Vec<(Role, String)> {
    messages
        .iter()
        .map(|m| {
            let text = m.content.iter().map(|p| match p {
                ContentPart::Text { text } => text.as_str(),
                _ => "",
            });
            (m.role, text.collect())
        })
        .collect()
}

async fn check(appends: Vec<(usize, String)>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(store.create_session(new_session("/proj")).await.unwrap().id);
    }
    let mut expected = vec![Vec::new(); 3];
    for (i, (session, text)) in appends.into_iter().enumerate() {
        // Alternate roles and store handles (clones share one connection thread).
        let handle = store.clone();
        let message = if i % 2 == 0 {
            NewMessage::user(vec![ContentPart::text(&text)])
        } else {
            NewMessage::assistant(vec![ContentPart::text(&text)], Vec::new(), None)
        };
        let role = message.role;
        handle.append_message(&ids[session], message).await.unwrap();
        expected[session].push((role, text));
    }
    for reopened in [false, true] {
        let store = if reopened { open_in(dir.path()).await } else { store.clone() };
        for (id, want) in ids.iter().zip(&expected) {
            let got = store.messages(id).await.unwrap();
            prop_assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "sequence numbers do not rise");
            prop_assert_eq!(&texts(&got), want, "reopened: {}", reopened);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn appended_messages_come_back_in_order(appends in appends()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(check(appends))?;
    }
}
