//! `k1s bench startup`: time from spawning `k1s server` to `/readyz` 200, and its idle RSS.
//!
//! Two cases: a fresh empty data dir per run (so each run includes first-start work: PKI,
//! kubeconfig, store creation, bootstrap namespaces), and one data dir prepared once with
//! `--objects` configmaps, restarted `--runs` times. Ready is the first `/readyz` 200 over HTTPS
//! verified with the server's CA, requested as soon as the server prints its ready line (the
//! server turns ready before it prints it). Idle RSS is VmRSS after `--idle` of quiet.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use hyper::Method;

use super::api::parse_duration;
use super::client::{Proto, endpoint_from_kubeconfig};
use super::spawn::{self, mib};
use super::stats::{Client, Limit, Report, Samples, drive};

#[derive(Args, Debug)]
pub struct StartupArgs {
    /// The k1s binary to start (default: this executable).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Starts per case.
    #[arg(long, default_value_t = 10)]
    pub runs: u64,
    /// Configmaps stored for the filled case (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    pub objects: u64,
    /// Quiet time before reading the idle RSS.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub idle: Duration,
    /// Where the temporary data dirs go (default: the system temp dir).
    #[arg(long)]
    pub tmp: Option<PathBuf>,
}

pub async fn run(args: StartupArgs) -> Result<()> {
    let bin = spawn::binary(&args.bin)?;
    super::api::print_header("startup");
    let mut b = tempfile::Builder::new();
    b.prefix("k1s-bench-startup-");
    let tmp = match &args.tmp {
        Some(d) => b.tempdir_in(d)?,
        None => b.tempdir()?,
    };
    let mut cases = Vec::new();

    let mut empty = Case::default();
    for i in 0..args.runs {
        let dir = tmp.path().join(format!("empty-{i}"));
        empty.start_once(&bin, &dir, args.idle).await?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    cases.push(("empty data dir".to_owned(), empty));

    if args.objects > 0 {
        let dir = tmp.path().join("filled");
        fill(&bin, &dir, args.objects).await?;
        let mut filled = Case::default();
        for _ in 0..args.runs {
            filled.start_once(&bin, &dir, args.idle).await?;
        }
        cases.push((format!("{} objects stored", args.objects), filled));
    }

    for (name, case) in cases {
        let n = case.readyz.0.len() as u64;
        let rss = case.rss_kib.iter().copied().max().unwrap_or(0);
        let rss_min = case.rss_kib.iter().copied().min().unwrap_or(0);
        let self_ms =
            case.self_reported.iter().sum::<u64>() as f64 / case.self_reported.len().max(1) as f64;
        case.readyz
            .report(&format!("start to /readyz ({name})"), n, None)
            .note(format!(
                "idle RSS {}..{}; server-reported mean {self_ms:.0} ms",
                mib(rss_min),
                mib(rss)
            ))
            .print();
        case.line.report("  start to ready line", n, None).print();
    }
    Ok(())
}

#[derive(Default)]
struct Case {
    readyz: Samples,
    line: Samples,
    rss_kib: Vec<u64>,
    self_reported: Vec<u64>,
}

impl Case {
    async fn start_once(&mut self, bin: &Path, dir: &Path, idle: Duration) -> Result<()> {
        let (server, started) = spawn::start(bin, dir, &[]).await?;
        let ep = endpoint_from_kubeconfig(&server.kubeconfig)?;
        let mut conn = ep.connect(Proto::Http1).await?;
        let (status, body) = conn.call_status(Method::GET, "/readyz", None).await?;
        let readyz = started.elapsed();
        if !status.is_success() {
            bail!(
                "/readyz answered {status} after the ready line: {}",
                super::client::snippet(&body)
            );
        }
        drop(conn);
        self.readyz.push(readyz);
        self.line.push(server.ready_line_after);
        if let Some(ms) = server.self_reported_ms {
            self.self_reported.push(ms);
        }
        tokio::time::sleep(idle).await;
        self.rss_kib.push(server.rss_kib()?.0);
        server.stop().await
    }
}

struct Filler {
    conn: super::client::Conn,
    payload: Arc<str>,
}

impl Client for Filler {
    async fn op(&mut self, i: u64) -> Result<()> {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}"}},"data":{{"payload":"{}"}}}}"#,
            self.payload
        );
        self.conn
            .call(
                Method::POST,
                "/api/v1/namespaces/default/configmaps",
                Some(body.into()),
            )
            .await?;
        Ok(())
    }
}

/// Starts a server on `dir`, creates `objects` configmaps with 32 clients, stops it.
async fn fill(bin: &Path, dir: &Path, objects: u64) -> Result<()> {
    let (server, _) = spawn::start(bin, dir, &[]).await?;
    let ep = endpoint_from_kubeconfig(&server.kubeconfig)?;
    let payload: Arc<str> = "x".repeat(128).into();
    let mut clients = Vec::new();
    for _ in 0..32 {
        clients.push(Filler {
            conn: ep.connect(Proto::Http1).await?,
            payload: payload.clone(),
        });
    }
    let run = drive(
        clients,
        Limit {
            ops: objects,
            duration: Duration::from_secs(600),
            warmup: 0,
        },
    )
    .await?;
    if run.ops < objects {
        bail!("stored only {} of {objects} objects", run.ops);
    }
    let r: Report = run
        .samples
        .report("  (filling: create, 32 clients)", run.ops, Some(run.wall));
    r.print();
    server.stop().await
}
