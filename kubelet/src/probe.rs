//! Startup, readiness and liveness probes of one running container: exec (in the container,
//! through the runtime), httpGet (HTTP/1.0 over TCP to the pod IP, 200–399 passes), tcpSocket (a
//! connect) and grpc (`grpc.health.v1.Health/Check`, see [`crate::probe_grpc`]). Lifecycle hooks
//! run their exec and httpGet handlers through [`run_once`] too.
//!
//! Invariants: one prober task per probe kind and container run, ended by its token when the run
//! ends (a startup prober also once it succeeded: readiness and liveness start only then); results reach the worker only when they change after the thresholds
//! (`successThreshold`/`failureThreshold` consecutive results), so a steady probe causes no status
//! writes; an exec probe runs in `spawn_blocking` and its wait is bounded by `timeoutSeconds`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k1s_runtime::container::{ContainerManager, ExecSpec};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::worker::Msg;

/// Startup, readiness or liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Startup,
    Readiness,
    Liveness,
}

impl Kind {
    /// The container spec's field of this probe.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Startup => "startupProbe",
            Kind::Readiness => "readinessProbe",
            Kind::Liveness => "livenessProbe",
        }
    }

    /// How events name this probe ("Startup probe failed: ...").
    pub fn word(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Readiness => "Readiness",
            Kind::Liveness => "Liveness",
        }
    }
}

/// A probe's timing, with upstream's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(probe: &Value) -> Self {
        let secs = |k: &str, d: u64| Duration::from_secs(probe[k].as_u64().unwrap_or(d));
        let n = |k: &str| probe[k].as_u64().filter(|n| *n > 0).unwrap_or(0) as u32;
        Timing {
            initial_delay: secs("initialDelaySeconds", 0),
            period: secs("periodSeconds", 10).max(Duration::from_secs(1)),
            timeout: secs("timeoutSeconds", 1).max(Duration::from_secs(1)),
            success_threshold: n("successThreshold").max(1),
            failure_threshold: match n("failureThreshold") {
                0 => 3,
                f => f,
            },
        }
    }
}

/// Consecutive-result counting: `Some(new result)` when the thresholds flip it.
#[derive(Debug)]
pub struct Thresholds {
    result: Option<bool>,
    run: u32,
    last: Option<bool>,
}

impl Thresholds {
    pub fn new() -> Self {
        Thresholds {
            result: None,
            run: 0,
            last: None,
        }
    }

    pub fn observe(&mut self, ok: bool, t: &Timing) -> Option<bool> {
        self.run = if self.last == Some(ok) {
            self.run + 1
        } else {
            1
        };
        self.last = Some(ok);
        let needed = if ok {
            t.success_threshold
        } else {
            t.failure_threshold
        };
        if self.run >= needed && self.result != Some(ok) {
            self.result = Some(ok);
            return Some(ok);
        }
        None
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::new()
    }
}

/// A container port by number or by name.
fn port(container: &Value, v: &Value) -> Option<u16> {
    if let Some(n) = v.as_u64() {
        return u16::try_from(n).ok();
    }
    let name = v.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

/// What one probe run needs.
pub struct Target {
    pub containers: ContainerManager,
    pub container_id: String,
    pub container: Value,
    pub pod_ip: Option<IpAddr>,
}

/// Runs the probe once: `Ok(())` passes, `Err(message)` fails.
pub async fn run_once(probe: &Value, target: &Target, timeout: Duration) -> Result<(), String> {
    if let Some(cmd) = probe["exec"]["command"].as_array() {
        let cmd: Vec<String> = cmd
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        let mgr = target.containers.clone();
        let id = target.container_id.clone();
        let run = tokio::task::spawn_blocking(move || -> Result<i32, String> {
            let mut session = mgr
                .exec(
                    &id,
                    &ExecSpec {
                        cmd,
                        tty: false,
                        stdin: false,
                        env: Vec::new(),
                    },
                )
                .map_err(|e| e.to_string())?;
            // Drained, so a chatty probe command never blocks on a full pipe.
            let err = session.stderr.take().map(|mut e| {
                std::thread::spawn(move || drop(std::io::copy(&mut e, &mut std::io::sink())))
            });
            if let Some(mut out) = session.stdout.take() {
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            }
            if let Some(t) = err {
                let _ = t.join();
            }
            session.wait().map_err(|e| e.to_string())
        });
        return match tokio::time::timeout(timeout, run).await {
            Err(_) => Err(format!("command timed out after {}s", timeout.as_secs())),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Ok(Ok(0))) => Ok(()),
            Ok(Ok(Ok(code))) => Err(format!("command exited with {code}")),
        };
    }
    if probe["grpc"].is_object() {
        let g = &probe["grpc"];
        let port = g["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("grpc probe port not found")?;
        let ip = target.pod_ip.ok_or("the pod has no IP")?;
        let addr = SocketAddr::new(ip, port);
        let service = g["service"].as_str().unwrap_or_default();
        return match tokio::time::timeout(timeout, crate::probe_grpc::check(addr, service)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "timeout: health rpc did not complete within {}s",
                timeout.as_secs()
            )),
        };
    }
    let (action, is_http) = if probe["httpGet"].is_object() {
        (&probe["httpGet"], true)
    } else if probe["tcpSocket"].is_object() {
        (&probe["tcpSocket"], false)
    } else {
        return Err("no supported handler (exec, httpGet, tcpSocket, grpc)".into());
    };
    let port = port(&target.container, &action["port"]).ok_or("probe port not found")?;
    let host = action["host"]
        .as_str()
        .and_then(|h| h.parse::<IpAddr>().ok())
        .or(target.pod_ip)
        .ok_or("the pod has no IP")?;
    let addr = SocketAddr::new(host, port);
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("dial tcp {addr}: {e}"))?;
        if !is_http {
            return Ok(());
        }
        let path = action["path"].as_str().unwrap_or("/");
        let mut req =
            format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.33\r\n");
        for h in action["httpHeaders"].as_array().into_iter().flatten() {
            if let (Some(n), Some(v)) = (h["name"].as_str(), h["value"].as_str()) {
                req.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = vec![0u8; 256];
        let n = s.read(&mut head).await.map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&head[..n]);
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("malformed HTTP response from {addr}"))?;
        if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "Get \"http://{addr}\": context deadline exceeded (timeout {}s)",
            timeout.as_secs()
        )),
    }
}

/// Probes until `stop`; sends [`Msg::Probe`] when the result flips.
pub async fn run(
    kind: Kind,
    probe: Value,
    target: Target,
    tx: mpsc::UnboundedSender<Msg>,
    stop: CancellationToken,
) {
    let timing = Timing::of(&probe);
    let mut counts = Thresholds::new();
    let mut delay = timing.initial_delay;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = timing.period;
        let result = run_once(&probe, &target, timing.timeout).await;
        if stop.is_cancelled() {
            return;
        }
        let failure = result
            .as_ref()
            .err()
            .map(|m| format!("{} probe failed: {m}", kind.word()));
        if let Some(ok) = counts.observe(result.is_ok(), &timing) {
            let msg = Msg::Probe {
                id: target.container_id.clone(),
                kind,
                ok,
                message: failure.clone(),
            };
            if tx.send(msg).is_err() {
                return;
            }
        } else if let Some(message) = failure {
            // Every failure is an Unhealthy event, as upstream records them.
            let msg = Msg::ProbeFailed {
                id: target.container_id.clone(),
                message,
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timing_defaults() {
        let t = Timing::of(&json!({}));
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
        let t = Timing::of(
            &json!({"periodSeconds": 2, "failureThreshold": 1, "initialDelaySeconds": 5}),
        );
        assert_eq!(t.period, Duration::from_secs(2));
        assert_eq!(t.initial_delay, Duration::from_secs(5));
        assert_eq!(t.failure_threshold, 1);
    }

    #[test]
    fn thresholds_flip_after_consecutive_results() {
        let t = Timing::of(&json!({"successThreshold": 2, "failureThreshold": 2}));
        let mut c = Thresholds::new();
        assert_eq!(c.observe(true, &t), None);
        assert_eq!(c.observe(true, &t), Some(true));
        assert_eq!(c.observe(true, &t), None);
        assert_eq!(c.observe(false, &t), None);
        assert_eq!(c.observe(true, &t), None);
        assert_eq!(c.observe(false, &t), None);
        assert_eq!(c.observe(false, &t), Some(false));
    }

    #[test]
    fn named_ports() {
        let c = json!({"ports": [{"name": "http", "containerPort": 8080}]});
        assert_eq!(port(&c, &json!("http")), Some(8080));
        assert_eq!(port(&c, &json!(81)), Some(81));
        assert_eq!(port(&c, &json!("8081")), Some(8081));
        assert_eq!(port(&c, &json!("nope")), None);
    }
}
