//! Amazon States Language definitions: the model, parsing and validation.
//!
//! Two questions are kept apart, as AWS keeps them apart:
//! - [`StateMachine::from_json`] answers "is this valid ASL?" (what `CreateStateMachine`
//!   checks): structure, fields per state type and query language, paths, templates,
//!   JSONata expressions, transitions, unique state names. Problems are errors.
//! - [`StateMachine::unresolved_resources`] answers "can it run here?": which Task resources
//!   have no handler in a [`HandlerRegistry`]. That is not a defect of the definition; the
//!   CLI reports it as a warning on `flow validate` and names the resources on `flow run`.
//!
//! Both report [`ValidationError`]s that name the state and field.
//!
//! Layout: `model` (the parsed types), `parse` (states), `parse_map` (Map's fields),
//! `fields` (typed field access), `choice` (Choice rules), `validate` (whole-definition
//! checks).

pub mod choice;
mod fields;
pub mod model;
mod parse;
pub mod parse_map;
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
        let machine = parse::parse_machine(value, None, "", QueryLanguage::JsonPath, &mut errs);
        if let Some(m) = &machine {
            validate::check_graph(m, None, &mut errs);
            validate::check_unique_names(m, &mut errs);
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
        let errs = self.unresolved_resources(registry, &|_| false);
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The Task states whose resource has no handler in `registry`, skipping the states for
    /// which `covered(state name)` is true (e.g. states a mock test case answers).
    pub fn unresolved_resources(
        &self,
        registry: &HandlerRegistry,
        covered: &dyn Fn(&str) -> bool,
    ) -> Vec<ValidationError> {
        let mut errs = Errors::default();
        validate::check_resources(self, registry, covered, &mut errs);
        errs.0
    }

    /// Every state of the definition, nested branches and item processors included.
    pub fn all_states(&self) -> Vec<&State> {
        let mut out = Vec::new();
        validate::collect_states(self, &mut out);
        out
    }
}
