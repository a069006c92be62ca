//! Property: deny always wins. Whatever the allow rules, their order, the mode and the
//! remembered answer, a call that a deny rule matches is refused, and the verdict does not
//! depend on the order the rules were written in.

use proptest::prelude::*;

use super::{Policy, Remembered, Verdict};
use crate::engine::config::PermissionRules;
use crate::engine::session::Mode;
use crate::engine::tools::ToolKind;

const TOOLS: [&str; 4] = ["shell", "edit_file", "read_file", "mcp__git__push"];

fn rule() -> impl Strategy<Value = String> {
    let tool = prop::sample::select(vec!["shell", "edit_file", "read_file", "*", "mcp__git__push"]);
    let pattern =
        prop::option::of(prop::sample::select(vec!["rm *", "*", "cargo*", "src/**", "*.rs", "git push*", "?"]));
    (tool, pattern).prop_map(|(t, p)| match p {
        Some(p) => format!("{t}:{p}"),
        None => t.to_string(),
    })
}

fn policy(allow: &[String], deny: &[String]) -> Policy {
    Policy::new(&PermissionRules { allow: allow.to_vec(), deny: deny.to_vec(), deny_paths: Vec::new() }).unwrap()
}

fn kind() -> impl Strategy<Value = ToolKind> {
    prop::sample::select(vec![ToolKind::Read, ToolKind::Edit, ToolKind::Delete, ToolKind::Execute, ToolKind::Other])
}

fn mode() -> impl Strategy<Value = Mode> {
    prop::sample::select(vec![Mode::Ask, Mode::AcceptEdits, Mode::Plan, Mode::Yolo])
}

proptest! {
    #[test]
    fn deny_always_wins(
        allow in prop::collection::vec(rule(), 0..5),
        deny in prop::collection::vec(rule(), 1..5),
        tool in prop::sample::select(TOOLS.to_vec()),
        subject in prop::option::of(prop::sample::select(vec!["rm -rf /", "cargo test", "src/a.rs", "git push", "x"])),
        kind in kind(),
        mode in mode(),
        remembered in prop::sample::select(vec![None, Some(Remembered::Allow), Some(Remembered::Reject)]),
        seed in any::<u64>(),
    ) {
        let verdict = policy(&allow, &deny).decide(mode, tool, kind, subject, remembered);
        // The same rules, also allowed, and in another order.
        let mut all_allowed = [allow.clone(), deny.clone()].concat();
        let mut shuffled_deny = deny.clone();
        let n = all_allowed.len();
        all_allowed.rotate_left(usize::try_from(seed % n as u64).unwrap());
        shuffled_deny.reverse();
        let reordered = policy(&all_allowed, &shuffled_deny).decide(mode, tool, kind, subject, remembered);
        for rule in &deny {
            let alone = policy(&[], std::slice::from_ref(rule)).decide(Mode::Yolo, tool, kind, subject, None);
            if matches!(alone, Verdict::Deny(_)) {
                prop_assert!(matches!(verdict, Verdict::Deny(_)), "{rule:?} lost: {verdict:?}");
                prop_assert!(matches!(reordered, Verdict::Deny(_)), "{rule:?} lost when also allowed: {reordered:?}");
            }
        }
        let same = std::mem::discriminant(&verdict) == std::mem::discriminant(&policy(&allow, &shuffled_deny).decide(mode, tool, kind, subject, remembered));
        prop_assert!(same, "the verdict depends on the order of the deny rules");
    }
}
