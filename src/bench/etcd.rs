//! `k1s bench etcd`: etcd 3.4 through its gRPC JSON gateway (`/v3/kv/put`, `/v3/kv/range`,
//! `/v3/watch`) over plain HTTP/1.1, with the same operations as `k1s bench store` and
//! `k1s bench api`: sequential puts, puts from concurrent clients, a range over 10,000 keys and a
//! watch fan-out. Values are the same configmap JSON the other benchmarks write.
//!
//! The gateway adds JSON/base64 and a loopback gRPC hop inside etcd, as the API server's HTTP
//! layer adds TLS and JSON on the k1s side; `k1s bench store` has neither.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use clap::Args;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use tokio::sync::mpsc;

use super::client::{Conn, Credentials, Endpoint, Proto, snippet};
use super::stats::{Client, Limit, Seen, drive, fanout};

#[derive(Args, Debug)]
pub struct EtcdArgs {
    #[command(flatten)]
    pub load: crate::bench::Workload,
    /// etcd client URL (loopback, plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    pub endpoint: String,
    /// Path prefix of the JSON gateway: /v3 (etcd 3.4+) or /v3beta (3.3).
    #[arg(long, default_value = "/v3")]
    pub api: String,
    /// Most puts in the throughput run.
    #[arg(long, default_value_t = 100_000)]
    pub max_ops: u64,
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

/// The end of the key range holding every key that starts with `prefix`.
fn prefix_end(prefix: &str) -> String {
    let mut b = prefix.as_bytes().to_vec();
    if let Some(last) = b.last_mut() {
        *last += 1;
    }
    String::from_utf8_lossy(&b).into_owned()
}

struct Putter {
    conn: Conn,
    path: String,
    prefix: String,
    payload: Arc<str>,
}

impl Client for Putter {
    async fn op(&mut self, i: u64) -> Result<()> {
        let key = format!("{}{i}", self.prefix);
        let value = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{i}","labels":{{"app":"k1s-bench"}}}},"data":{{"payload":"{}"}}}}"#,
            self.payload
        );
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(&key), b64(&value));
        self.conn
            .call(Method::POST, &self.path, Some(Bytes::from(body)))
            .await?;
        Ok(())
    }
}

struct Ranger {
    conn: Conn,
    path: String,
    body: Bytes,
    count: u64,
}

impl Client for Ranger {
    async fn op(&mut self, _i: u64) -> Result<()> {
        let resp = self
            .conn
            .call(Method::POST, &self.path, Some(self.body.clone()))
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&resp).context("etcd range response")?;
        self.count = v
            .get("kvs")
            .and_then(|k| k.as_array())
            .map_or(0, |a| a.len() as u64);
        Ok(())
    }
}

pub async fn run(args: EtcdArgs) -> Result<()> {
    super::api::print_header("etcd");
    let ep = Endpoint::new(&args.endpoint, Credentials::default())?;
    let api = args.api.trim_end_matches('/').to_owned();
    let mut admin = ep.connect(Proto::Http1).await?;
    let version = admin
        .call(Method::GET, "/version", None)
        .await
        .context("etcd does not answer /version")?;
    println!("etcd {} at {}", snippet(&version), args.endpoint);
    let run_id = format!(
        "/k1s-bench/{}-{}/",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        std::process::id()
    );
    let payload: Arc<str> = "x".repeat(args.load.payload).into();
    let put_path = format!("{api}/kv/put");
    let putters = |n: usize, prefix: &str| {
        let ep = ep.clone();
        let (path, prefix, payload) = (
            put_path.clone(),
            format!("{run_id}{prefix}"),
            payload.clone(),
        );
        async move {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n.max(1) {
                v.push(Putter {
                    conn: ep.connect(Proto::Http1).await?,
                    path: path.clone(),
                    prefix: prefix.clone(),
                    payload: payload.clone(),
                });
            }
            anyhow::Ok(v)
        }
    };

    let run = drive(
        putters(1, "s/").await?,
        Limit {
            ops: args.load.count,
            duration: Duration::from_secs(300),
            warmup: 50,
        },
    )
    .await?;
    run.samples
        .report("etcd put (1 client, sequential)", run.ops, Some(run.wall))
        .print();

    let run = drive(
        putters(args.load.clients, "t/").await?,
        Limit {
            ops: args.max_ops,
            duration: args.load.duration,
            warmup: 10,
        },
    )
    .await?;
    run.samples
        .report(
            &format!("etcd put ({} clients)", args.load.clients),
            run.ops,
            Some(run.wall),
        )
        .print();

    let fill = Limit {
        ops: args.load.list_objects,
        duration: Duration::from_secs(600),
        warmup: 0,
    };
    let run = drive(putters(args.load.clients, "l/").await?, fill).await?;
    if run.ops < args.load.list_objects {
        bail!("put only {} of {} keys", run.ops, args.load.list_objects);
    }
    let list_prefix = format!("{run_id}l/");
    let mut ranger = Ranger {
        conn: ep.connect(Proto::Http1).await?,
        path: format!("{api}/kv/range"),
        body: Bytes::from(format!(
            r#"{{"key":"{}","range_end":"{}"}}"#,
            b64(&list_prefix),
            b64(&prefix_end(&list_prefix))
        )),
        count: 0,
    };
    ranger.op(0).await?;
    if ranger.count != args.load.list_objects {
        bail!(
            "range returned {} keys, expected {}",
            ranger.count,
            args.load.list_objects
        );
    }
    let n = ranger.count;
    let run = drive(
        vec![ranger],
        Limit {
            ops: args.load.lists,
            duration: Duration::from_secs(300),
            warmup: 2,
        },
    )
    .await?;
    run.samples
        .report(&format!("etcd range {n} keys"), run.ops, Some(run.wall))
        .print();

    // Watch fan-out: one HTTP/1.1 connection per watch, each ready once etcd confirmed it.
    let watch_prefix = format!("{run_id}w/");
    let create = Bytes::from(format!(
        r#"{{"create_request":{{"key":"{}","range_end":"{}"}}}}"#,
        b64(&watch_prefix),
        b64(&prefix_end(&watch_prefix))
    ));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut opening = tokio::task::JoinSet::new();
    let opened = Instant::now();
    for w in 0..args.load.watchers {
        let conn = ep
            .connect(Proto::Http1)
            .await
            .with_context(|| format!("watch connection {w}"))?;
        let (path, body, tx) = (format!("{api}/watch"), create.clone(), tx.clone());
        opening.spawn(open_watch(conn, path, body, tx));
    }
    drop(tx);
    let mut readers = tokio::task::JoinSet::new();
    while let Some(res) = opening.join_next().await {
        let reader = res.map_err(|e| anyhow!("watch task: {e}"))??;
        readers.spawn(reader);
    }
    println!(
        "opened {} etcd watches over {} HTTP/1.1 connections in {:.0} ms",
        args.load.watchers,
        args.load.watchers,
        opened.elapsed().as_secs_f64() * 1e3
    );
    let mut creator = putters(1, "w/bw-").await?.remove(0);
    fanout(
        &mut creator,
        args.load.watchers,
        args.load.watch_events,
        &mut rx,
    )
    .await
    .context("etcd watch fan-out")?
    .print(
        &format!("etcd watch delivery ({} watchers)", args.load.watchers),
        "h1 conn each",
    );
    readers.abort_all();
    Ok(())
}

/// Starts one watch and waits for etcd's `created` message; returns the reader to run.
async fn open_watch(
    mut conn: Conn,
    path: String,
    body: Bytes,
    tx: mpsc::UnboundedSender<Seen>,
) -> Result<impl std::future::Future<Output = ()> + Send> {
    let resp = conn.send(Method::POST, &path, Some(body)).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    if status != StatusCode::OK {
        let b = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        bail!("etcd watch: {status}: {}", snippet(&b));
    }
    let mut buf = Vec::new();
    loop {
        let frame = body
            .frame()
            .await
            .ok_or_else(|| anyhow!("etcd watch ended before it was created"))??;
        if let Ok(d) = frame.into_data() {
            buf.extend_from_slice(&d);
        }
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            if !contains(&line, br#""created":true"#) {
                bail!("etcd watch: unexpected first message {}", snippet(&line));
            }
            break;
        }
    }
    Ok(async move {
        let _conn = conn;
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
                if contains(&line, br#""error""#) {
                    let _ = tx.send(Seen::Ended(snippet(&line)));
                    return;
                }
                for idx in event_indexes(&line) {
                    if tx.send(Seen::Event(idx, at)).is_err() {
                        return;
                    }
                }
            }
        };
        let _ = tx.send(Seen::Ended(end));
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The `<i>` of every event key `.../bw-<i>` in one watch response line (keys are base64).
fn event_indexes(line: &[u8]) -> Vec<u64> {
    const MARK: &[u8] = br#""kv":{"key":""#;
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(p) = rest.windows(MARK.len()).position(|w| w == MARK) {
        rest = &rest[p + MARK.len()..];
        let Some(end) = rest.iter().position(|&b| b == b'"') else {
            break;
        };
        if let Ok(key) = STANDARD.decode(&rest[..end])
            && let Some(idx) = std::str::from_utf8(&key)
                .ok()
                .and_then(|k| k.rsplit_once("/bw-"))
                .and_then(|(_, i)| i.parse().ok())
        {
            out.push(idx);
        }
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_keys() {
        assert_eq!(prefix_end("/a/w/"), "/a/w0");
        let key = b64("/k1s-bench/1-2/w/bw-17");
        let line =
            format!(r#"{{"result":{{"events":[{{"kv":{{"key":"{key}","value":"eA=="}}}}]}}}}"#);
        assert_eq!(event_indexes(line.as_bytes()), vec![17]);
    }
}
