//! k1s scheduler: assigns pending pods to nodes, as kube-scheduler's default profile would.
//!
//! Pods whose `spec.nodeName` is empty and whose `schedulerName` is `default-scheduler` (or unset)
//! are queued; each is filtered against every node ([`filter`]), placed on the least loaded node
//! that fits (ties by name), accounted at once in an in-memory assumed state ([`cache`]) and bound
//! through `pods/<name>/binding` with several binds in flight. A pod that fits nowhere stays
//! Pending with `PodScheduled=False` (`Unschedulable`) and a `FailedScheduling` event worded like
//! upstream's; it is retried when nodes or pods change, after a backoff, and at least every minute.

pub mod cache;
pub mod events;
pub mod filter;
pub mod quantity;
mod scheduler;

use k1s_apiserver::client::Client;
use k1s_controllers::informers::Informers;
use tokio_util::sync::CancellationToken;

pub use scheduler::SCHEDULER_NAME;

/// Runs the scheduler until `shutdown`, with informers of its own.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let informers = Informers::new(client.clone(), shutdown.clone());
    run_with(client, &informers, shutdown).await;
}

/// Runs the scheduler until `shutdown`, reading pods and nodes from the shared `informers` (the
/// controllers' caches: one list, watch and parse of every pod for the whole control plane).
pub async fn run_with(client: Client, informers: &Informers, shutdown: CancellationToken) {
    scheduler::Scheduler::start(client, informers, shutdown.clone()).await;
}
