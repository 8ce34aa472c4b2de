//! Test support for images: a real `docker-registry` on 127.0.0.1 (random port, temp storage,
//! killed on drop), a busybox-static OCI layout built once per test binary with umoci, and helpers
//! to push images with skopeo or by hand (oci-client) and to craft layer tars.
//!
//! Needs the Debian packages docker-registry, skopeo, umoci, busybox-static and apache2-utils;
//! a missing tool fails the test loudly.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::Digest as _;

pub mod token;

/// Runs a command, failing with its stderr if it does not succeed; returns stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?} (is the Debian package installed?)"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn scratch_dir() -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // Statics are never dropped, so earlier test processes left their layouts: remove old ones.
    for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old && e.file_name().to_string_lossy().starts_with("k1s-images-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let dir = base.join(format!("k1s-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `sha256:<hex>` of `bytes`.
pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The OCI layout with tags `base` (busybox rootfs) and `wh` (base plus a layer with files, a
/// whiteout of /etc/group and an opaque /data), built once per test binary.
pub fn layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| build_layout().expect("building the test OCI layout"))
}

fn build_layout() -> Result<PathBuf> {
    let dir = scratch_dir();
    let rootfs = dir.join("rootfs");
    let oci = dir.join("oci");
    let _ = std::fs::remove_dir_all(&rootfs);
    let _ = std::fs::remove_dir_all(&oci);
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::create_dir_all(rootfs.join("etc"))?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .context("copying /bin/busybox (busybox-static)")?;
    let list = run(Command::new("/bin/busybox").arg("--list-full"))?;
    for applet in list.lines().filter(|l| !l.is_empty()) {
        let p = rootfs.join(applet);
        if p.exists() || applet == "bin/busybox" {
            continue;
        }
        std::fs::create_dir_all(p.parent().unwrap())?;
        std::os::unix::fs::symlink("/bin/busybox", &p)?;
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    let image = |tag: &str| format!("{}:{tag}", oci.display());
    run(Command::new("umoci").args(["init", "--layout"]).arg(&oci))?;
    run(Command::new("umoci").args(["new", "--image", &image("base")]))?;
    run(Command::new("umoci")
        .args(["insert", "--image", &image("base")])
        .arg(&rootfs)
        .arg("/"))?;
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image("base"),
        "--config.entrypoint=/bin/sh",
        "--config.cmd=-c",
        "--config.cmd=echo hi",
        "--config.env=K1S_TEST=1",
        "--config.workingdir=/tmp",
    ]))?;
    // `wh`: base + /data/{keep,old/file}, then a whiteout of /etc/group, then an opaque /data.
    run(Command::new("umoci").args(["tag", "--image", &image("base"), "wh"]))?;
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(data.join("old"))?;
    std::fs::write(data.join("keep"), "keep")?;
    std::fs::write(data.join("old/file"), "old")?;
    run(Command::new("umoci")
        .args(["insert", "--image", &image("wh")])
        .arg(&data)
        .arg("/data"))?;
    run(Command::new("umoci").args([
        "insert",
        "--image",
        &image("wh"),
        "--whiteout",
        "/etc/group",
    ]))?;
    let fresh = dir.join("fresh");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh)?;
    std::fs::write(fresh.join("new"), "new")?;
    run(Command::new("umoci")
        .args(["insert", "--image", &image("wh"), "--opaque"])
        .arg(&fresh)
        .arg("/data"))?;
    Ok(oci)
}

/// A `docker-registry` serving 127.0.0.1:<random port> from a temp dir; killed on drop.
pub struct Registry {
    pub addr: String,
    pub dir: tempfile::TempDir,
    child: Child,
    log: PathBuf,
    pub creds: Option<(String, String)>,
    /// The token server of a registry started with [`Registry::start_with_token`].
    pub token: Option<token::TokenServer>,
    token_dir: Option<tempfile::TempDir>,
}

impl Registry {
    /// An open registry.
    pub fn start() -> Result<Self> {
        Self::spawn(None, None)
    }

    /// A registry that takes only bearer tokens from its own token server (which hands them to
    /// anyone, as Docker Hub does for public images): the anonymous bearer-token flow.
    pub fn start_with_token() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let server = token::TokenServer::start(dir.path())?;
        let mut reg = Self::spawn(None, Some(&server))?;
        reg.token = Some(server);
        reg.token_dir = Some(dir);
        Ok(reg)
    }

    /// A registry requiring basic auth (htpasswd, bcrypt).
    pub fn start_with_auth(user: &str, password: &str) -> Result<Self> {
        Self::spawn(Some((user.to_string(), password.to_string())), None)
    }

    fn spawn(creds: Option<(String, String)>, token: Option<&token::TokenServer>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\nvalidation:\n  manifests:\n    urls:\n      allow:\n        - ^http://127\\.0\\.0\\.1\n",
            dir.path().join("storage").display()
        );
        if let Some((u, p)) = &creds {
            let line = run(Command::new("htpasswd").args(["-Bbn", u, p]))
                .context("htpasswd (apache2-utils)")?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, line.trim())?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: k1s-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if let Some(t) = token {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                token::SERVICE,
                token::ISSUER,
                t.cert.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = dir.path().join("registry.log");
        let logf = std::fs::File::create(&log)?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()
            .context("starting docker-registry (Debian package docker-registry)")?;
        let reg = Self {
            addr,
            dir,
            child,
            log,
            creds,
            token: None,
            token_dir: None,
        };
        reg.wait_ready()?;
        Ok(reg)
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "docker-registry did not listen on {} in 20s: {}",
            self.addr,
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many successful GETs of blob `digest` the registry has logged.
    pub fn blob_gets(&self, digest: &str) -> usize {
        let needle = format!("/blobs/{digest}");
        self.log_text()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&needle) && l.contains("\" 200 "))
            .count()
    }

    /// The file the registry keeps blob `digest` in.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Pushes `tag` of the test layout to `repo_tag` here (v2s2 = Docker schema 2).
    pub fn push(&self, tag: &str, repo_tag: &str, v2s2: bool) -> Result<()> {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if v2s2 {
            cmd.args(["--format", "v2s2"]);
        }
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}:{tag}", layout().display()))
            .arg(format!("docker://{}/{repo_tag}", self.addr));
        run(&mut cmd).map(|_| ())
    }

    /// An oci-client for pushing by hand (plain HTTP to this registry).
    pub fn client(&self) -> oci_client::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::Http,
            ..Default::default()
        })
    }

    pub fn reference(&self, repo_tag: &str) -> oci_client::Reference {
        format!("{}/{repo_tag}", self.addr).parse().unwrap()
    }

    /// The raw manifest bytes of `repo_tag` (OCI or Docker).
    pub async fn manifest(&self, repo_tag: &str) -> Result<Vec<u8>> {
        let (b, _) = self
            .client()
            .pull_manifest_raw(
                &self.reference(repo_tag),
                &oci_client::secrets::RegistryAuth::Anonymous,
                k1s_runtime::image::manifest::ACCEPT,
            )
            .await?;
        Ok(b.to_vec())
    }

    /// PUTs a blob.
    pub async fn push_blob(&self, repo: &str, data: Vec<u8>) -> Result<String> {
        let d = sha(&data);
        self.client()
            .push_blob(&self.reference(&format!("{repo}:x")), data, &d)
            .await?;
        Ok(d)
    }

    /// PUTs a manifest or index under `repo_tag`.
    pub async fn push_manifest(
        &self,
        repo_tag: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> Result<()> {
        self.client()
            .push_manifest_raw(
                &self.reference(repo_tag),
                body,
                http::HeaderValue::from_str(media_type)?,
            )
            .await?;
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tar built entry by entry with raw names (so hostile names like `../x` can be written).
pub struct TarBuilder {
    out: Vec<u8>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        Self { out: Vec::new() }
    }

    fn header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let bytes = name.as_bytes();
        assert!(bytes.len() < 100, "short names only");
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h
    }

    fn push(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_mode(name, data, 0o644)
    }

    pub fn file_mode(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let h = Self::header(name, tar::EntryType::Regular, data.len() as u64, mode);
        self.push(h, data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        let h = Self::header(name, tar::EntryType::Directory, 0, 0o755);
        self.push(h, &[])
    }

    fn link(&mut self, name: &str, target: &str, kind: tar::EntryType) -> &mut Self {
        let mut h = Self::header(name, kind, 0, 0o777);
        let t = target.as_bytes();
        h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
        self.push(h, &[])
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(name, target, tar::EntryType::Symlink)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(name, target, tar::EntryType::Link)
    }

    pub fn char_device(&mut self, name: &str) -> &mut Self {
        let h = Self::header(name, tar::EntryType::Char, 0, 0o666);
        self.push(h, &[])
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

/// Writes `bytes` to a new file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    Ok(())
}
