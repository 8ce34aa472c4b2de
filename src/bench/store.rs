//! `k1s bench store`: the raw k1s store, without HTTP: the API scenarios' writes, list and watch
//! fan-out straight against [`Store`], for the side-by-side with etcd and to show what the API
//! layer adds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use k1s_store::{ListOptions, Store, StoreConfig, WriteOp};
use tokio::sync::mpsc;

use super::stats::{Client, Limit, Seen, drive, fanout};

#[derive(Args, Debug)]
pub struct StoreArgs {
    #[command(flatten)]
    pub load: crate::bench::Workload,
    /// Directory for the database file (default: a temporary dir under the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the store in memory (no fsync) instead of on disk.
    #[arg(long)]
    pub memory: bool,
    /// Most writes in the throughput run.
    #[arg(long, default_value_t = 200_000)]
    pub max_ops: u64,
}

struct Writer {
    store: Store,
    ns: &'static str,
    prefix: &'static str,
    payload: Arc<str>,
}

impl Client for Writer {
    async fn op(&mut self, i: u64) -> Result<()> {
        let name = format!("{}{i}", self.prefix);
        let value = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.ns, "labels": {"app": "k1s-bench"}},
            "data": {"payload": &*self.payload},
        });
        let key = format!("/registry/core/configmaps/{}/{name}", self.ns);
        self.store
            .write(WriteOp::Create { key, value })
            .await
            .map_err(|e| anyhow!("store write: {e}"))?;
        Ok(())
    }
}

pub async fn run(args: StoreArgs) -> Result<()> {
    super::api::print_header("store");
    let tmp;
    let path = if args.memory {
        None
    } else {
        let mut b = tempfile::Builder::new();
        b.prefix("k1s-bench-store-");
        tmp = match &args.dir {
            Some(d) => b.tempdir_in(d)?,
            None => b.tempdir()?,
        };
        Some(tmp.path().join("k1s.redb"))
    };
    println!(
        "store: {}",
        path.as_ref()
            .map_or("in memory".to_owned(), |p| p.display().to_string())
    );
    let path2 = path.clone();
    let store = tokio::task::spawn_blocking(move || {
        Store::open(StoreConfig {
            path,
            ..Default::default()
        })
    })
    .await?
    .map_err(|e| anyhow!("opening the store: {e}"))?;
    if let Some(dir) = path2.as_ref().and_then(|p| p.parent()) {
        fsync_baseline(dir)?;
    }
    let payload: Arc<str> = "x".repeat(args.load.payload).into();
    let writer = |ns, prefix| Writer {
        store: store.clone(),
        ns,
        prefix,
        payload: payload.clone(),
    };

    let run = drive(
        vec![writer("bench-c", "s-")],
        Limit {
            ops: args.load.count,
            duration: Duration::from_secs(300),
            warmup: 50,
        },
    )
    .await?;
    run.samples
        .report(
            "store write (1 writer, sequential)",
            run.ops,
            Some(run.wall),
        )
        .print();

    let clients = (0..args.load.clients.max(1))
        .map(|_| writer("bench-c", "t-"))
        .collect();
    let run = drive(
        clients,
        Limit {
            ops: args.max_ops,
            duration: args.load.duration,
            warmup: 10,
        },
    )
    .await?;
    run.samples
        .report(
            &format!("store write ({} writers)", args.load.clients),
            run.ops,
            Some(run.wall),
        )
        .print();

    let clients = (0..args.load.clients.max(1))
        .map(|_| writer("bench-l", "l-"))
        .collect();
    let fill = Limit {
        ops: args.load.list_objects,
        duration: Duration::from_secs(600),
        warmup: 0,
    };
    let run = drive(clients, fill).await?;
    if run.ops < args.load.list_objects {
        bail!(
            "filled only {} of {} objects",
            run.ops,
            args.load.list_objects
        );
    }
    let mut lister = Lister {
        store: store.clone(),
        items: 0,
    };
    lister.op(0).await?;
    if lister.items as u64 != args.load.list_objects {
        bail!(
            "list returned {} items, expected {}",
            lister.items,
            args.load.list_objects
        );
    }
    let items = lister.items;
    let run = drive(
        vec![lister],
        Limit {
            ops: args.load.lists,
            duration: Duration::from_secs(300),
            warmup: 2,
        },
    )
    .await?;
    run.samples
        .report(
            &format!("store list {items} objects"),
            run.ops,
            Some(run.wall),
        )
        .print();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let prefix = "/registry/core/configmaps/bench-w/";
    let from = store.revision();
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..args.load.watchers {
        let mut w = store
            .watch(prefix, from)
            .map_err(|e| anyhow!("store watch: {e}"))?;
        let tx = tx.clone();
        readers.spawn(async move {
            loop {
                match w.next().await {
                    Some(Ok(ev)) => {
                        let at = Instant::now();
                        let idx = ev
                            .kv
                            .key
                            .rsplit_once("/bw-")
                            .and_then(|(_, i)| i.parse().ok());
                        if let Some(idx) = idx
                            && tx.send(Seen::Event(idx, at)).is_err()
                        {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        let _ = tx.send(Seen::Ended(e.to_string()));
                        return;
                    }
                    None => {
                        let _ = tx.send(Seen::Ended("store closed".into()));
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut creator = writer("bench-w", "bw-");
    fanout(
        &mut creator,
        args.load.watchers,
        args.load.watch_events,
        &mut rx,
    )
    .await
    .context("store watch fan-out")?
    .print(
        &format!("store watch delivery ({} watchers)", args.load.watchers),
        "in process",
    );
    readers.abort_all();
    drop(creator);
    let s = store.clone();
    drop(store);
    tokio::task::spawn_blocking(move || s.shutdown()).await?;
    Ok(())
}

/// The disk's own latency for what every durable commit ends with: a 4 KiB write and an
/// fsync, 1,000 times, next to the store file.
fn fsync_baseline(dir: &std::path::Path) -> Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("fsync-probe");
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let block = [0x5au8; 4096];
    let mut samples = super::stats::Samples::with_capacity(1000);
    let t0 = Instant::now();
    for i in 0..1000u64 {
        f.seek(SeekFrom::Start((i % 64) * 4096))?;
        f.write_all(&block)?;
        let t = Instant::now();
        f.sync_data()?;
        samples.push(t.elapsed());
    }
    let wall = t0.elapsed();
    samples
        .report("fsync 4 KiB (disk baseline)", 1000, Some(wall))
        .print();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(())
}

struct Lister {
    store: Store,
    items: usize,
}

impl Client for Lister {
    async fn op(&mut self, _i: u64) -> Result<()> {
        let page = self
            .store
            .list("/registry/core/configmaps/bench-l/", ListOptions::default())
            .map_err(|e| anyhow!("store list: {e}"))?;
        self.items = page.items.len();
        Ok(())
    }
}
