//! API calls per service and action: AWS bills per request, so batching is a cost feature,
//! and these counts show what it saves (`up` shows them per 1,000 events).
//!
//! Every client carries a [`CountCalls`] interceptor that counts each request put on the
//! wire, SDK retries included (each is billed), by the service and operation name the SDK
//! records for it (`Kinesis`/`PutRecords`, `DynamoDB`/`BatchWriteItem`, ...).
//!
//! # Invariants
//! - One count per transmitted attempt; a request that fails before it is sent (bad input
//!   refused by the adapter, no credentials) is not counted.
//! - Counts only grow; [`ApiCounters::snapshot`] is a consistent copy.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Calls of one action of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiCallCount {
    /// The service, as the SDK names it (`Kinesis`, `S3`, `DynamoDB`, `CloudWatch`, `SNS`).
    pub service: String,
    /// The action (`PutRecords`, `BatchWriteItem`, ...).
    pub action: String,
    /// Requests sent, retries included.
    pub calls: u64,
}

/// Call counts shared by every client of one set of backends.
#[derive(Debug, Default)]
pub struct ApiCounters {
    counts: Mutex<BTreeMap<(String, String), u64>>,
}

impl ApiCounters {
    /// Fresh counters.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts one request.
    pub fn record(&self, service: &str, action: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            match counts.get_mut(&(service.to_string(), action.to_string())) {
                Some(n) => *n += 1,
                None => {
                    counts.insert((service.to_string(), action.to_string()), 1);
                }
            }
        }
    }

    /// Every (service, action) called so far, sorted.
    pub fn snapshot(&self) -> Vec<ApiCallCount> {
        self.counts
            .lock()
            .map(|counts| {
                counts
                    .iter()
                    .map(|((service, action), calls)| ApiCallCount {
                        service: service.clone(),
                        action: action.clone(),
                        calls: *calls,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Calls of one action (0 if never called).
    pub fn calls(&self, service: &str, action: &str) -> u64 {
        self.counts
            .lock()
            .ok()
            .and_then(|c| c.get(&(service.to_string(), action.to_string())).copied())
            .unwrap_or(0)
    }

    /// Calls per service, sorted by service.
    pub fn per_service(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for c in self.snapshot() {
            *out.entry(c.service).or_insert(0) += c.calls;
        }
        out
    }

    /// Calls per service for every 1,000 of `events` (what `up`'s summary shows).
    pub fn per_thousand_events(&self, events: u64) -> BTreeMap<String, f64> {
        self.per_service()
            .into_iter()
            .map(|(s, calls)| (s, calls as f64 * 1000.0 / events.max(1) as f64))
            .collect()
    }
}

/// The interceptor that counts a client's requests.
#[derive(Debug, Clone)]
pub struct CountCalls {
    counters: Arc<ApiCounters>,
}

impl CountCalls {
    /// Counts into `counters`.
    pub fn new(counters: Arc<ApiCounters>) -> Self {
        CountCalls { counters }
    }
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "ShardlineCountCalls"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.counters.record(meta.service(), meta.name());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_action_and_service() {
        let c = ApiCounters::new();
        c.record("Kinesis", "PutRecords");
        c.record("Kinesis", "PutRecords");
        c.record("Kinesis", "GetRecords");
        c.record("DynamoDB", "BatchWriteItem");
        assert_eq!(c.calls("Kinesis", "PutRecords"), 2);
        assert_eq!(c.calls("S3", "PutObject"), 0);
        assert_eq!(c.per_service().get("Kinesis"), Some(&3));
        assert_eq!(c.per_thousand_events(500).get("DynamoDB"), Some(&2.0));
        assert_eq!(c.snapshot().len(), 3);
    }
}
