//! Whole-definition checks: transition targets, reachability, and resources.
//!
//! Targets resolve within the machine (or branch) that holds the state; a branch cannot
//! jump into its parent. Every state must be reachable from `StartAt`.

use super::model::{StateKind, StateMachine};
use super::parse::Errors;
use crate::registry::HandlerRegistry;
use std::collections::BTreeSet;

/// The transitions of a state as `(field, target)`.
fn targets(kind: &StateKind, next: &Option<String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = next
        .iter()
        .map(|n| ("Next".to_string(), n.clone()))
        .collect();
    match kind {
        StateKind::Choice { choices, default } => {
            for (i, (_, n)) in choices.iter().enumerate() {
                out.push((format!("Choices[{i}].Next"), n.clone()));
            }
            out.extend(default.iter().map(|d| ("Default".to_string(), d.clone())));
        }
        StateKind::Task { io, .. } | StateKind::Parallel { io, .. } | StateKind::Map { io, .. } => {
            for (i, c) in io.catch.iter().enumerate() {
                out.push((format!("Catch[{i}].Next"), c.next.clone()));
            }
        }
        _ => {}
    }
    out
}

/// Checks targets and reachability of `m` and its nested machines.
pub(crate) fn check_graph(m: &StateMachine, owner: Option<&str>, errs: &mut Errors) {
    if !m.states.contains_key(&m.start_at) {
        errs.push::<()>(
            owner,
            "StartAt",
            &format!("no state named {:?}", m.start_at),
        );
    }
    for (name, s) in &m.states {
        for (field, t) in targets(&s.kind, &s.next) {
            if !m.states.contains_key(&t) {
                errs.push::<()>(Some(name), &field, &format!("no state named {t:?}"));
            }
        }
        match &s.kind {
            StateKind::Parallel { branches, .. } => branches
                .iter()
                .for_each(|b| check_graph(b, Some(name), errs)),
            StateKind::Map { processor, .. } => check_graph(processor, Some(name), errs),
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![m.start_at.clone()];
    while let Some(n) = stack.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(s) = m.states.get(&n) {
            stack.extend(targets(&s.kind, &s.next).into_iter().map(|(_, t)| t));
        }
    }
    for name in m.states.keys() {
        if !seen.contains(name) {
            errs.push::<()>(
                Some(name),
                "Type",
                &format!("state is unreachable from StartAt {:?}", m.start_at),
            );
        }
    }
}

/// Checks that every Task resource has a handler.
pub(crate) fn check_resources(m: &StateMachine, registry: &HandlerRegistry, errs: &mut Errors) {
    for (name, s) in &m.states {
        match &s.kind {
            StateKind::Task { resource, .. } => {
                if let Err(e) = registry.check_resource(resource) {
                    errs.push::<()>(Some(name), "Resource", &e);
                }
            }
            StateKind::Parallel { branches, .. } => branches
                .iter()
                .for_each(|b| check_resources(b, registry, errs)),
            StateKind::Map { processor, .. } => check_resources(processor, registry, errs),
            _ => {}
        }
    }
}
