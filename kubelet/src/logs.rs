//! `kubectl logs` for this node's pods: the [`PodLogs`] source the API server's `pods/log` reads,
//! over the runtime's CRI log files (current run, or `--previous` for the one before).
//!
//! Invariants: files are read on a dedicated thread, never on an async worker; a follower stops
//! when the container's run has exited and its log is drained, or when the client goes away (its
//! channel closes); `tailLines` keeps at most that many lines in memory; `limitBytes` bounds what
//! is sent.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use k1s_apimachinery::status::StatusError;
use k1s_apiserver::pod_logs::{LogOptions, LogStream, OpenLogs, PodLogs};
use k1s_runtime::container::log::{LogReader, Record};
use k1s_runtime::container::{ContainerManager, Phase};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::containers::parse_id;

/// How often a follower looks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);
/// Lines are sent in chunks of about this size.
const CHUNK: usize = 32 * 1024;

/// Reads container logs from the runtime.
pub struct RuntimeLogs {
    pub containers: ContainerManager,
}

/// The runtime id of the run to read: the latest of `name` in pod `uid`, or the one before.
pub(crate) fn pick_run(
    mgr: &ContainerManager,
    uid: &str,
    name: &str,
    previous: bool,
) -> Option<String> {
    let mut runs: Vec<(u32, String)> = mgr
        .list()
        .ok()?
        .into_iter()
        .filter_map(|c| {
            let (u, n, a) = parse_id(&c.id)?;
            (u == uid && n == name).then(|| (a, c.id.clone()))
        })
        .collect();
    runs.sort();
    let idx = runs.len().checked_sub(if previous { 2 } else { 1 })?;
    runs.into_iter().nth(idx).map(|(_, id)| id)
}

/// One record as `kubectl logs` prints it.
fn format(rec: &Record<'_>, timestamps: bool, out: &mut Vec<u8>) {
    if timestamps {
        out.extend_from_slice(rec.time.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(rec.text);
    if !rec.partial {
        out.push(b'\n');
    }
}

fn since_cutoff(opts: &LogOptions) -> Option<String> {
    let secs = opts.since_seconds?;
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs as i64);
    Some(k1s_apimachinery::meta::format_rfc3339(t))
}

/// Streams the log of run `id` into `tx` (blocking; runs on its own thread).
fn pump(
    mgr: ContainerManager,
    id: String,
    opts: LogOptions,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let Ok(path) = mgr.log_path(&id) else { return };
    let mut reader = LogReader::new(&path, 0);
    let cutoff = since_cutoff(&opts);
    let mut budget = opts.limit_bytes.unwrap_or(u64::MAX);
    let keep = |rec: &Record<'_>| cutoff.as_deref().is_none_or(|c| rec.time >= c);
    // What is there now: with tailLines only the last lines.
    let mut first: VecDeque<Vec<u8>> = VecDeque::new();
    let _ = reader.poll(|rec| {
        if !keep(rec) {
            return;
        }
        let mut line = Vec::new();
        format(rec, opts.timestamps, &mut line);
        first.push_back(line);
        if let Some(n) = opts.tail_lines
            && first.len() as u64 > n
        {
            first.pop_front();
        }
    });
    // `false`: stop (the client went away or the byte limit is reached).
    let send = |mut bytes: Vec<u8>, budget: &mut u64| -> bool {
        if *budget == 0 {
            return false;
        }
        if bytes.len() as u64 > *budget {
            bytes.truncate(*budget as usize);
        }
        *budget -= bytes.len() as u64;
        if tx.blocking_send(Ok(Bytes::from(bytes))).is_err() {
            return false;
        }
        *budget > 0
    };
    let mut chunk = Vec::new();
    for line in first {
        chunk.extend_from_slice(&line);
        if chunk.len() >= CHUNK && !send(std::mem::take(&mut chunk), &mut budget) {
            return;
        }
    }
    if !chunk.is_empty() && !send(chunk, &mut budget) {
        return;
    }
    if !opts.follow {
        return;
    }
    loop {
        // The status first: a line written before the exit is then surely read below.
        let exited = mgr
            .status(&id)
            .map_or(true, |s| matches!(s.phase, Phase::Exited | Phase::Unknown));
        let mut chunk = Vec::new();
        let _ = reader.poll(|rec| format(rec, opts.timestamps, &mut chunk));
        if !chunk.is_empty() && !send(chunk, &mut budget) {
            return;
        }
        if exited || tx.is_closed() {
            return;
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}

impl PodLogs for RuntimeLogs {
    fn open(&self, pod: &Value, opts: LogOptions) -> OpenLogs {
        let mgr = self.containers.clone();
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let pod_name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Box::pin(async move {
            let (m, u, c, prev) = (mgr.clone(), uid, opts.container.clone(), opts.previous);
            let id = tokio::task::spawn_blocking(move || pick_run(&m, &u, &c, prev))
                .await
                .map_err(|e| StatusError::internal(&e.to_string()))?;
            let Some(id) = id else {
                let c = &opts.container;
                return Err(StatusError::bad_request(if opts.previous {
                    format!("previous terminated container \"{c}\" in pod \"{pod_name}\" not found")
                } else {
                    format!(
                        "container \"{c}\" in pod \"{pod_name}\" is waiting to start: ContainerCreating"
                    )
                }));
            };
            let (tx, rx) = mpsc::channel(16);
            std::thread::Builder::new()
                .name("k1s-logs".into())
                .spawn(move || pump(mgr, id, opts, tx))
                .map_err(|e| StatusError::internal(&e.to_string()))?;
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Ok(Box::pin(stream) as LogStream)
        })
    }
}
