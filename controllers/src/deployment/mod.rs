//! Deployment controller (in progress).

use k1s_apiserver::client::Client;
use tokio_util::sync::CancellationToken;

/// Runs the Deployment controller until `shutdown`.
pub async fn run(_client: Client, shutdown: CancellationToken) {
    shutdown.cancelled().await;
}
