//! Workflow variables (`Assign`, `$name`) and their scopes, in both query languages.
//!
//! Rules (AWS's):
//! - The top-level states share one scope. Each Parallel branch and each inline Map
//!   iteration runs in a scope of its own that can read the outer scopes; what it assigns
//!   stays in its own scope (results leave a branch only through its output). A distributed
//!   Map's iterations cannot read the outer scopes at all.
//! - Every reference in a state reads the values as they were when the state was entered;
//!   the state's `Assign` takes effect when the state finishes (so `Assign: {"a.$": "$b",
//!   "b.$": "$a"}` swaps).
//! - One `Assign` may hold at most [`MAX_ASSIGN_BYTES`] of JSON, and the variables of an
//!   execution's scope chain at most [`MAX_TOTAL_BYTES`]; beyond either the state fails with
//!   `States.DataLimitExceeded`.

use crate::registry::TaskError;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// Largest `Assign` (serialized JSON of all its values).
pub const MAX_ASSIGN_BYTES: usize = 256 * 1024;
/// Largest total of all variables visible in one scope chain.
pub const MAX_TOTAL_BYTES: usize = 10 * 1024 * 1024;

/// One scope of variables.
#[derive(Debug, Default)]
pub struct Scope {
    parent: Option<Arc<Scope>>,
    values: Mutex<Map<String, Value>>,
}

impl Scope {
    /// The execution's top-level scope.
    pub fn root() -> Arc<Self> {
        Arc::default()
    }

    /// A nested scope that can read this one (a Parallel branch or inline Map iteration).
    pub fn child(self: &Arc<Self>) -> Arc<Self> {
        Arc::new(Scope {
            parent: Some(self.clone()),
            values: Mutex::default(),
        })
    }

    /// Every variable visible here, inner scopes shadowing outer ones.
    pub fn snapshot(&self) -> Map<String, Value> {
        let mut out = match &self.parent {
            Some(p) => p.snapshot(),
            None => Map::new(),
        };
        if let Ok(values) = self.values.lock() {
            for (k, v) in values.iter() {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// Stores the values of an `Assign` in this scope.
    ///
    /// # Errors
    /// `States.DataLimitExceeded` when the `Assign` or the resulting total is too large.
    pub fn assign(&self, assigned: Map<String, Value>) -> Result<(), TaskError> {
        let size: usize = assigned.values().map(json_len).sum();
        if size > MAX_ASSIGN_BYTES {
            return Err(TaskError::new(
                "States.DataLimitExceeded",
                format!(
                    "The Assign field's values are {size} bytes, over the 256 KiB limit ({MAX_ASSIGN_BYTES} bytes)."
                ),
            ));
        }
        let mut after = self.snapshot();
        after.extend(assigned.clone());
        let total: usize = after.values().map(json_len).sum();
        if total > MAX_TOTAL_BYTES {
            return Err(TaskError::new(
                "States.DataLimitExceeded",
                format!(
                    "The execution's variables would be {total} bytes, over the 10 MiB limit ({MAX_TOTAL_BYTES} bytes)."
                ),
            ));
        }
        if let Ok(mut values) = self.values.lock() {
            values.extend(assigned);
        }
        Ok(())
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inner_scopes_read_outer_ones_and_keep_their_own_assignments() {
        let root = Scope::root();
        let mut a = Map::new();
        a.insert("x".into(), json!(1));
        assert!(root.assign(a).is_ok());
        let inner = root.child();
        let mut b = Map::new();
        b.insert("x".into(), json!(2));
        b.insert("y".into(), json!(3));
        assert!(inner.assign(b).is_ok());
        assert_eq!(inner.snapshot().get("x"), Some(&json!(2)));
        assert_eq!(root.snapshot().get("x"), Some(&json!(1)));
        assert_eq!(root.snapshot().get("y"), None);
        let mut big = Map::new();
        big.insert("z".into(), json!("a".repeat(MAX_ASSIGN_BYTES)));
        assert!(
            root.assign(big)
                .is_err_and(|e| e.error == "States.DataLimitExceeded")
        );
    }
}
