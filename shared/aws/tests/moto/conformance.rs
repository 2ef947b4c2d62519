//! Every conformance suite of shardline-core, against the AWS adapters on moto: the same
//! assertions the embedded backends pass.

use shardline_core::conformance;

use crate::common::{Subscriber, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_object_store_conforms() {
    let b = backends().await;
    conformance::object_store(&b.objects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_checkpoint_store_conforms() {
    let b = backends().await;
    conformance::checkpoint_store(&b.leases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_lease_store_conforms() {
    let b = backends().await;
    conformance::lease_store(&b.leases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_item_table_conforms() {
    let b = backends().await;
    conformance::item_table(&b.table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_metric_publisher_conforms() {
    let b = backends().await;
    conformance::metric_publisher(&b.metrics).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_dead_letter_store_conforms() {
    let b = backends().await;
    conformance::dead_letter_store(&b.dead_letters).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_state_store_conforms() {
    let b = backends().await;
    conformance::state_store(&b.state).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suites_pass_twice_on_one_backend() {
    let b = backends().await;
    for _ in 0..2 {
        conformance::checkpoint_store(&b.leases).await;
        conformance::item_table(&b.table).await;
        conformance::dead_letter_store(&b.dead_letters).await;
        conformance::state_store(&b.state).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_notifier_conforms_on_a_standard_topic() {
    let b = backends().await;
    let name = conformance::unique("alerts");
    let arn = b.notifier.ensure_topic(&name).await.unwrap();
    let queue = Subscriber::subscribe(&b, &arn, &conformance::unique("alerts-q")).await;
    // By name: the notifier resolves the topic's ARN.
    conformance::notifier(&b.notifier, &name, || queue.delivered()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_notifier_conforms_on_a_fifo_topic() {
    let b = backends().await;
    let name = format!("{}.fifo", conformance::unique("alerts"));
    let arn = b.notifier.ensure_topic(&name).await.unwrap();
    let queue = Subscriber::subscribe(
        &b,
        &arn,
        &format!("{}.fifo", conformance::unique("alerts-q")),
    )
    .await;
    conformance::notifier(&b.notifier, &arn, || queue.delivered()).await;
}
