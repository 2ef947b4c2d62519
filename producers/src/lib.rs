//! Metric collectors (synthetic, host) and the batching stream producer
