//! Amazon States Language definitions: the model, parsing and validation.
//!
//! [`StateMachine::from_json`] parses and checks the structure (collecting every problem);
//! [`StateMachine::validate`] additionally asks a [`HandlerRegistry`] whether every Task
//! resource can be served. Both report [`ValidationError`]s that name the state and field.

pub mod choice;
mod fields;
pub mod model;
mod parse;
mod validate;

pub use model::*;
pub use parse::ValidationError;

use crate::registry::HandlerRegistry;
use parse::Errors;

impl StateMachine {
    /// Parses a definition and checks its structure.
    ///
    /// # Errors
    /// Every problem found, each naming the state and field.
    pub fn from_json(text: &str) -> Result<Self, Vec<ValidationError>> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            vec![ValidationError {
                state: None,
                field: "(document)".to_string(),
                message: format!("the definition is not valid JSON: {e}"),
            }]
        })?;
        Self::from_value(&value)
    }

    /// As [`StateMachine::from_json`], from parsed JSON.
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, Vec<ValidationError>> {
        let mut errs = Errors::default();
        let machine = parse::parse_machine(value, None, "", &mut errs);
        if let Some(m) = &machine {
            validate::check_graph(m, None, &mut errs);
        }
        match machine {
            Some(m) if errs.0.is_empty() => Ok(m),
            _ => Err(errs.0),
        }
    }

    /// Checks that every Task resource resolves in `registry`.
    ///
    /// # Errors
    /// One error per unresolvable resource.
    pub fn validate(&self, registry: &HandlerRegistry) -> Result<(), Vec<ValidationError>> {
        let mut errs = Errors::default();
        validate::check_resources(self, registry, &mut errs);
        if errs.0.is_empty() {
            Ok(())
        } else {
            Err(errs.0)
        }
    }
}
