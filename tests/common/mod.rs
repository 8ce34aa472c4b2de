//! Shared harness for the end-to-end tests: start the real `k1s` binary on a free port with its own data
//! dir, drive it with stock kubectl (`/usr/bin/kubectl`), and stop it again.
//!
//! Invariants every test relies on:
//! - each [`Cluster`] owns a temp dir holding the data dir, kubectl's `HOME`/`--cache-dir` and the server
//!   log, so tests are independent and can run in parallel;
//! - readiness is the server's one stdout line `k1s is ready: API <url> kubeconfig <path> (N ms)`;
//!   nothing waits on a sleep;
//! - every child process (server, kubectl, watches) runs under a deadline and is killed on drop, so a
//!   hanging server fails a test instead of hanging the suite or leaking processes.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the server gets to print its ready line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one kubectl invocation may run.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server gets to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub const KUBECTL: &str = "/usr/bin/kubectl";

/// Directory of the example manifests that users apply with `kubectl apply -f manifests/examples/`.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/examples")
}

/// A running `k1s server` process.
struct ServerProc {
    child: Child,
    url: String,
    kubeconfig: PathBuf,
    /// The DNS address from the ready line (`--dns-listen`).
    dns: Option<std::net::SocketAddr>,
    /// Drains stdout after the ready line so the server never blocks on a full pipe.
    _stdout_drain: JoinHandle<()>,
}

/// One k1s server with its own data dir, plus a kubectl home, for one test.
pub struct Cluster {
    tmp: tempfile::TempDir,
    server: Option<ServerProc>,
    /// Extra `k1s server` flags, kept across restarts.
    args: Vec<String>,
    /// Run the kubelet. Off unless a test asks: it creates the pod bridge in the network
    /// namespace the server runs in, so only tests in a network namespace of their own ask.
    kubelet: bool,
    /// Run the service proxy (same rule as the kubelet).
    proxy: bool,
}

/// What a finished command returned.
#[derive(Debug, Clone)]
pub struct Output {
    pub args: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Asserts exit code 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(self.success(), "command failed: {self}");
        &self.stdout
    }

    /// Asserts a non-zero exit code and returns stderr.
    #[track_caller]
    pub fn err(&self) -> &str {
        assert!(!self.success(), "command unexpectedly succeeded: {self}");
        &self.stderr
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

impl Cluster {
    /// Starts a server on a fresh data dir.
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// Starts a server on a fresh data dir with extra `k1s server` flags, without the kubelet.
    pub fn start_with(args: &[&str]) -> Cluster {
        Cluster::start_inner(args, false, false)
    }

    /// Starts a server with the kubelet. Call it only inside a network namespace the test made.
    pub fn start_with_kubelet(args: &[&str]) -> Cluster {
        Cluster::start_inner(args, true, false)
    }

    /// Starts a server with the kubelet and the service proxy (its nftables table). Call it only
    /// inside a network namespace the test made.
    pub fn start_with_kubelet_and_proxy(args: &[&str]) -> Cluster {
        Cluster::start_inner(args, true, true)
    }

    fn start_inner(args: &[&str], kubelet: bool, proxy: bool) -> Cluster {
        let tmp = tempfile::Builder::new()
            .prefix("k1s-e2e-")
            .tempdir()
            .expect("creating a temp dir");
        std::fs::create_dir_all(tmp.path().join("home/.kube/cache")).unwrap();
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut cluster = Cluster {
            tmp,
            server: None,
            args,
            kubelet,
            proxy,
        };
        cluster.boot();
        cluster
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// A scratch directory for the test's own files (manifests, editor scripts).
    pub fn scratch(&self) -> PathBuf {
        let dir = self.tmp.path().join("scratch");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `contents` to `scratch/name` and returns the path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.scratch().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn log_path(&self) -> PathBuf {
        self.tmp.path().join("server.log")
    }

    pub fn url(&self) -> &str {
        &self.server.as_ref().expect("server is not running").url
    }

    /// Where the server's DNS listens (it was started with `--dns-listen`).
    pub fn dns_addr(&self) -> std::net::SocketAddr {
        self.server
            .as_ref()
            .expect("server is not running")
            .dns
            .expect("the server was not started with --dns-listen")
    }

    pub fn kubeconfig(&self) -> &Path {
        &self
            .server
            .as_ref()
            .expect("server is not running")
            .kubeconfig
    }

    pub fn pid(&self) -> u32 {
        self.server
            .as_ref()
            .expect("server is not running")
            .child
            .id()
    }

    /// The server's stderr so far (its log), for failure messages.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the server on this cluster's data dir and waits for its ready line.
    fn boot(&mut self) {
        assert!(self.server.is_none(), "server already running");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening the server log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_k1s"))
            .arg("server")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir())
            // Tests share the host network namespace: no nftables table of theirs there.
            .args(if self.proxy {
                &[][..]
            } else {
                &["--disable=proxy"][..]
            })
            .args(&self.args)
            .args(if self.kubelet {
                &[][..]
            } else {
                &["--disable", "kubelet"][..]
            })
            .env_remove("K1S_LISTEN")
            .env_remove("K1S_DATA_DIR")
            .env_remove("K1S_EPHEMERAL")
            .env_remove("K1S_WRITE_KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning k1s server");
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let drain = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let ready = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("k1s is ready:") => break line,
                Ok(_) => continue,
                Err(e) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!(
                        "k1s server did not print its ready line ({e:?}, exit {status:?}); log:\n{}",
                        self.server_log()
                    );
                }
            }
        };
        let (url, kubeconfig) =
            parse_ready_line(&ready).unwrap_or_else(|| panic!("unexpected ready line: {ready:?}"));
        self.server = Some(ServerProc {
            child,
            url,
            kubeconfig,
            dns: parse_ready_dns(&ready),
            _stdout_drain: drain,
        });
    }

    /// SIGTERM, then wait for a clean exit (kill after [`STOP_TIMEOUT`]). Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut proc = self.server.take().expect("server is not running");
        signal(proc.child.id(), "TERM");
        match wait_deadline(&mut proc.child, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = proc.child.kill();
                let _ = proc.child.wait();
                panic!(
                    "k1s server did not exit within {STOP_TIMEOUT:?} of SIGTERM; log:\n{}",
                    self.server_log()
                );
            }
        }
    }

    /// SIGKILL the server if it runs (for guards that must stop it before cleaning up).
    pub fn kill_if_running(&mut self) {
        if let Some(mut proc) = self.server.take() {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
    }

    /// SIGKILL: the server gets no chance to clean up.
    pub fn kill9(&mut self) {
        let mut proc = self.server.take().expect("server is not running");
        proc.child.kill().expect("SIGKILL");
        proc.child.wait().expect("reaping the server");
    }

    /// Starts the server again on the same data dir (after [`stop`](Self::stop) or [`kill9`](Self::kill9)).
    pub fn restart(&mut self) {
        self.boot();
    }

    /// A kubectl command with this cluster's kubeconfig and its own cache dir and HOME.
    pub fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let home = self.home();
        let mut cmd = Command::new(KUBECTL);
        cmd.arg(format!(
            "--cache-dir={}",
            home.join(".kube/cache").display()
        ))
        .args(args)
        .env("KUBECONFIG", self.kubeconfig())
        .env("HOME", &home)
        .env_remove("KUBE_EDITOR")
        .env_remove("EDITOR")
        .env_remove("KUBECTL_EXTERNAL_DIFF")
        .env_remove("KUBECTL_KUBERC")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    }

    /// Runs kubectl to completion (bounded by [`KUBECTL_TIMEOUT`]).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        run(self.kubectl_cmd(args), None, KUBECTL_TIMEOUT)
    }

    /// Runs kubectl with `stdin` as its standard input (for `-f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run(self.kubectl_cmd(args), Some(stdin), KUBECTL_TIMEOUT)
    }

    /// Runs kubectl with extra environment variables.
    pub fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.kubectl_cmd(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd, None, KUBECTL_TIMEOUT)
    }

    /// Runs kubectl and asserts success, returning stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.success(),
            "{out}\n--- server log tail ---\n{}",
            self.log_tail()
        );
        out.stdout
    }

    /// Runs kubectl with stdin and asserts success, returning stdout.
    #[track_caller]
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, stdin);
        assert!(
            out.success(),
            "{out}\n--- server log tail ---\n{}",
            self.log_tail()
        );
        out.stdout
    }

    /// Runs kubectl, asserts failure, returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(!out.success(), "expected failure: {out}");
        out.stderr
    }

    /// Starts a long-running kubectl (e.g. `get -w`) whose stdout lines can be awaited.
    pub fn kubectl_stream(&self, args: &[&str]) -> Stream {
        Stream::spawn(
            self.kubectl_cmd(args),
            format!("kubectl {}", args.join(" ")),
        )
    }

    fn log_tail(&self) -> String {
        let log = self.server_log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `kubectl get <args> -o jsonpath=<path>` → the printed value.
    #[track_caller]
    pub fn jsonpath(&self, get_args: &[&str], path: &str) -> String {
        let jp = format!("jsonpath={path}");
        let mut args = vec!["get"];
        args.extend_from_slice(get_args);
        args.extend_from_slice(&["-o", &jp]);
        self.ok(&args)
    }

    /// `kubectl get <args> -o json` parsed.
    #[track_caller]
    pub fn get_json(&self, get_args: &[&str]) -> serde_json::Value {
        let mut args = vec!["get"];
        args.extend_from_slice(get_args);
        args.extend_from_slice(&["-o", "json"]);
        let out = self.ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut proc) = self.server.take() {
            signal(proc.child.id(), "TERM");
            if wait_deadline(&mut proc.child, STOP_TIMEOUT).is_none() {
                let _ = proc.child.kill();
                let _ = proc.child.wait();
            }
        }
        if thread::panicking() {
            eprintln!("--- k1s server log ---\n{}", self.log_tail());
        }
    }
}

/// Parses `k1s is ready: API https://127.0.0.1:PORT kubeconfig PATH (N ms)`.
pub fn parse_ready_line(line: &str) -> Option<(String, PathBuf)> {
    let rest = line.strip_prefix("k1s is ready: API ")?;
    let (url, rest) = rest.split_once(" kubeconfig ")?;
    let path = match rest.rfind(" (") {
        Some(i) => &rest[..i],
        None => rest,
    };
    Some((url.to_string(), PathBuf::from(path)))
}

/// The DNS address a ready line ends with (`... (12 ms) dns 127.0.0.1:5353`), if any.
pub fn parse_ready_dns(line: &str) -> Option<std::net::SocketAddr> {
    let tail = &line[line.rfind(')')? + 1..];
    tail.trim().strip_prefix("dns ")?.trim().parse().ok()
}

/// Sends a signal by name (`TERM`, `KILL`, ...) with `kill(1)`: std has no signal API and the test crate
/// has no libc dependency.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running kill(1); install procps");
    // A non-zero status means the process is already gone, which is fine for callers.
    let _ = status;
}

/// Polls `try_wait` until the child exits or the deadline passes.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn child_stdout(child: &mut Child) -> ChildStdout {
    child.stdout.take().expect("stdout is piped")
}

fn read_all(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs a command to completion under a deadline, killing it if it overruns.
pub fn run(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Output {
    let args = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .filter(|a| !a.starts_with("--cache-dir="))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {args}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_string();
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let out = read_all(child.stdout.take().unwrap());
    let err = read_all(child.stderr.take().unwrap());
    let status = wait_deadline(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let Some(status) = status else {
        panic!("`{args}` did not finish within {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    Output {
        args,
        code: status.code(),
        stdout,
        stderr,
    }
}

/// A long-running child whose stdout lines arrive on a channel; killed on drop.
pub struct Stream {
    name: String,
    lines: Receiver<String>,
    seen: Vec<String>,
    child: Option<Child>,
}

impl Stream {
    /// Spawns `cmd` (stdout and stderr piped) and starts forwarding its stdout lines.
    pub fn spawn(mut cmd: Command, name: String) -> Stream {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        let stdout = child_stdout(&mut child);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Stream {
            name,
            lines: rx,
            seen: Vec::new(),
            child: Some(child),
        }
    }

    /// Waits (up to `timeout`) for a line matching `pred`; returns it. Lines before it are kept in
    /// [`seen`](Self::seen).
    #[track_caller]
    pub fn expect_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let stderr = self.stop_and_stderr();
                    panic!(
                        "`{}`: no matching line within {timeout:?}; lines so far:\n{}\nstderr:\n{stderr}",
                        self.name,
                        self.seen.join("\n"),
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let stderr = self.stop_and_stderr();
                    panic!(
                        "`{}` ended without a matching line; lines so far:\n{}\nstderr:\n{stderr}",
                        self.name,
                        self.seen.join("\n"),
                    )
                }
            }
        }
    }

    /// Every line received so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    fn stop_and_stderr(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let _ = child.kill();
        let _ = child.wait();
        let mut s = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A kubectl table (the default `get` output) split into columns by the header's column starts.
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses one table (header line plus rows). Columns start where the header has a word after two
    /// or more spaces, as kubectl's tab writer pads with at least three.
    pub fn parse(text: &str) -> Table {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next().unwrap_or_default();
        let starts = column_starts(header);
        let cut = |line: &str| -> Vec<String> {
            let chars: Vec<char> = line.chars().collect();
            starts
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let end = starts.get(i + 1).copied().unwrap_or(chars.len());
                    let s = s.min(chars.len());
                    let end = end.min(chars.len()).max(s);
                    chars[s..end].iter().collect::<String>().trim().to_string()
                })
                .collect()
        };
        let headers = cut(header);
        let rows = lines.map(cut).collect();
        Table { headers, rows }
    }

    /// Parses the output of `kubectl get a,b,c` / `get all`: tables separated by blank lines.
    pub fn parse_many(text: &str) -> Vec<Table> {
        text.split("\n\n")
            .filter(|t| !t.trim().is_empty())
            .map(Table::parse)
            .collect()
    }

    pub fn col(&self, header: &str) -> usize {
        self.headers
            .iter()
            .position(|h| h == header)
            .unwrap_or_else(|| panic!("no column {header:?} in {:?}", self.headers))
    }

    /// The row whose `NAME` column is `name`.
    #[track_caller]
    pub fn row(&self, name: &str) -> &[String] {
        let c = self.col("NAME");
        self.rows
            .iter()
            .find(|r| r[c] == name)
            .unwrap_or_else(|| panic!("no row {name:?} in {self:#?}"))
    }

    /// The value in column `header` of the row named `name`.
    #[track_caller]
    pub fn cell(&self, name: &str, header: &str) -> &str {
        let c = self.col(header);
        &self.row(name)[c]
    }

    pub fn names(&self) -> Vec<&str> {
        let c = self.col("NAME");
        self.rows.iter().map(|r| r[c].as_str()).collect()
    }
}

fn column_starts(header: &str) -> Vec<usize> {
    let chars: Vec<char> = header.chars().collect();
    let mut starts = Vec::new();
    let mut spaces = 0;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            spaces += 1;
            continue;
        }
        if i == 0 || spaces >= 2 {
            starts.push(i);
        }
        spaces = 0;
    }
    starts
}

/// Polls `cond` until it returns true or `timeout` passes.
#[track_caller]
pub fn eventually(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

impl Cluster {
    /// Creates a namespace with `kubectl apply -f -` (setup for tests about something else; the
    /// `kubectl create ...` verbs have their own tests).
    #[track_caller]
    pub fn namespace(&self, name: &str) {
        self.ok_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"),
        );
    }

    /// Creates a configmap with `kubectl apply -f -` in `namespace` with `data`.
    #[track_caller]
    pub fn configmap(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let mut yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n"
        );
        if data.is_empty() {
            yaml.push_str("  {}\n");
        }
        for (k, v) in data {
            yaml.push_str(&format!("  {k}: {v:?}\n"));
        }
        self.ok_stdin(&["apply", "-f", "-"], &yaml);
    }
}

/// A `kube` client for the cluster's kubeconfig, with timeouts so a hanging server fails the test.
pub async fn kube_client(c: &Cluster) -> kube::Client {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let kubeconfig = Kubeconfig::read_from(c.kubeconfig()).expect("reading the kubeconfig");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("loading the kubeconfig");
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(30));
    config.write_timeout = Some(Duration::from_secs(30));
    kube::Client::try_from(config).expect("building the client")
}
