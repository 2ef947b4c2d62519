//! The embedded, durable, sharded Kinesis-style log
