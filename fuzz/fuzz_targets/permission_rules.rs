//! The permission rule matcher: any allow and deny rules (`tool` or `tool:glob`), any call.
//! Bad globs are refused with the rule named; and deny wins: a call one of the deny rules
//! refuses on its own is refused whatever the allow rules, the mode and remembered answers.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use ratchet::engine::Mode;
use ratchet::engine::config::PermissionRules;
use ratchet::engine::content::ToolKind;
use ratchet::engine::permission::{Policy, Remembered, Verdict};

const MODES: [Mode; 4] = [Mode::Ask, Mode::AcceptEdits, Mode::Plan, Mode::Yolo];
const KINDS: [ToolKind; 9] = [
    ToolKind::Read,
    ToolKind::Edit,
    ToolKind::Delete,
    ToolKind::Move,
    ToolKind::Search,
    ToolKind::Execute,
    ToolKind::Fetch,
    ToolKind::Think,
    ToolKind::Other,
];

fn run(u: &mut Unstructured) -> Result<()> {
    let allow: Vec<String> = u.arbitrary()?;
    let deny: Vec<String> = u.arbitrary()?;
    let tool: String = u.arbitrary()?;
    let subject: Option<String> = u.arbitrary()?;
    let mode = *u.choose(&MODES)?;
    let kind = *u.choose(&KINDS)?;
    let remembered = *u.choose(&[None, Some(Remembered::Allow), Some(Remembered::Reject)])?;
    let rules = PermissionRules { allow, deny, deny_paths: Vec::new() };
    let policy = match Policy::new(&rules) {
        Ok(policy) => policy,
        Err(e) => {
            assert!(rules.allow.iter().chain(&rules.deny).any(|r| e.contains(r.as_str())), "{e} names no rule");
            return Ok(());
        }
    };
    let verdict = policy.decide(mode, &tool, kind, subject.as_deref(), remembered);
    for rule in &rules.deny {
        let alone = Policy::new(&PermissionRules { deny: vec![rule.clone()], ..Default::default() }).unwrap();
        if matches!(alone.decide(Mode::Yolo, &tool, kind, subject.as_deref(), None), Verdict::Deny(_)) {
            assert!(matches!(verdict, Verdict::Deny(_)), "deny rule {rule:?} lost to {rules:?}: {verdict:?}");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
