//! Network-namespace support for the end-to-end tests: [`in_own_netns`] (from the dev-only
//! `k1s-testns` crate, shared with the runtime's and the proxy's tests) and a look at the service
//! proxy's nft table from inside such a namespace.

#![allow(dead_code)]

use std::process::Command;

pub use k1s_testns::in_own_netns;

/// The service proxy's table `ip k1s` as `nft list` prints it, if it exists.
pub fn nft_table() -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "k1s"])
        .output()
        .expect("nft (nftables) must be installed");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
