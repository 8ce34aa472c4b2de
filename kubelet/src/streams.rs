//! `kubectl exec`, `attach` and `port-forward` for this node's pods: the [`PodStreams`] source
//! the API server's streaming subresources use, over the runtime's exec and attach sessions and
//! the pod sandbox's network namespace ([`crate::portforward`]).
//!
//! Invariants: every blocking call (opening a session, reading and writing its pipes, waiting
//! for the exit) runs on a dedicated thread, never on an async worker; each pump thread ends
//! when its file ends or the API side drops its channel end; the exit is reported only after the
//! output pumps have finished, so no output is lost behind the status.

use std::fs::File;
use std::io::{Read, Write};
use std::thread;

use bytes::Bytes;
use k1s_apimachinery::status::StatusError;
use k1s_apiserver::pod_streams::{
    Exit, OpenPort, OpenSession, PodStreams, StreamOptions, StreamSession,
};
use k1s_runtime::container::{ContainerManager, ExecSpec};
use k1s_runtime::sandbox::SandboxManager;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::logs::pick_run;

/// Output is read in chunks of this size.
const CHUNK: usize = 32 * 1024;
/// Chunks in flight per stream.
const DEPTH: usize = 8;

/// Runs exec and attach sessions through the runtime.
pub struct RuntimeStreams {
    pub containers: ContainerManager,
    pub sandboxes: std::sync::Arc<SandboxManager>,
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    // A failed spawn only loses this stream's relay; the channels it owns are dropped.
    let _ = thread::Builder::new().name(name.into()).spawn(f);
}

/// Copies `file` into a channel until it ends or the receiver goes away.
fn read_pump(mut file: File, name: &str) -> (mpsc::Receiver<Bytes>, oneshot::Receiver<()>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    let (done_tx, done_rx) = oneshot::channel();
    spawn(name, move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match file.read(&mut buf) {
                // EIO is how a pty master ends once the terminal's last user is gone.
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = done_tx.send(());
    });
    (rx, done_rx)
}

/// Copies a channel into `file`; dropping the sender closes the file (end of input).
fn write_pump(mut file: File, name: &str) -> mpsc::Sender<Bytes> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(DEPTH);
    spawn(name, move || {
        while let Some(data) = rx.blocking_recv() {
            if file.write_all(&data).is_err() {
                break;
            }
        }
    });
    tx
}

/// Output that nobody asked for is still drained, so the process never blocks on it.
fn discard(file: File) {
    spawn("stream-discard", move || {
        let _ = std::io::copy(&mut { file }, &mut std::io::sink());
    });
}

fn target(mgr: &ContainerManager, pod: &Value, container: &str) -> Result<String, StatusError> {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    pick_run(mgr, uid, container, false).ok_or_else(|| {
        StatusError::bad_request(format!(
            "container {container} in pod {} is not running",
            pod["metadata"]["name"].as_str().unwrap_or_default()
        ))
    })
}

/// Outputs as the client asked: a receiver, or drained.
fn output(
    file: Option<File>,
    wanted: bool,
    name: &str,
) -> (Option<mpsc::Receiver<Bytes>>, Option<oneshot::Receiver<()>>) {
    match file {
        Some(f) if wanted => {
            let (rx, done) = read_pump(f, name);
            (Some(rx), Some(done))
        }
        Some(f) => {
            discard(f);
            (None, None)
        }
        None => (None, None),
    }
}

fn open_exec(
    mgr: &ContainerManager,
    pod: &Value,
    opts: &StreamOptions,
) -> Result<StreamSession, StatusError> {
    let id = target(mgr, pod, &opts.container)?;
    let spec = ExecSpec {
        cmd: opts.command.clone(),
        tty: opts.tty,
        stdin: opts.stdin,
        env: Vec::new(),
    };
    let mut session = mgr.exec(&id, &spec).map_err(|e| {
        StatusError::internal(&format!(
            "failed to exec in container {}: {e}",
            opts.container
        ))
    })?;
    // With a tty the session keeps the master (resizes are ioctls on it); the pumps use copies.
    let (stdin, stdout_file) = match &session.pty {
        Some(pty) => {
            let input = pty.try_clone().ok().filter(|_| opts.stdin);
            (input, pty.try_clone().ok())
        }
        None => (session.stdin.take(), session.stdout.take()),
    };
    let (stdout, out_done) = output(stdout_file, opts.stdout, "exec-stdout");
    let (stderr, err_done) = output(session.stderr.take(), opts.stderr, "exec-stderr");
    let stdin = stdin.map(|f| write_pump(f, "exec-stdin"));
    let (resize_tx, mut resize_rx) = mpsc::channel::<(u16, u16)>(4);
    let (exit_tx, exit_rx) = oneshot::channel();
    spawn("exec-wait", move || {
        // Resizes come until the API side has seen the output end and drops its sender.
        while let Some((w, h)) = resize_rx.blocking_recv() {
            let _ = session.resize(h, w);
        }
        let code = session.wait();
        for done in [out_done, err_done].into_iter().flatten() {
            let _ = done.blocking_recv();
        }
        let _ = exit_tx.send(match code {
            Ok(c) => Exit::Code(c),
            Err(e) => Exit::Error(e.to_string()),
        });
    });
    Ok(StreamSession {
        stdin,
        stdout,
        stderr,
        resize: opts.tty.then_some(resize_tx),
        exit: exit_rx,
    })
}

fn open_attach(
    mgr: &ContainerManager,
    pod: &Value,
    opts: &StreamOptions,
) -> Result<StreamSession, StatusError> {
    let id = target(mgr, pod, &opts.container)?;
    let mut session = mgr.attach(&id).map_err(|e| {
        StatusError::internal(&format!(
            "failed to attach to container {}: {e}",
            opts.container
        ))
    })?;
    // Without a tty the relay owns the container's stdin, so our end of input is its EOF
    // (`stdinOnce`); with one the session keeps the master for resizes and the relay a copy.
    let stdin = if session.tty {
        session.stdin.as_ref().and_then(|f| f.try_clone().ok())
    } else {
        session.stdin.take()
    };
    let stdin = stdin
        .filter(|_| opts.stdin)
        .map(|f| write_pump(f, "attach-stdin"));
    let stdout_file = session.stdout.try_clone().ok();
    let (stdout, out_done) = output(stdout_file, opts.stdout, "attach-stdout");
    let (stderr, err_done) = output(session.stderr.take(), opts.stderr, "attach-stderr");
    let (resize_tx, mut resize_rx) = mpsc::channel::<(u16, u16)>(4);
    let (exit_tx, exit_rx) = oneshot::channel();
    let tty = session.tty;
    spawn("attach-wait", move || {
        while let Some((w, h)) = resize_rx.blocking_recv() {
            let _ = session.resize(h, w);
        }
        for done in [out_done, err_done].into_iter().flatten() {
            let _ = done.blocking_recv();
        }
        drop(session);
        let _ = exit_tx.send(Exit::Code(0));
    });
    Ok(StreamSession {
        stdin,
        stdout,
        stderr,
        resize: tty.then_some(resize_tx),
        exit: exit_rx,
    })
}

/// Runs `open` on its own thread (it talks to the shim over a blocking socket).
fn off_worker(
    mgr: ContainerManager,
    pod: Value,
    opts: StreamOptions,
    open: fn(&ContainerManager, &Value, &StreamOptions) -> Result<StreamSession, StatusError>,
) -> OpenSession {
    Box::pin(async move {
        let (tx, rx) = oneshot::channel();
        spawn("stream-open", move || {
            let _ = tx.send(open(&mgr, &pod, &opts));
        });
        rx.await
            .unwrap_or_else(|_| Err(StatusError::internal("stream open thread failed")))
    })
}

impl PodStreams for RuntimeStreams {
    fn exec(&self, pod: &Value, opts: StreamOptions) -> OpenSession {
        off_worker(self.containers.clone(), pod.clone(), opts, open_exec)
    }

    fn attach(&self, pod: &Value, opts: StreamOptions) -> OpenSession {
        off_worker(self.containers.clone(), pod.clone(), opts, open_attach)
    }

    fn port_forward(&self, pod: &Value, port: u16) -> OpenPort {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let host_network = pod["spec"]["hostNetwork"].as_bool() == Some(true);
        let sandboxes = self.sandboxes.clone();
        let netns = move || {
            if host_network {
                return Ok(None);
            }
            let sandbox = sandboxes
                .get(&uid)
                .ok_or_else(|| format!("pod sandbox {uid} not found"))?;
            let ns = sandbox.namespace("net").cloned();
            ns.map(Some)
                .ok_or_else(|| format!("pod sandbox {uid} has no network namespace"))
        };
        Box::pin(crate::portforward::connect(netns, port))
    }
}
