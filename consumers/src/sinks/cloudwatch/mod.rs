//! The cloudwatch sink.
