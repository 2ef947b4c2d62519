//! Parallel states: every branch gets the same input and runs concurrently; the result is
//! the branches' outputs as an array in branch order. The first branch error fails the
//! state and drops (cancels) the branches still running. Each branch has a variable scope
//! of its own that reads the enclosing one.

use super::executor::{Frame, Run};
use crate::asl::{State, StateMachine};
use crate::history::EventDetails;
use crate::registry::TaskError;
use serde_json::Value;

impl Run<'_> {
    pub(super) async fn parallel(
        &self,
        state: &State,
        branches: &[StateMachine],
        input: Value,
        frame: &mut Frame,
    ) -> Result<Value, TaskError> {
        let named = || EventDetails {
            name: Some(state.name.clone()),
            ..Default::default()
        };
        self.record(&mut frame.prev, "ParallelStateStarted", named());
        let runs = branches.iter().map(|b| {
            let f = Frame {
                prev: frame.prev,
                map_item: frame.map_item.clone(),
                vars: frame.vars.child(),
            };
            self.run_machine(b, input.clone(), f)
        });
        let outcome = futures::future::try_join_all(runs).await;
        self.resync(frame);
        match outcome {
            Ok(outputs) => {
                self.record(
                    &mut frame.prev,
                    "ParallelStateSucceeded",
                    EventDetails {
                        output: Some(Value::Array(outputs.clone())),
                        ..named()
                    },
                );
                Ok(Value::Array(outputs))
            }
            Err(e) => {
                self.record(
                    &mut frame.prev,
                    "ParallelStateFailed",
                    EventDetails {
                        error: Some(e.error.clone()),
                        cause: Some(e.cause.clone()),
                        ..named()
                    },
                );
                Err(e)
            }
        }
    }

    /// After concurrent work, continue the branch from the latest event.
    pub(super) fn resync(&self, frame: &mut Frame) {
        if let Some(last) = self.history.events().last() {
            frame.prev = last.id;
        }
    }
}
