//! Whole-definition checks: transition targets, reachability, and resources.
//!
//! Targets resolve within the machine (or branch) that holds the state; a branch cannot
//! jump into its parent. Every state must be reachable from `StartAt`. State names are
//! unique across the whole definition, Parallel branches and Map item processors included
//! (AWS refuses a name reused inside a Map's iterator).

use super::model::{State, StateKind, StateMachine};
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
            for (i, c) in choices.iter().enumerate() {
                out.push((format!("Choices[{i}].Next"), c.next.clone()));
            }
            out.extend(default.iter().map(|d| ("Default".to_string(), d.clone())));
        }
        StateKind::Task { io, .. } | StateKind::Parallel { io, .. } => {
            for (i, c) in io.catch.iter().enumerate() {
                out.push((format!("Catch[{i}].Next"), c.next.clone()));
            }
        }
        StateKind::Map(m) => {
            for (i, c) in m.io.catch.iter().enumerate() {
                out.push((format!("Catch[{i}].Next"), c.next.clone()));
            }
        }
        _ => {}
    }
    out
}

/// Every state of `m` and its nested machines.
pub(crate) fn collect_states<'m>(m: &'m StateMachine, out: &mut Vec<&'m State>) {
    for s in m.states.values() {
        out.push(s);
        match &s.kind {
            StateKind::Parallel { branches, .. } => {
                branches.iter().for_each(|b| collect_states(b, out))
            }
            StateKind::Map(map) => collect_states(&map.processor, out),
            _ => {}
        }
    }
}

/// Reports every state name used more than once in the whole definition.
pub(crate) fn check_unique_names(m: &StateMachine, errs: &mut Errors) {
    let mut all = Vec::new();
    collect_states(m, &mut all);
    let mut seen = BTreeSet::new();
    let mut reported = BTreeSet::new();
    for s in all {
        if !seen.insert(s.name.as_str()) && reported.insert(s.name.as_str()) {
            errs.push::<()>(
                Some(&s.name),
                "Type",
                "the state name is used more than once; names must be unique across the whole definition, branches and Map item processors included",
            );
        }
    }
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
            StateKind::Map(map) => check_graph(&map.processor, Some(name), errs),
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

/// Checks that every Task resource (of a state `covered` does not answer) has a handler.
pub(crate) fn check_resources(
    m: &StateMachine,
    registry: &HandlerRegistry,
    covered: &dyn Fn(&str) -> bool,
    errs: &mut Errors,
) {
    let mut all = Vec::new();
    collect_states(m, &mut all);
    for s in all {
        if let StateKind::Task { resource, io, .. } = &s.kind
            && !covered(&s.name)
            && let Err(e) = registry.check_task(resource, io.parameters.as_ref())
        {
            errs.push::<()>(Some(&s.name), "Resource", &e);
        }
    }
}
