//! The consumer runtime and the four sinks: S3 Parquet, DynamoDB, CloudWatch, SNS alerts
