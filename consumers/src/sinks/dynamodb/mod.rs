//! The dynamodb sink.
