//! DynamoDB: the item table, sink state, and shard leases with checkpoints.
//!
//! # Layout
//! - `attr`: Shardline's attribute values to the SDK's and back.
//! - `tables`: creating a table (on-demand capacity) and checking an existing one's key schema.
//! - [`DynamoItemTable`] (`items`): the [`shardline_core::ports::ItemTable`] port.
//! - [`DynamoStateStore`] (`state`): the [`shardline_core::ports::StateStore`] port.
//! - [`DynamoLeaseTable`] (`leases`): [`shardline_core::ports::CheckpointStore`] and
//!   [`shardline_core::lease::LeaseStore`] on one table in the KCL lease schema.

mod attr;
mod items;
mod leases;
mod state;
pub(crate) mod tables;

pub use items::DynamoItemTable;
pub use leases::DynamoLeaseTable;
pub use state::DynamoStateStore;
pub use tables::ensure_table;

use crate::error::{Call, Service};

fn call<'a>(region: &'a str, action: &'a str, table: &str) -> Call<'a> {
    Call {
        service: Service::DynamoDb,
        action,
        target: format!("table \"{table}\""),
        region,
    }
}
