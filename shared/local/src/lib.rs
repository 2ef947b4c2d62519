//! Embedded stand-ins for S3, DynamoDB, CloudWatch, SNS and the checkpoint store
