//! k1s controllers: level-triggered reconcilers driven by informers, writing through the in-process
//! API client, as kube-controller-manager's controllers do.

pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod gc;
pub mod informers;
pub mod projection;
pub mod replicaset;
pub mod rootca;
pub mod runtime;
pub mod serviceaccount;
pub mod worker;

use k1s_apiserver::client::Client;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts every controller on one set of shared informers (one cache per resource) until
/// `shutdown`; `ca_pem` is the cluster CA the root CA publisher spreads.
pub fn start_all(
    client: Client,
    ca_pem: String,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let informers = informers::Informers::new(client.clone(), shutdown.clone());
    start_all_with(client, &informers, ca_pem, shutdown)
}

/// As [`start_all`], with caches from `informers`, which the scheduler and the node simulator can
/// share (one list, watch, parse and cache of every pod in the process).
pub fn start_all_with(
    client: Client,
    informers: &informers::Informers,
    ca_pem: String,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let (c, i, s) = (&client, informers, &shutdown);
    vec![
        spawn_with(c, i, s, |c, i, s| async move {
            deployment::run_with(c, &i, s).await
        }),
        spawn_with(c, i, s, |c, i, s| async move {
            replicaset::run_with(c, &i, s).await
        }),
        spawn_with(
            c,
            i,
            s,
            |c, i, s| async move { gc::run_with(c, &i, s).await },
        ),
        spawn_with(c, i, s, |c, i, s| async move {
            serviceaccount::run_with(c, &i, s).await
        }),
        spawn_with(c, i, s, |c, i, s| async move {
            endpoints::run_with(c, &i, s).await
        }),
        spawn_with(c, i, s, move |c, i, s| async move {
            rootca::run_with(c, &i, ca_pem, s).await
        }),
        // Budgets are few: the disruption controller keeps its own small PDB cache and reads
        // pods by selector, so it takes no shared pod cache.
        tokio::spawn(disruption::run(client.clone(), shutdown.clone())),
    ]
}

fn spawn_with<F, Fut>(
    client: &Client,
    informers: &informers::Informers,
    shutdown: &CancellationToken,
    f: F,
) -> JoinHandle<()>
where
    F: FnOnce(Client, informers::Informers, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(f(client.clone(), informers.clone(), shutdown.clone()))
}
