//! The lease store suite against the in-memory implementation.
#![cfg(feature = "conformance")]

#[tokio::test]
async fn memory_lease_store_conforms() {
    let store = shardline_core::lease::MemoryLeaseStore::new();
    shardline_core::conformance::lease_store(&store).await;
}
