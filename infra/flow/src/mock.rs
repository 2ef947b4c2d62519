//! Mocked Task responses in Step Functions Local's `MockConfigFile` format.
//!
//! ```json
//! {"StateMachines": {"LambdaSQSIntegration": {"TestCases": {
//!     "RetryPath": {"LambdaState": "MockedLambdaRetry", "SQSState": "MockedSQSSuccess"}}}},
//!  "MockedResponses": {"MockedLambdaRetry": {
//!     "0": {"Throw": {"Error": "Lambda.ResourceNotReadyException", "Cause": "..."}},
//!     "1-2": {"Throw": {"Error": "Lambda.TimeoutException", "Cause": "..."}},
//!     "3": {"Return": {"StatusCode": 200, "Payload": {"body": "Hello"}}}}}}
//! ```
//!
//! Rules (AWS's): a test case maps Task state names to mocked responses; a mocked response
//! maps invocation numbers of that state within the execution (0-based; retries count) —
//! single numbers or inclusive ranges `"1-2"` — to exactly one of `Return` (the task's
//! result, used as is: a mocked `lambda:invoke` gives the whole `{"StatusCode", "Payload"}`)
//! or `Throw` (`Error` and `Cause`). States the test case does not name call their real
//! handler. An invocation past the last number defined fails the state with
//! `States.Runtime` naming the state and the invocation (Step Functions Local's documentation
//! does not say what it does then).
//!
//! Invariants: a parsed [`MockConfig`] has no overlapping or malformed invocation keys and
//! every test case names only mocked responses that exist.

use crate::registry::TaskError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One invocation's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum MockAnswer {
    /// `Return`: the task result.
    Return(Value),
    /// `Throw`: the task fails with this error and cause.
    Throw(TaskError),
}

/// A mocked response: answers by invocation number range (inclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct MockedResponse {
    ranges: Vec<(u64, u64, MockAnswer)>,
}

impl MockedResponse {
    /// The answer for the `n`-th invocation (0-based).
    pub fn answer(&self, n: u64) -> Option<&MockAnswer> {
        self.ranges
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&n))
            .map(|(_, _, r)| r)
    }
}

/// A parsed mock configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// State machine name → test case name → state name → mocked response name.
    pub state_machines: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// Mocked responses by name.
    pub responses: BTreeMap<String, MockedResponse>,
}

/// One test case, ready to answer a run's Task states.
#[derive(Debug)]
pub struct TestCase {
    /// The state machine's name in the file.
    pub state_machine: String,
    /// The test case's name.
    pub name: String,
    states: BTreeMap<String, MockedResponse>,
    invocations: Mutex<BTreeMap<String, u64>>,
}

impl TestCase {
    /// True if the test case answers the state.
    pub fn covers(&self, state: &str) -> bool {
        self.states.contains_key(state)
    }

    /// The mocked answer for the next invocation of `state`, if the case mocks it.
    pub fn next_answer(&self, state: &str) -> Option<Result<Value, TaskError>> {
        let response = self.states.get(state)?;
        let n = {
            let mut inv = self.invocations.lock().ok()?;
            let c = inv.entry(state.to_string()).or_insert(0);
            let n = *c;
            *c += 1;
            n
        };
        Some(match response.answer(n) {
            Some(MockAnswer::Return(v)) => Ok(v.clone()),
            Some(MockAnswer::Throw(e)) => Err(e.clone()),
            None => Err(TaskError::new(
                "States.Runtime",
                format!(
                    "test case {:?} has no mocked response for invocation {n} of state {state:?}",
                    self.name
                ),
            )),
        })
    }
}

fn parse_range(key: &str) -> Option<(u64, u64)> {
    match key.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => key.trim().parse().ok().map(|n| (n, n)),
    }
}

fn answer(name: &str, key: &str, v: &Value) -> Result<MockAnswer, String> {
    let at = format!("MockedResponses.{name}.{key:?}");
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{at}: must be an object with Return or Throw"))?;
    match (obj.get("Return"), obj.get("Throw"), obj.len()) {
        (Some(r), None, 1) => Ok(MockAnswer::Return(r.clone())),
        (None, Some(t), 1) => {
            let text = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
            match (text("Error"), text("Cause")) {
                (Some(e), c) => Ok(MockAnswer::Throw(TaskError::new(e, c.unwrap_or_default()))),
                _ => Err(format!(
                    "{at}.Throw: needs an \"Error\" string (and may have \"Cause\")"
                )),
            }
        }
        _ => Err(format!(
            "{at}: must have exactly one of \"Return\" and \"Throw\""
        )),
    }
}

impl MockConfig {
    /// Parses a mock configuration file.
    ///
    /// # Errors
    /// Every problem, each naming where it is in the file.
    pub fn from_json(text: &str) -> Result<Self, Vec<String>> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| vec![format!("the mock configuration is not valid JSON: {e}")])?;
        let mut errs = Vec::new();
        let mut responses = BTreeMap::new();
        let empty = serde_json::Map::new();
        for (name, r) in v
            .get("MockedResponses")
            .and_then(Value::as_object)
            .unwrap_or(&empty)
        {
            let Some(r) = r.as_object() else {
                errs.push(format!(
                    "MockedResponses.{name}: must be an object of invocation numbers"
                ));
                continue;
            };
            let mut ranges: Vec<(u64, u64, MockAnswer)> = Vec::new();
            for (key, a) in r {
                let Some((lo, hi)) = parse_range(key) else {
                    errs.push(format!("MockedResponses.{name}.{key:?}: not an invocation number or range like \"1-2\""));
                    continue;
                };
                if ranges.iter().any(|(a, b, _)| lo <= *b && *a <= hi) {
                    errs.push(format!(
                        "MockedResponses.{name}.{key:?}: overlaps another invocation range"
                    ));
                    continue;
                }
                match answer(name, key, a) {
                    Ok(ans) => ranges.push((lo, hi, ans)),
                    Err(e) => errs.push(e),
                }
            }
            ranges.sort_by_key(|(a, _, _)| *a);
            responses.insert(name.clone(), MockedResponse { ranges });
        }
        let mut state_machines = BTreeMap::new();
        let Some(sms) = v.get("StateMachines").and_then(Value::as_object) else {
            errs.push("StateMachines: is required (state machine name → TestCases)".to_string());
            return Err(errs);
        };
        for (sm, body) in sms {
            let mut cases = BTreeMap::new();
            let Some(tcs) = body.get("TestCases").and_then(Value::as_object) else {
                errs.push(format!("StateMachines.{sm}.TestCases: is required"));
                continue;
            };
            for (case, states) in tcs {
                let mut mapping = BTreeMap::new();
                for (state, resp) in states.as_object().unwrap_or(&empty) {
                    match resp.as_str() {
                        Some(r) if responses.contains_key(r) => {
                            mapping.insert(state.clone(), r.to_string());
                        }
                        Some(r) => errs.push(format!(
                            "StateMachines.{sm}.TestCases.{case}.{state}: no mocked response named {r:?}"
                        )),
                        None => errs.push(format!(
                            "StateMachines.{sm}.TestCases.{case}.{state}: must name a mocked response"
                        )),
                    }
                }
                cases.insert(case.clone(), mapping);
            }
            state_machines.insert(sm.clone(), cases);
        }
        if errs.is_empty() {
            Ok(MockConfig {
                state_machines,
                responses,
            })
        } else {
            Err(errs)
        }
    }

    /// Finds a test case by name; `state_machine` picks among machines that share the name.
    ///
    /// # Errors
    /// A message listing the test cases there are.
    pub fn test_case(&self, state_machine: Option<&str>, name: &str) -> Result<TestCase, String> {
        let found: Vec<(&String, &BTreeMap<String, String>)> = self
            .state_machines
            .iter()
            .filter(|(sm, _)| state_machine.is_none_or(|want| want == sm.as_str()))
            .filter_map(|(sm, cases)| cases.get(name).map(|c| (sm, c)))
            .collect();
        match found.as_slice() {
            [(sm, mapping)] => Ok(TestCase {
                state_machine: (*sm).clone(),
                name: name.to_string(),
                states: mapping
                    .iter()
                    .filter_map(|(s, r)| self.responses.get(r).map(|r| (s.clone(), r.clone())))
                    .collect(),
                invocations: Mutex::default(),
            }),
            [] => {
                let all: Vec<String> = self
                    .state_machines
                    .iter()
                    .flat_map(|(sm, c)| c.keys().map(move |k| format!("{sm}/{k}")))
                    .collect();
                Err(format!(
                    "no test case {name:?}; the file has {}",
                    all.join(", ")
                ))
            }
            _ => Err(format!(
                "test case {name:?} exists for several state machines; name one with --state-machine"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_pick_answers_and_bad_files_are_refused() {
        let cfg = MockConfig::from_json(
            r#"{"StateMachines": {"M": {"TestCases": {"T": {"S": "R"}}}},
                "MockedResponses": {"R": {"0": {"Throw": {"Error": "E", "Cause": "c"}},
                                          "1-2": {"Return": 7}}}}"#,
        );
        let Ok(cfg) = cfg else { panic!("{cfg:?}") };
        let case = cfg.test_case(None, "T").expect("case");
        assert!(case.covers("S") && !case.covers("Other"));
        let answers: Vec<_> = (0..4).filter_map(|_| case.next_answer("S")).collect();
        assert_eq!(answers[0], Err(TaskError::new("E", "c")));
        assert_eq!(answers[1], Ok(serde_json::json!(7)));
        assert_eq!(answers[2], Ok(serde_json::json!(7)));
        assert!(
            answers[3]
                .as_ref()
                .is_err_and(|e| e.cause.contains("invocation 3"))
        );
        let bad = MockConfig::from_json(
            r#"{"StateMachines": {"M": {"TestCases": {"T": {"S": "Missing"}}}},
                "MockedResponses": {"R": {"0-1": {"Return": 1}, "1": {"Return": 2}, "x": {}}}}"#,
        );
        let errs = bad.err().unwrap_or_default();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            cfg.test_case(None, "Nope")
                .is_err_and(|e| e.contains("M/T"))
        );
    }
}
