//! Property: the plan state machine accepts only legal transitions. Any sequence of
//! operations on any valid plan: a refused operation changes nothing, the status moves only
//! along the lifecycle's edges, terminal states stay terminal, no step runs before approval
//! or before its dependencies, and skipped steps never run.

use proptest::prelude::*;

use super::*;

/// A valid proposal: `n` steps, each depending on some earlier ones (so no cycle).
fn proposal() -> impl Strategy<Value = Proposal> {
    (1usize..7).prop_flat_map(|n| prop::collection::vec(prop::collection::vec(any::<bool>(), n), n)).prop_map(|deps| {
        let steps = deps
            .iter()
            .enumerate()
            .map(|(i, row)| ProposedStep {
                id: format!("s{i}"),
                description: format!("step {i}"),
                complexity: None,
                files: Vec::new(),
                depends_on: (0..i).filter(|&j| row[j]).map(|j| format!("s{j}")).collect(),
                agent: None,
            })
            .collect();
        Proposal { goal: "goal".into(), steps }
    })
}

#[derive(Debug, Clone)]
enum Op {
    Approve(Vec<usize>),
    Reject,
    Start,
    StepStarted(usize),
    StepFinished(usize, bool),
    Cancel,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => prop::collection::vec(0usize..8, 0..3).prop_map(Op::Approve),
        1 => Just(Op::Reject),
        1 => Just(Op::Start),
        4 => (0usize..8).prop_map(Op::StepStarted),
        4 => (0usize..8, any::<bool>()).prop_map(|(i, ok)| Op::StepFinished(i, ok)),
        1 => Just(Op::Cancel),
    ]
}

fn apply(plan: &mut Plan, op: &Op) -> Result<(), PlanError> {
    let id = |i: &usize| format!("s{i}");
    match op {
        Op::Approve(skip) => plan.approve(&skip.iter().map(id).collect::<Vec<_>>()),
        Op::Reject => plan.reject("no"),
        Op::Start => plan.start(),
        Op::StepStarted(i) => plan.step_started(&id(i)),
        Op::StepFinished(i, ok) => plan.step_finished(&id(i), if *ok { Ok(()) } else { Err("broke".into()) }),
        Op::Cancel => plan.cancel(),
    }
}

fn terminal(status: &PlanStatus) -> bool {
    matches!(status, PlanStatus::Rejected { .. } | PlanStatus::Completed | PlanStatus::Failed | PlanStatus::Cancelled)
}

/// The lifecycle's edges (a state to itself is no transition).
fn legal(from: &PlanStatus, to: &PlanStatus) -> bool {
    use PlanStatus::*;
    from == to
        || matches!(
            (from, to),
            (Proposed, Approved | Rejected { .. } | Cancelled)
                | (Approved, Executing | Cancelled)
                | (Executing, Completed | Failed | Cancelled)
        )
}

proptest! {
    #[test]
    fn only_legal_transitions_are_accepted(proposal in proposal(), ops in prop::collection::vec(op(), 0..40)) {
        let mut plan = Plan::propose(proposal, 1).unwrap();
        let mut approved = false;
        for op in &ops {
            let before = plan.clone();
            let ready: Vec<String> = plan.ready_steps().iter().map(|s| s.id.clone()).collect();
            let result = apply(&mut plan, op);
            if result.is_err() {
                prop_assert_eq!(&plan, &before, "{:?} was refused but changed the plan", op);
                continue;
            }
            prop_assert!(!terminal(&before.status), "{:?} changed a {} plan", op, before.status_label());
            prop_assert!(legal(&before.status, &plan.status), "{:?}: {:?} -> {:?}", op, before.status, plan.status);
            approved |= plan.status == PlanStatus::Approved;
            if let Op::StepStarted(i) = op {
                prop_assert!(ready.contains(&format!("s{i}")), "s{} started while not ready ({:?})", i, ready);
            }
            for (step, old) in plan.steps.iter().zip(&before.steps) {
                if step.status == StepStatus::InProgress {
                    prop_assert!(approved && plan.status == PlanStatus::Executing, "{} runs in a {} plan", step.id, plan.status_label());
                    prop_assert_ne!(&old.status, &StepStatus::Skipped, "skipped step {} ran", &step.id);
                    for dep in &step.depends_on {
                        let dep = plan.steps.iter().find(|s| &s.id == dep).unwrap();
                        prop_assert!(matches!(dep.status, StepStatus::Completed | StepStatus::Skipped), "{} runs before {}", step.id, dep.id);
                    }
                }
            }
            if plan.status == PlanStatus::Completed {
                prop_assert!(plan.steps.iter().all(|s| matches!(s.status, StepStatus::Completed | StepStatus::Skipped)));
            }
        }
    }
}
