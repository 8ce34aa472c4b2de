//! Samples, percentiles and the closed-loop driver shared by every scenario.
//!
//! Percentiles are nearest-rank over the sorted samples: p99 of 2,000 samples is the 1,980th
//! smallest. Throughput is operations divided by the wall time of the measured phase (warm-up
//! excluded).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latency samples of one scenario.
#[derive(Default, Debug)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Samples(Vec::with_capacity(n))
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Nearest-rank percentile `p` in (0, 100]; zero for no samples.
    pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// One report line; `wall` is the measured phase's wall time for the rate, if meaningful.
    pub fn report(mut self, name: &str, ops: u64, wall: Option<Duration>) -> Report {
        self.0.sort_unstable();
        Report {
            name: name.to_owned(),
            n: self.0.len() as u64,
            p50: Self::percentile(&self.0, 50.0),
            p99: Self::percentile(&self.0, 99.0),
            max: self.0.last().copied().unwrap_or_default(),
            rate: wall.map(|w| ops as f64 / w.as_secs_f64().max(1e-9)),
            note: String::new(),
        }
    }
}

/// One scenario's figures, printed as one line.
#[derive(Debug)]
pub struct Report {
    pub name: String,
    pub n: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Operations (or events) per second.
    pub rate: Option<f64>,
    /// Free text appended to the line.
    pub note: String,
}

impl Report {
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    pub fn print(&self) {
        let rate = match self.rate {
            Some(r) => format!("{r:>8.0} ops/s"),
            None => format!("{:>14}", ""),
        };
        println!(
            "{:<38} n={:<7} p50={:>8} p99={:>8} max={:>8} {rate}{}{}",
            self.name,
            self.n,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            if self.note.is_empty() { "" } else { "  " },
            self.note
        );
    }
}

/// `1.234ms`, with fewer decimals for large values.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v < 10.0 {
        format!("{v:.3}ms")
    } else if v < 1000.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.0}ms")
    }
}

/// When a closed-loop run stops: after `ops` measured operations or after `duration`,
/// whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub ops: u64,
    pub duration: Duration,
    /// Unmeasured operations per client before the clock starts.
    pub warmup: u64,
}

/// A client of a closed-loop run: performs operation number `i` (unique across clients).
pub trait Client: Send + 'static {
    fn op(&mut self, i: u64) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The outcome of [`drive`].
pub struct Run {
    pub samples: Samples,
    pub ops: u64,
    pub wall: Duration,
}

/// Runs every client in its own task, each issuing one operation at a time, until `limit`.
/// Warm-up operations of all clients finish before the measured phase starts. The first error
/// of any client ends the run with that error.
pub async fn drive<C: Client>(clients: Vec<C>, limit: Limit) -> anyhow::Result<Run> {
    let next = Arc::new(AtomicU64::new(0));
    let n = clients.len();
    let start_gate = Arc::new(tokio::sync::Barrier::new(n + 1));
    let started = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in clients {
        let next = next.clone();
        let gate = start_gate.clone();
        let started = started.clone();
        tasks.spawn(async move {
            let mut warm_err = None;
            for _ in 0..limit.warmup {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = c.op(i).await {
                    warm_err = Some(e);
                    break;
                }
            }
            gate.wait().await;
            if let Some(e) = warm_err {
                return Err(e.context("during warm-up"));
            }
            let t0 = *started.get_or_init(Instant::now);
            let deadline = t0 + limit.duration;
            let mut samples = Samples::with_capacity(1024);
            let measured_base = limit.warmup * n as u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= measured_base + limit.ops || Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                c.op(i).await?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        });
    }
    start_gate.wait().await;
    let t0 = *started.get_or_init(Instant::now);
    let mut all = Samples::default();
    let mut first_err = None;
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Ok(s)) => all.0.extend(s.0),
            Ok(Err(e)) => {
                if first_err.is_none() {
                    first_err = Some(e);
                    tasks.abort_all();
                }
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(anyhow::anyhow!("client task failed: {e}"));
                }
            }
        }
    }
    let wall = t0.elapsed();
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(Run {
        ops: all.0.len() as u64,
        samples: all,
        wall,
    })
}

/// What a watcher reports to [`fanout`]: the index of the object it saw and when it arrived,
/// or why its stream ended.
pub enum Seen {
    Event(u64, Instant),
    Ended(String),
}

/// Delivery latencies of a watch fan-out.
pub struct Fanout {
    /// Arrival minus the create's response, per watcher and event (zero if earlier).
    pub from_resp: Samples,
    /// Arrival minus the moment the create was sent.
    pub from_send: Samples,
    /// Per event: the last watcher's arrival minus the create's response.
    pub last: Samples,
    /// Deliveries that arrived before the create's response did.
    pub early: u64,
    pub events: u64,
    pub wall: Duration,
}

/// Unmeasured objects created first, so every watch is known to be live.
const FANOUT_WARMUP: u64 = 5;
/// How long every watcher together may take to see one object.
const FANOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates objects `0..FANOUT_WARMUP + events` one at a time with `creator`, and after each
/// waits until all `watchers` reported it through `rx`.
pub async fn fanout<C: Client>(
    creator: &mut C,
    watchers: usize,
    events: u64,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>,
) -> anyhow::Result<Fanout> {
    use anyhow::{Context, anyhow, bail};
    let mut from_resp = Samples::with_capacity(watchers * events as usize);
    let mut from_send = Samples::with_capacity(watchers * events as usize);
    let mut last_per_event = Samples::with_capacity(events as usize);
    let mut early = 0u64;
    let mut measured_start = Instant::now();
    for e in 0..FANOUT_WARMUP + events {
        if e == FANOUT_WARMUP {
            measured_start = Instant::now();
        }
        let sent = Instant::now();
        creator
            .op(e)
            .await
            .with_context(|| format!("creating watched object {e}"))?;
        let responded = Instant::now();
        let mut got = 0usize;
        let mut last = responded;
        let deadline = tokio::time::Instant::now() + FANOUT_TIMEOUT;
        while got < watchers {
            let seen = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .map_err(|_| {
                    anyhow!(
                        "only {got} of {watchers} watchers saw object {e} within {FANOUT_TIMEOUT:?}"
                    )
                })?;
            match seen {
                Some(Seen::Event(idx, at)) if idx == e => {
                    got += 1;
                    last = last.max(at);
                    if e >= FANOUT_WARMUP {
                        if at < responded {
                            early += 1;
                        }
                        from_resp.push(at.saturating_duration_since(responded));
                        from_send.push(at.saturating_duration_since(sent));
                    }
                }
                Some(Seen::Event(idx, _)) => {
                    bail!("a watcher saw object {idx} while waiting for {e}")
                }
                Some(Seen::Ended(why)) => bail!("a watch ended: {why}"),
                None => bail!("all watches ended"),
            }
        }
        if e >= FANOUT_WARMUP {
            last_per_event.push(last.saturating_duration_since(responded));
        }
    }
    Ok(Fanout {
        from_resp,
        from_send,
        last: last_per_event,
        early,
        events,
        wall: measured_start.elapsed(),
    })
}

impl Fanout {
    pub fn print(self, name: &str, note: &str) {
        let n = self.from_resp.0.len() as u64;
        let early = self.early;
        self.from_resp
            .report(name, n, Some(self.wall))
            .note(format!(
                "from the create's response; {early} arrived before it; {note}"
            ))
            .print();
        self.from_send
            .report("  from the create sent", n, None)
            .print();
        self.last
            .report("  last watcher per object", self.events, None)
            .print();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(Samples::percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(Samples::percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(Samples::percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(Samples::percentile(&[], 99.0), Duration::ZERO);
        let one = [Duration::from_millis(7)];
        assert_eq!(Samples::percentile(&one, 1.0), Duration::from_millis(7));
    }
}
