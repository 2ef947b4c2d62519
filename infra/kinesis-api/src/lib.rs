//! A Kinesis-compatible HTTP endpoint over the embedded log (`shardline serve`).
//!
//! Anything that speaks Kinesis Data Streams — aws-sdk-rust, boto3, the AWS CLI, the Java SDK,
//! KPL and KCL — works against it with only an endpoint URL: `POST /` with
//! `X-Amz-Target: Kinesis_20131202.<Action>` and a body in AWS JSON 1.1
//! (`application/x-amz-json-1.1`) or AWS CBOR 1.1 (`application/x-amz-cbor-1.1`). Answers use the
//! request's encoding; errors are `{"__type", "message"}` with Kinesis's status and an
//! `X-Amzn-ErrorType` header, and validation errors carry Kinesis's wording.
//!
//! # Request pipeline (in Kinesis's order; see `dispatch`)
//! 1. the body is read under a size limit (413) and a time limit (408);
//! 2. method, content type and target are checked (`AccessDeniedException`,
//!    `UnknownOperationException`, `SerializationException`, in Kinesis's XML or JSON forms);
//! 3. the body is decoded (JSON or CBOR) into a [`value::Value`];
//! 4. with access keys configured, the SigV4 signature is verified (`sigv4`);
//! 5. the request is type-checked and validated against its shape (`validate`, `shape`);
//! 6. the action runs on the [`shardline_log::Log`] (`actions`).
//!
//! Invariants: no request can corrupt the log or stop the server — every failure is an error
//! answer to that request alone; the endpoint binds loopback unless configured otherwise; with
//! access keys configured no unsigned or wrongly signed request reaches an action.
//!
//! # Layout
//! - [`config`]: [`ServeConfig`], the `[serve]` settings.
//! - [`server`]: [`serve`]: the accept loop (hyper, HTTP/1.1 and HTTP/2), body limits, timeouts,
//!   graceful shutdown.
//! - `dispatch`: the request pipeline above, encoding of answers.
//! - [`value`]: the encoding-independent document; JSON reading and writing.
//! - [`cbor`]: CBOR reading and writing.
//! - `shape`: every action's request members and constraints.
//! - `validate`: type checks and constraint checks with Kinesis's messages.
//! - [`sigv4`]: signature verification.
//! - `actions`: the actions (streams, records, shards, tags, enhanced fan-out consumers).
//! - `subscribe`: SubscribeToShard's event stream; [`eventstream`]: its message encoding.
//! - [`error`]: [`ApiError`] and the mapping of log errors.

pub mod cbor;
pub mod config;
pub mod error;
pub mod eventstream;
pub mod server;
pub mod sigv4;
pub mod value;

mod actions;
mod dispatch;
mod shape;
mod subscribe;
mod validate;

pub use config::{AccessKey, ServeConfig};
pub use dispatch::{Endpoint, Request, Response};
pub use error::ApiError;
pub use server::{Running, serve};

/// The service name in `X-Amz-Target`.
pub const SERVICE: &str = "Kinesis_20131202";
/// AWS JSON 1.1.
pub const AMZ_JSON: &str = "application/x-amz-json-1.1";
/// AWS CBOR 1.1.
pub const AMZ_CBOR: &str = "application/x-amz-cbor-1.1";

/// Every action the endpoint serves.
pub const ACTIONS: &[&str] = &[
    "AddTagsToStream",
    "CreateStream",
    "DecreaseStreamRetentionPeriod",
    "DeleteStream",
    "DeregisterStreamConsumer",
    "DescribeLimits",
    "DescribeStream",
    "DescribeStreamConsumer",
    "DescribeStreamSummary",
    "GetRecords",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "ListShards",
    "ListStreamConsumers",
    "ListStreams",
    "ListTagsForStream",
    "MergeShards",
    "PutRecord",
    "PutRecords",
    "RegisterStreamConsumer",
    "RemoveTagsFromStream",
    "SplitShard",
    "SubscribeToShard",
    "UpdateShardCount",
];
