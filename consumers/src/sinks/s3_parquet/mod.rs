//! The s3_parquet sink.
