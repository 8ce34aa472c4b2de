//! Crash consistency: a child process (this test binary re-executed with `K1S_STORE_CRASH_CHILD`
//! set) writes through the store and prints every acknowledged write; the parent kills it with
//! SIGKILL mid-stream, reopens the database and checks that every acknowledged write is there
//! and that the store still works. Two rounds, so a repaired file is crashed again.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k1s_store::{ListOptions, Store, StoreConfig, WriteOp};
use serde_json::json;

const CHILD_ENV: &str = "K1S_STORE_CRASH_CHILD";
const ROUND_ENV: &str = "K1S_STORE_CRASH_ROUND";
const TEST_NAME: &str = "acknowledged_writes_survive_sigkill";
/// Acknowledgements the parent waits for before it kills the child.
const ACKS_BEFORE_KILL: usize = 400;
/// Upper bound on the child's writes, so a lost parent cannot leave it running forever.
const MAX_CHILD_WRITES: usize = 50_000;
const WRITERS: usize = 8;

fn config(path: &Path) -> StoreConfig {
    StoreConfig {
        path: Some(path.to_owned()),
        ..Default::default()
    }
}

/// Child mode: write forever (bounded), printing `ACK <key> <revision>` after each ack.
fn child(path: PathBuf, round: String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = Store::open(config(&path)).expect("open in child");
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            let round = round.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..MAX_CHILD_WRITES / WRITERS / 2 {
                    let key = format!("/crash/{round}/{w}/{i}");
                    let value = json!({"metadata": {"name": key}, "n": 0});
                    let r = store
                        .write(WriteOp::Create {
                            key: key.clone(),
                            value,
                        })
                        .await
                        .expect("create");
                    ack(&key, r.revision);
                    let value = json!({"metadata": {"name": key}, "n": 1});
                    let r = store
                        .write(WriteOp::Update {
                            key: key.clone(),
                            value,
                            expected: Some(r.revision),
                        })
                        .await
                        .expect("update");
                    ack(&key, r.revision);
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer task");
        }
    });
}

fn ack(key: &str, rev: u64) {
    // One write per line, so a kill cannot leave half a line followed by more output.
    let line = format!("ACK {key} {rev}\n");
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).expect("stdout");
    out.flush().expect("flush");
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV).unwrap_or_default();
        child(PathBuf::from(path), round);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/k1s.redb");
    let mut acked: HashMap<String, u64> = HashMap::new();
    for round in 0..2 {
        let round_acks = crash_child(&path, round, &mut acked);
        assert!(
            round_acks >= ACKS_BEFORE_KILL,
            "round {round}: {round_acks}"
        );

        let store = Store::open(config(&path)).expect("reopen after SIGKILL");
        for (key, rev) in &acked {
            let kv = store
                .get(key)
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged key {key} lost"));
            assert!(
                kv.mod_revision >= *rev,
                "{key}: {} < {rev}",
                kv.mod_revision
            );
        }
        let max_acked = acked.values().copied().max().unwrap();
        assert!(store.revision() >= max_acked);
        // The store works: reads, writes, and a watch over the surviving history.
        let all = store.list("/crash/", ListOptions::default()).unwrap();
        assert!(all.items.len() >= acked.len());
        assert!(all.items.iter().all(|kv| kv.mod_revision <= all.revision));
        let before = store.revision();
        let r = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let mut w = store.watch("/after/", before).unwrap();
                let r = store
                    .write(WriteOp::Create {
                        key: format!("/after/{round}"),
                        value: json!({"metadata": {"name": "after"}}),
                    })
                    .await
                    .unwrap();
                assert_eq!(w.next().await.unwrap().unwrap().revision, r.revision);
                r
            });
        assert_eq!(r.revision, before + 1);
        store.shutdown();
    }
}

/// Runs one child until it has acknowledged `ACKS_BEFORE_KILL` writes, kills it with SIGKILL
/// and collects every acknowledgement it printed. Returns how many it printed.
fn crash_child(path: &Path, round: usize, acked: &mut HashMap<String, u64>) -> usize {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut n = 0;
    let mut record = |line: &str, n: &mut usize| {
        // A line cut short by the kill has no revision and is not an acknowledgement.
        let parsed = line.strip_prefix("ACK ").and_then(|rest| {
            let (key, rev) = rest.rsplit_once(' ')?;
            Some((key, rev.parse::<u64>().ok()?))
        });
        if let Some((key, rev)) = parsed {
            let e = acked.entry(key.to_owned()).or_insert(0);
            *e = (*e).max(rev);
            *n += 1;
        }
    };
    while n < ACKS_BEFORE_KILL {
        match lines.next() {
            Some(Ok(line)) => record(&line, &mut n),
            other => panic!("child stopped early after {n} acks: {other:?}"),
        }
    }
    child.kill().expect("SIGKILL child");
    // Whatever the child printed before it died was acknowledged too.
    for line in lines {
        match line {
            Ok(line) => record(&line, &mut n),
            Err(_) => break,
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "child was killed");
    n
}
