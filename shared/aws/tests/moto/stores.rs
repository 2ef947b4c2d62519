//! S3 multipart uploads, and the lease table seen as checkpoints and as leases.

use bytes::Bytes;
use shardline_core::conformance::unique;
use shardline_core::lease::{LeaseCheckpoint, LeaseStore};
use shardline_core::ports::{CheckpointKey, CheckpointStore, ObjectStore};
use shardline_core::{SequenceNumber, ShardId};

use crate::common::{backends, backends_with, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_above_the_threshold_go_up_in_parts() {
    let mut c = config();
    c.s3.multipart_threshold = 6 * 1024 * 1024;
    c.s3.part_size = 5 * 1024 * 1024;
    let b = backends_with(&c, None).await;
    let bucket = unique("multipart");
    b.objects.ensure_bucket(&bucket).await.unwrap();
    let body: Bytes = (0..12 * 1024 * 1024 + 17)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let calls = |action: &str| b.counters().calls("S3", action);
    let (puts, parts) = (calls("PutObject"), calls("UploadPart"));
    b.objects
        .put(
            &bucket,
            "big/object.parquet",
            body.clone(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    assert_eq!(
        calls("UploadPart") - parts,
        3,
        "12 MiB in 5 MiB parts is 3 parts"
    );
    assert_eq!(calls("CreateMultipartUpload"), 1);
    assert_eq!(calls("CompleteMultipartUpload"), 1);
    assert_eq!(
        calls("PutObject") - puts,
        0,
        "no single PutObject above the threshold"
    );
    assert_eq!(
        b.objects.get(&bucket, "big/object.parquet").await.unwrap(),
        Some(body),
        "the object reads back whole"
    );
    // At or under the threshold: one PutObject.
    b.objects
        .put(&bucket, "small", Bytes::from(vec![1u8; 1024]), "text/plain")
        .await
        .unwrap();
    assert_eq!(calls("PutObject") - puts, 1);
    assert_eq!(calls("UploadPart") - parts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_and_leases_are_one_item_in_the_kcl_schema() {
    let b = backends().await;
    let key = CheckpointKey {
        consumer: unique("kcl"),
        stream: "metrics".into(),
        shard: ShardId(3),
    };
    assert!(
        b.leases
            .create_lease_if_absent(&key, LeaseCheckpoint::TrimHorizon, vec![ShardId(1)])
            .await
            .unwrap()
    );
    assert_eq!(
        CheckpointStore::get(&b.leases, &key).await.unwrap(),
        None,
        "a sentinel is no checkpoint yet"
    );
    let taken = b.leases.take_lease(&key, "worker-a", 1).await.unwrap();
    let seq: SequenceNumber = "49590338271490256608559692538361571095921575989136588898"
        .parse()
        .unwrap();
    let cp = CheckpointStore::put(
        &b.leases,
        &key,
        &seq,
        Some("worker-a"),
        Some(taken.lease_counter),
    )
    .await
    .unwrap();
    assert_eq!(cp.lease_counter, 3);
    let lease = b.leases.get_lease(&key).await.unwrap().unwrap();
    assert_eq!(lease.checkpoint, LeaseCheckpoint::Sequence(seq));
    assert_eq!(lease.parent_shard_ids, vec![ShardId(1)]);
    assert_eq!(lease.owner_switches_since_checkpoint, 0);

    // The raw item carries KCL's attribute names and types.
    let item = b
        .clients
        .dynamodb
        .get_item()
        .table_name(&b.clients.config.resources.lease_table)
        .key(
            "leaseKey",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "{}:metrics:shardId-000000000003",
                key.consumer
            )),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    for (name, kind) in [
        ("checkpoint", "S"),
        ("checkpointSubSequenceNumber", "N"),
        ("leaseCounter", "N"),
        ("leaseOwner", "S"),
        ("ownerSwitchesSinceCheckpoint", "N"),
        ("parentShardId", "SS"),
    ] {
        let v = item
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {item:?}"));
        let ok = match kind {
            "S" => v.is_s(),
            "N" => v.is_n(),
            _ => v.is_ss(),
        };
        assert!(ok, "{name} must be {kind}: {v:?}");
    }
}
