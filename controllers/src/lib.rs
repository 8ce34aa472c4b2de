//! k1s controllers: level-triggered reconcilers driven by informers, writing through the in-process
//! API client, as kube-controller-manager's controllers do.

pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod gc;
pub mod replicaset;
pub mod rootca;
pub mod runtime;
pub mod serviceaccount;
