//! Cross-crate integration tests: the whole pipeline on embedded backends in a temporary
//! data directory, checked through what a user sees (Parquet files, SQL, the table,
//! statistics, dead letters, the outbox, the flow's history). One module per area.

mod bad_input;
mod crash;
mod end_to_end;
mod flow;
mod interop;
mod replay;
