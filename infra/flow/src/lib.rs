//! Step Functions (ASL) interpreter and EventBridge-style schedules
