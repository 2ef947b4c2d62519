//! SQL over the Parquet output (DataFusion), with the seed's Athena table
