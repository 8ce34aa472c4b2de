//! k1s simulated nodes: registers Nodes `k1s-sim-0 … k1s-sim-<N-1>` and plays their kubelet, so
//! controllers, the scheduler and scale benchmarks run without containers.
//!
//! For each node the simulator posts a healthy kubelet's Node status, renews the node's Lease in
//! `kube-node-lease` and its Ready heartbeat every 10 s. For pods bound to its nodes it reports
//! what a kubelet would once the containers started: phase Running, the five pod conditions, host
//! and pod addresses (unique per node, from `10.42.<node>.0/24`), start time and container
//! statuses; a container with a readiness probe turns ready after the probe's initial delay, one
//! without is ready at once. A pod being deleted is finished at once (deleted with grace period 0),
//! as a kubelet does once its containers stopped.

mod agent;
pub mod capacity;
pub mod node;
pub mod pod;

use k1s_apiserver::client::Client;
use k1s_controllers::informers::Informers;
use tokio_util::sync::CancellationToken;

pub use capacity::{Capacity, CapacityError};

/// Registers `nodes` simulated nodes with `capacity` each and serves them until `shutdown`, with a
/// pod informer of its own.
pub async fn run(client: Client, nodes: usize, capacity: Capacity, shutdown: CancellationToken) {
    let informers = Informers::new(client.clone(), shutdown.clone());
    run_with(client, &informers, nodes, capacity, shutdown).await;
}

/// As [`run`], reading pods from the shared `informers` (the controllers' pod cache).
pub async fn run_with(
    client: Client,
    informers: &Informers,
    nodes: usize,
    capacity: Capacity,
    shutdown: CancellationToken,
) {
    agent::Sim::run(client, informers, nodes, capacity, shutdown).await;
}
