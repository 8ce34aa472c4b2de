//! `k1s bench api`: creates, LIST and watch fan-out over HTTPS against a k1s server.
//!
//! Each run works in fresh namespaces named `k1s-bench-<unix time>-<pid>-{c,l,w}` and leaves
//! the objects it created there (use a throw-away server, e.g. `--spawn`).
//!
//! Scenarios:
//! - `create`: one client, one keep-alive connection, sequential `POST configmaps`.
//! - `throughput`: `--clients` clients, one connection each, creating as fast as they can.
//! - `list`: fills a namespace with `--list-objects` configmaps, then times full LISTs of it.
//! - `watch`: opens `--watchers` watches on one namespace, then creates objects one at a time
//!   and measures, for every watcher, the time from the create's response to the event's arrival.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use tokio::sync::mpsc;

use super::client::{Conn, Endpoint, Proto, ServerFlags, snippet};
use super::spawn;
use super::stats::{Client, Limit, Seen, drive, fanout};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Create,
    Throughput,
    List,
    Watch,
}

#[derive(Args, Debug)]
pub struct ApiArgs {
    #[command(flatten)]
    pub load: crate::bench::Workload,
    #[command(flatten)]
    pub server: ServerFlags,
    /// Start `k1s server` on a temporary durable data dir for this run, and stop it afterwards.
    #[arg(long, conflicts_with_all = ["kubeconfig", "server"])]
    pub spawn: bool,
    /// The k1s binary for --spawn (default: this executable).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Scenarios to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "create,throughput,list,watch"
    )]
    pub only: Vec<Scenario>,
    /// Most creates in `throughput`, whichever of this and --duration ends first.
    #[arg(long, default_value_t = 100_000)]
    pub max_ops: u64,
    /// Protocol of the watch connections: h2 multiplexes --streams-per-conn watches per
    /// connection, h1 opens one connection per watch.
    #[arg(long, value_enum, default_value = "h2")]
    pub watch_proto: Proto,
    /// Watches per HTTP/2 connection (the server allows 200 concurrent streams).
    #[arg(long, default_value_t = 100)]
    pub streams_per_conn: usize,
    /// Protocol of the create and LIST connections.
    #[arg(long, value_enum, default_value = "h1")]
    pub proto: Proto,
}

/// `5s`, `500ms`, `2m` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

pub async fn run(args: ApiArgs) -> Result<()> {
    let mut spawned = None;
    let _tmp;
    let ep = if args.spawn {
        let bin = spawn::binary(&args.bin)?;
        let tmp = tempfile::Builder::new()
            .prefix("k1s-bench-api-")
            .tempdir()?;
        let (server, _) = spawn::start(&bin, tmp.path(), &[]).await?;
        println!(
            "spawned {} server (pid {}) on data dir {} at {}",
            bin.display(),
            server.pid,
            tmp.path().display(),
            server.url
        );
        let ep = super::client::endpoint_from_kubeconfig(&server.kubeconfig)?;
        spawned = Some(server);
        _tmp = tmp;
        ep
    } else {
        args.server.endpoint()?.ok_or_else(|| {
            anyhow!("no server: pass --kubeconfig, --server URL --ca PEM [--token T], set KUBECONFIG, or use --spawn")
        })?
    };
    print_header("api");
    let result = scenarios(&args, &ep).await;
    if let Some(server) = spawned {
        if let Ok((rss, hwm)) = server.rss_kib() {
            println!(
                "server RSS after the run: {} (peak {})",
                spawn::mib(rss),
                spawn::mib(hwm)
            );
        }
        server.stop().await?;
    }
    result
}

async fn scenarios(args: &ApiArgs, ep: &Endpoint) -> Result<()> {
    let base = format!(
        "k1s-bench-{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        std::process::id()
    );
    let payload: Arc<str> = "x".repeat(args.load.payload).into();
    let mut admin = ep.connect(args.proto).await?;
    admin
        .call(Method::GET, "/version", None)
        .await
        .context("the server does not answer /version")?;
    for s in [
        Scenario::Create,
        Scenario::Throughput,
        Scenario::List,
        Scenario::Watch,
    ] {
        if !args.only.contains(&s) {
            continue;
        }
        match s {
            Scenario::Create => {
                let ns = ensure_namespace(&mut admin, &format!("{base}-c")).await?;
                let c = CreateClient::new(ep, args.proto, &ns, "s-", &payload).await?;
                let limit = Limit {
                    ops: args.load.count,
                    duration: Duration::from_secs(300),
                    warmup: 50,
                };
                let run = drive(vec![c], limit).await?;
                run.samples
                    .report("create (1 client, sequential)", run.ops, Some(run.wall))
                    .print();
            }
            Scenario::Throughput => {
                let ns = ensure_namespace(&mut admin, &format!("{base}-c")).await?;
                let clients =
                    create_clients(ep, args.proto, &ns, "t-", &payload, args.load.clients).await?;
                let limit = Limit {
                    ops: args.max_ops,
                    duration: args.load.duration,
                    warmup: 10,
                };
                let run = drive(clients, limit).await?;
                run.samples
                    .report(
                        &format!("create ({} clients)", args.load.clients),
                        run.ops,
                        Some(run.wall),
                    )
                    .print();
            }
            Scenario::List => list(args, ep, &mut admin, &format!("{base}-l"), &payload).await?,
            Scenario::Watch => watch(args, ep, &mut admin, &format!("{base}-w"), &payload).await?,
        }
    }
    Ok(())
}

/// Date, machine load and the binary's version, so a figure can be put in context.
pub fn print_header(what: &str) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "k1s bench {what} ({} {}) at unix time {}; {cores} cores, load average {}",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        load.join(" ")
    );
}

async fn ensure_namespace(conn: &mut Conn, name: &str) -> Result<String> {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
    let (status, resp) = conn
        .call_status(Method::POST, "/api/v1/namespaces", Some(Bytes::from(body)))
        .await?;
    if !status.is_success() && status != StatusCode::CONFLICT {
        bail!("creating namespace {name}: {status}: {}", snippet(&resp));
    }
    Ok(name.to_owned())
}

fn configmap(name: &str, payload: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"app":"k1s-bench"}}}},"data":{{"payload":"{payload}"}}}}"#
    ))
}

/// Creates configmaps named `<prefix><i>` in one namespace over one connection.
struct CreateClient {
    conn: Conn,
    path: String,
    prefix: &'static str,
    payload: Arc<str>,
}

impl CreateClient {
    async fn new(
        ep: &Endpoint,
        proto: Proto,
        ns: &str,
        prefix: &'static str,
        payload: &Arc<str>,
    ) -> Result<Self> {
        Ok(CreateClient {
            conn: ep.connect(proto).await?,
            path: format!("/api/v1/namespaces/{ns}/configmaps"),
            prefix,
            payload: payload.clone(),
        })
    }
}

impl Client for CreateClient {
    async fn op(&mut self, i: u64) -> Result<()> {
        let body = configmap(&format!("{}{i}", self.prefix), &self.payload);
        self.conn.call(Method::POST, &self.path, Some(body)).await?;
        Ok(())
    }
}

async fn create_clients(
    ep: &Endpoint,
    proto: Proto,
    ns: &str,
    prefix: &'static str,
    payload: &Arc<str>,
    n: usize,
) -> Result<Vec<CreateClient>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        v.push(CreateClient::new(ep, proto, ns, prefix, payload).await?);
    }
    Ok(v)
}

struct ListClient {
    conn: Conn,
    path: String,
    bytes: u64,
}

impl Client for ListClient {
    async fn op(&mut self, _i: u64) -> Result<()> {
        let body = self.conn.call(Method::GET, &self.path, None).await?;
        self.bytes = body.len() as u64;
        Ok(())
    }
}

async fn list(
    args: &ApiArgs,
    ep: &Endpoint,
    admin: &mut Conn,
    ns: &str,
    payload: &Arc<str>,
) -> Result<()> {
    let ns = ensure_namespace(admin, ns).await?;
    let clients = create_clients(ep, args.proto, &ns, "l-", payload, args.load.clients).await?;
    let fill = Limit {
        ops: args.load.list_objects,
        duration: Duration::from_secs(600),
        warmup: 0,
    };
    let run = drive(clients, fill).await?;
    if run.ops < args.load.list_objects {
        bail!(
            "filled only {} of {} objects within {:?}",
            run.ops,
            args.load.list_objects,
            fill.duration
        );
    }
    run.samples
        .report(
            &format!("create ({} clients, LIST fill)", args.load.clients),
            run.ops,
            Some(run.wall),
        )
        .print();

    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let mut conn = ep.connect(args.proto).await?;
    let first = conn.call(Method::GET, &path, None).await?;
    let items = serde_json::from_slice::<serde_json::Value>(&first)
        .context("the LIST response is not JSON")?
        .get("items")
        .and_then(|i| i.as_array().map(|a| a.len()))
        .ok_or_else(|| anyhow!("the LIST response has no items"))?;
    if items as u64 != args.load.list_objects {
        bail!(
            "LIST returned {items} items, expected {}",
            args.load.list_objects
        );
    }
    let c = ListClient {
        conn,
        path,
        bytes: 0,
    };
    let limit = Limit {
        ops: args.load.lists,
        duration: Duration::from_secs(300),
        warmup: 2,
    };
    let run = drive(vec![c], limit).await?;
    run.samples
        .report(&format!("LIST {items} configmaps"), run.ops, Some(run.wall))
        .note(format!("{:.1} MB per response", first.len() as f64 / 1e6))
        .print();
    Ok(())
}

async fn watch(
    args: &ApiArgs,
    ep: &Endpoint,
    admin: &mut Conn,
    ns: &str,
    payload: &Arc<str>,
) -> Result<()> {
    let ns = ensure_namespace(admin, ns).await?;
    let list_path = format!("/api/v1/namespaces/{ns}/configmaps");
    let listed = admin
        .call(Method::GET, &format!("{list_path}?limit=1"), None)
        .await?;
    let rv = serde_json::from_slice::<serde_json::Value>(&listed)?
        .pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| anyhow!("the LIST response has no metadata.resourceVersion"))?;
    let watch_path = format!("{list_path}?watch=1&resourceVersion={rv}&timeoutSeconds=3600");

    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    let mut readers = tokio::task::JoinSet::new();
    let opened = Instant::now();
    let mut conns: Vec<Conn> = Vec::new();
    let mut opening = tokio::task::JoinSet::new();
    for w in 0..args.load.watchers {
        let mut conn = match args.watch_proto {
            Proto::Http1 => ep
                .connect(Proto::Http1)
                .await
                .with_context(|| format!("watch connection {w}"))?,
            Proto::Http2 => {
                if w % args.streams_per_conn.max(1) == 0 {
                    conns.push(
                        ep.connect(Proto::Http2)
                            .await
                            .with_context(|| format!("watch connection for watcher {w}"))?,
                    );
                }
                conns
                    .last()
                    .and_then(Conn::stream)
                    .ok_or_else(|| anyhow!("no HTTP/2 connection"))?
            }
        };
        let path = watch_path.clone();
        opening.spawn(async move {
            let resp = conn.send(Method::GET, &path, None).await?;
            if resp.status() != StatusCode::OK {
                let status = resp.status();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                bail!("watch: {status}: {}", snippet(&body));
            }
            // The connection must outlive the stream (HTTP/1.1 owns it here).
            anyhow::Ok((conn, resp.into_body()))
        });
    }
    let mut held = Vec::with_capacity(args.load.watchers);
    while let Some(res) = opening.join_next().await {
        let (conn, body) = res.map_err(|e| anyhow!("watch task: {e}"))??;
        held.push(conn);
        let tx = tx.clone();
        readers.spawn(read_watch(body, tx));
    }
    drop(tx);
    println!(
        "opened {} watches over {} {} connections in {:.0} ms",
        args.load.watchers,
        if args.watch_proto == Proto::Http2 {
            conns.len()
        } else {
            args.load.watchers
        },
        if args.watch_proto == Proto::Http2 {
            "HTTP/2"
        } else {
            "HTTP/1.1"
        },
        opened.elapsed().as_secs_f64() * 1e3
    );

    let mut creator = CreateClient::new(ep, args.proto, &ns, "bw-", payload).await?;
    let proto = match args.watch_proto {
        Proto::Http2 => format!("{} h2 conns", conns.len()),
        Proto::Http1 => "h1 conn each".to_owned(),
    };
    fanout(
        &mut creator,
        args.load.watchers,
        args.load.watch_events,
        &mut rx,
    )
    .await?
    .print(
        &format!("watch delivery ({} watchers)", args.load.watchers),
        &proto,
    );
    readers.abort_all();
    drop(held);
    Ok(())
}

/// Reads one watch stream, reporting every ADDED `bw-<i>` object with its arrival time.
async fn read_watch(mut body: hyper::body::Incoming, tx: mpsc::UnboundedSender<Seen>) {
    let mut buf: Vec<u8> = Vec::new();
    let end = loop {
        let frame = match body.frame().await {
            None => break "stream ended".to_owned(),
            Some(Err(e)) => break format!("stream error: {e}"),
            Some(Ok(f)) => f,
        };
        let at = Instant::now();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for line in super::client::lines(&mut buf, &data) {
            if line.starts_with(br#"{"type":"ERROR""#) {
                let _ = tx.send(Seen::Ended(snippet(&line)));
                return;
            }
            if !line.starts_with(br#"{"type":"ADDED""#) {
                continue;
            }
            if let Some(idx) = index_after(&line, br#""name":"bw-"#)
                && tx.send(Seen::Event(idx, at)).is_err()
            {
                return;
            }
        }
    };
    let _ = tx.send(Seen::Ended(end));
}

/// The decimal number right after the first occurrence of `marker` in `hay`.
pub fn index_after(hay: &[u8], marker: &[u8]) -> Option<u64> {
    let start = hay.windows(marker.len()).position(|w| w == marker)? + marker.len();
    let digits = hay[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&hay[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn index() {
        let line = br#"{"type":"ADDED","object":{"metadata":{"name":"bw-42","namespace":"x"}}}"#;
        assert_eq!(index_after(line, br#""name":"bw-"#), Some(42));
        assert_eq!(index_after(line, br#""name":"zz-"#), None);
    }
}
