//! Pulls from a real `docker-registry` on loopback: OCI and Docker schema-2 manifests, a
//! multi-platform index, whiteouts and opaque directories, a zstd layer, basic auth and pull
//! secrets, a tampered blob, concurrent pulls of one image. Runs as root (whiteouts are device
//! nodes, opaque directories need trusted.* xattrs).

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use k1s_runtime::image::{
    DockerConfig, ImageError, ImageStore, Platform, RegistryAuth, RegistryConfig,
};
use support::{Registry, TarBuilder, sha};

fn store(reg: &Registry) -> Result<(tempfile::TempDir, ImageStore)> {
    let dir = tempfile::tempdir()?;
    let cfg = RegistryConfig {
        insecure: vec![reg.addr.clone()],
        ..Default::default()
    };
    let s = ImageStore::open(&dir.path().join("images"), cfg)?;
    Ok((dir, s))
}

fn assert_busybox(image: &k1s_runtime::image::Image) {
    let top = image.layers.last().expect("a layer");
    let bb = top.join("bin/busybox");
    assert!(bb.metadata().unwrap().is_file(), "{}", bb.display());
    assert_eq!(bb.metadata().unwrap().mode() & 0o111, 0o111);
    let sh = std::fs::read_link(top.join("bin/sh")).unwrap();
    assert_eq!(sh.to_str(), Some("/bin/busybox"));
    assert!(
        std::fs::read_to_string(top.join("etc/passwd"))
            .unwrap()
            .starts_with("root:x:0:0")
    );
    assert_eq!(image.config.entrypoint, ["/bin/sh"]);
    assert_eq!(image.config.cmd, ["-c", "echo hi"]);
    assert!(image.config.env.contains(&"K1S_TEST=1".to_string()));
    assert_eq!(image.config.working_dir, "/tmp");
}

#[tokio::test]
async fn pulls_oci_and_docker_schema2_and_shares_layers() -> Result<()> {
    let reg = Registry::start()?;
    reg.push("base", "lib/busybox:oci", false)?;
    reg.push("base", "lib/busybox:v2s2", true)?;
    let (_d, store) = store(&reg)?;

    let oci = store
        .pull(
            &format!("{}/lib/busybox:oci", reg.addr),
            &RegistryAuth::Anonymous,
        )
        .await?;
    assert_busybox(&oci);
    assert_eq!(oci.reference, format!("{}/lib/busybox:oci", reg.addr));
    assert!(oci.id.starts_with("sha256:") && oci.manifest_digest.starts_with("sha256:"));
    let d2 = store
        .pull(
            &format!("{}/lib/busybox:v2s2", reg.addr),
            &RegistryAuth::Anonymous,
        )
        .await?;
    assert_busybox(&d2);
    let manifest: serde_json::Value =
        serde_json::from_slice(&reg.manifest("lib/busybox:v2s2").await?)?;
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    // Same uncompressed layer → the same unpacked directory, unpacked once.
    assert_eq!(oci.layers, d2.layers);
    assert_eq!(store.stats().layers_unpacked.load(Ordering::Relaxed), 1);

    // A second pull of the same tag downloads nothing.
    let before = store.stats().blobs_downloaded.load(Ordering::Relaxed);
    let again = store
        .pull(
            &format!("{}/lib/busybox:oci", reg.addr),
            &RegistryAuth::Anonymous,
        )
        .await?;
    assert_eq!(again.manifest_digest, oci.manifest_digest);
    assert_eq!(
        store.stats().blobs_downloaded.load(Ordering::Relaxed),
        before
    );

    // By digest, and `get` normalises.
    let by_digest = format!("{}/lib/busybox@{}", reg.addr, oci.manifest_digest);
    let img = store.pull(&by_digest, &RegistryAuth::Anonymous).await?;
    assert_eq!(img.id, oci.id);
    assert_eq!(store.get(&by_digest)?.unwrap().id, oci.id);
    assert!(store.get("busybox")?.is_none());
    assert_eq!(store.list()?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn plain_http_only_for_insecure_registries() -> Result<()> {
    let reg = Registry::start()?;
    reg.push("base", "x:1", false)?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path(), RegistryConfig::default())?;
    let err = store
        .pull(&format!("{}/x:1", reg.addr), &RegistryAuth::Anonymous)
        .await;
    assert!(matches!(err, Err(ImageError::Registry { .. })), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn mirrors_from_registries_yaml() -> Result<()> {
    let reg = Registry::start()?;
    reg.push("base", "library/busybox:latest", false)?;
    let dir = tempfile::tempdir()?;
    let mut cfg = RegistryConfig::default();
    cfg.merge_yaml(&format!(
        "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://{}\"\n",
        reg.addr
    ))?;
    let store = ImageStore::open(dir.path(), cfg)?;
    let img = store.pull("busybox", &RegistryAuth::Anonymous).await?;
    assert_eq!(img.reference, "docker.io/library/busybox:latest");
    assert_busybox(&img);
    Ok(())
}

#[tokio::test]
async fn multi_platform_index_selects_the_platform() -> Result<()> {
    let reg = Registry::start()?;
    reg.push("base", "multi:amd64", false)?;
    reg.push("wh", "multi:arm64", false)?;
    let amd = reg.manifest("multi:amd64").await?;
    let arm = reg.manifest("multi:arm64").await?;
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": mt, "digest": sha(&amd), "size": amd.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": mt, "digest": sha(&arm), "size": arm.len(),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    });
    reg.push_manifest(
        "multi:latest",
        "application/vnd.oci.image.index.v1+json",
        serde_json::to_vec(&index)?,
    )
    .await?;
    let reference = format!("{}/multi", reg.addr);

    let (_d, store1) = store(&reg)?;
    let store1 = store1.with_platform(Platform::parse("linux/arm64")?);
    let img = store1.pull(&reference, &RegistryAuth::Anonymous).await?;
    assert_eq!(img.manifest_digest, sha(&arm));
    let (_d2, store2) = store(&reg)?;
    let store2 = store2.with_platform(Platform::parse("linux/amd64")?);
    assert_eq!(
        store2
            .pull(&reference, &RegistryAuth::Anonymous)
            .await?
            .manifest_digest,
        sha(&amd)
    );
    let (_d3, store3) = store(&reg)?;
    let store3 = store3.with_platform(Platform::parse("linux/s390x")?);
    let err = store3.pull(&reference, &RegistryAuth::Anonymous).await;
    assert!(
        matches!(err, Err(ImageError::NoMatchingPlatform { .. })),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn whiteouts_and_opaque_dirs_become_overlay_form() -> Result<()> {
    let reg = Registry::start()?;
    reg.push("wh", "wh:1", false)?;
    let (_d, store) = store(&reg)?;
    let img = store
        .pull(&format!("{}/wh:1", reg.addr), &RegistryAuth::Anonymous)
        .await?;
    assert_eq!(img.layers.len(), 4);
    let whiteout = img.layers[2].join("etc/group");
    let meta = std::fs::symlink_metadata(&whiteout)?;
    assert!(meta.file_type().is_char_device(), "{meta:?}");
    assert_eq!(meta.rdev(), 0);
    assert!(!img.layers[2].join("etc/.wh.group").exists());
    let opaque = img.layers[3].join("data");
    assert_eq!(
        xattr::get(&opaque, "trusted.overlay.opaque")?,
        Some(b"y".to_vec())
    );
    assert_eq!(std::fs::read_to_string(opaque.join("new"))?, "new");
    assert!(!opaque.join(".wh..wh..opq").exists());
    assert_eq!(
        std::fs::read_to_string(img.layers[1].join("data/old/file"))?,
        "old"
    );
    Ok(())
}

#[tokio::test]
async fn zstd_and_uncompressed_layers() -> Result<()> {
    let reg = Registry::start()?;
    let tar = TarBuilder::new()
        .dir("z")
        .file_mode("z/file", b"zstd content", 0o4755)
        .symlink("z/link", "/etc/passwd")
        .finish();
    let plain = TarBuilder::new().file("plain", b"plain").finish();
    let zstd = zstd::encode_all(&tar[..], 3)?;
    let zd = reg.push_blob("z", zstd.clone()).await?;
    let pd = reg.push_blob("z", plain.clone()).await?;
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/z/file"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&tar), sha(&plain)]}
    }))?;
    let cd = reg.push_blob("z", config.clone()).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": zd, "size": zstd.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": pd, "size": plain.len()},
            {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "digest": sha(b"foreign"), "size": 7, "urls": ["http://127.0.0.1:1/foreign"]},
        ]
    });
    // A foreign layer has a diff-id too.
    let config2 = {
        let mut c: serde_json::Value = serde_json::from_slice(&config)?;
        c["rootfs"]["diff_ids"]
            .as_array_mut()
            .unwrap()
            .push(sha(b"foreign-tar").into());
        serde_json::to_vec(&c)?
    };
    let cd2 = reg.push_blob("z", config2.clone()).await?;
    let mut manifest = manifest;
    manifest["config"]["digest"] = cd2.into();
    manifest["config"]["size"] = config2.len().into();
    reg.push_manifest(
        "z:1",
        "application/vnd.oci.image.manifest.v1+json",
        serde_json::to_vec(&manifest)?,
    )
    .await?;
    let (_d, store) = store(&reg)?;
    let img = store
        .pull(&format!("{}/z:1", reg.addr), &RegistryAuth::Anonymous)
        .await?;
    assert_eq!(img.layers.len(), 2, "the foreign layer is skipped");
    let f = img.layers[0].join("z/file");
    assert_eq!(std::fs::read(&f)?, b"zstd content");
    assert_eq!(
        f.metadata()?.mode() & 0o7777,
        0o4755,
        "setuid kept on a regular file"
    );
    assert_eq!(f.metadata()?.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(img.layers[0].join("z/link"))?.to_str(),
        Some("/etc/passwd")
    );
    assert_eq!(std::fs::read(img.layers[1].join("plain"))?, b"plain");
    assert_eq!(img.config.cmd, ["/z/file"]);
    Ok(())
}

#[tokio::test]
async fn basic_auth_and_pull_secrets() -> Result<()> {
    let reg = Registry::start_with_auth("k1s", "s3cret")?;
    reg.push("base", "private:1", false)?;
    let reference = format!("{}/private:1", reg.addr);

    let (_d, s1) = store(&reg)?;
    let err = s1.pull(&reference, &RegistryAuth::Anonymous).await;
    assert!(matches!(err, Err(ImageError::Registry { .. })), "{err:?}");
    let wrong = RegistryAuth::Basic {
        username: "k1s".into(),
        password: "nope".into(),
    };
    assert!(s1.pull(&reference, &wrong).await.is_err());
    let ok = RegistryAuth::Basic {
        username: "k1s".into(),
        password: "s3cret".into(),
    };
    assert_busybox(&s1.pull(&reference, &ok).await?);

    let (_d2, store2) = store(&reg)?;
    let secret = format!(
        r#"{{"auths":{{"other.example":{{"auth":"eDp5"}},"{}":{{"auth":"{}"}}}}}}"#,
        reg.addr,
        base64_encode(b"k1s:s3cret")
    );
    let auth = RegistryAuth::DockerConfig(DockerConfig::from_json(secret.as_bytes())?);
    assert_busybox(&store2.pull(&reference, &auth).await?);

    // Credentials from registries.yaml when the caller has none.
    let dir = tempfile::tempdir()?;
    let mut cfg = RegistryConfig {
        insecure: vec![reg.addr.clone()],
        ..Default::default()
    };
    cfg.merge_yaml(&format!(
        "configs:\n  \"{}\":\n    auth:\n      username: k1s\n      password: s3cret\n",
        reg.addr
    ))?;
    let store3 = ImageStore::open(dir.path(), cfg)?;
    assert_busybox(&store3.pull(&reference, &RegistryAuth::Anonymous).await?);
    Ok(())
}

/// Docker Hub's flow for public images: the registry challenges with `Bearer realm=...`, the puller
/// fetches a token from the realm without credentials and retries with it.
#[tokio::test]
async fn anonymous_bearer_token_flow() -> Result<()> {
    let reg = Registry::start_with_token()?;
    reg.push("base", "public/busybox:1", false)?;
    let server = reg.token.as_ref().expect("token server");
    let pushes = server.requests().len();
    anyhow::ensure!(pushes > 0, "skopeo pushed without asking the token server");

    // Without a token the registry refuses and names the realm.
    let mut stream = std::net::TcpStream::connect(&reg.addr)?;
    use std::io::{Read as _, Write as _};
    write!(
        stream,
        "GET /v2/public/busybox/manifests/1 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        reg.addr
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert!(
        reply.contains(&format!("Bearer realm=\"{}\"", server.realm)),
        "{reply}"
    );

    let (_d, s) = store(&reg)?;
    let reference = format!("{}/public/busybox:1", reg.addr);
    assert_busybox(&s.pull(&reference, &RegistryAuth::Anonymous).await?);
    let pulls: Vec<_> = server.requests().into_iter().skip(pushes).collect();
    assert!(
        pulls.iter().any(|r| r
            .target
            .contains("scope=repository%3Apublic%2Fbusybox%3Apull")
            || r.target.contains("scope=repository:public/busybox:pull")),
        "the pull asked no token for the repository: {pulls:?}"
    );
    assert!(
        pulls.iter().all(|r| !r.authorized),
        "an anonymous pull sent credentials to the realm: {pulls:?}"
    );
    Ok(())
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn tampered_blob_is_rejected_and_nothing_is_kept() -> Result<()> {
    let reg = Registry::start()?;
    reg.push("base", "t:1", false)?;
    let manifest: serde_json::Value = serde_json::from_slice(&reg.manifest("t:1").await?)?;
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes)?;

    let (dir, store) = store(&reg)?;
    let err = store
        .pull(&format!("{}/t:1", reg.addr), &RegistryAuth::Anonymous)
        .await;
    assert!(
        matches!(err, Err(ImageError::DigestMismatch { .. })),
        "{err:?}"
    );
    let root = dir.path().join("images");
    let hex = layer.trim_start_matches("sha256:");
    assert!(!root.join("blobs/sha256").join(hex).exists());
    assert_eq!(std::fs::read_dir(root.join("layers/sha256"))?.count(), 0);
    assert_eq!(
        std::fs::read_dir(root.join("tmp"))?.count(),
        0,
        "no partial download left"
    );
    assert_eq!(std::fs::read_dir(root.join("refs"))?.count(), 0);
    assert!(store.get(&format!("{}/t:1", reg.addr))?.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_download_each_blob_once() -> Result<()> {
    let reg = Registry::start()?;
    reg.push("wh", "c:1", false)?;
    let manifest: serde_json::Value = serde_json::from_slice(&reg.manifest("c:1").await?)?;
    let (_d, store) = store(&reg)?;
    let store = Arc::new(store);
    let reference = format!("{}/c:1", reg.addr);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (s, r) = (store.clone(), reference.clone());
            tokio::spawn(async move { s.pull(&r, &RegistryAuth::Anonymous).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await??.id);
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
    for l in manifest["layers"].as_array().unwrap() {
        digests.push(l["digest"].as_str().unwrap().to_string());
    }
    for d in &digests {
        assert_eq!(reg.blob_gets(d), 1, "{d} fetched once\n{}", reg.log_text());
    }
    assert_eq!(
        store.stats().blobs_downloaded.load(Ordering::Relaxed),
        digests.len() as u64
    );
    Ok(())
}

#[tokio::test]
async fn hostile_layer_from_a_registry_leaves_nothing_behind() -> Result<()> {
    let reg = Registry::start()?;
    let sentinel_dir = tempfile::tempdir()?;
    let escape = sentinel_dir.path().join("escaped");
    let tar = TarBuilder::new()
        .file("ok", b"fine")
        .symlink("out", sentinel_dir.path().to_str().unwrap())
        .file("out/escaped", b"pwned")
        .finish();
    let gz = {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar)?;
        e.finish()?
    };
    let ld = reg.push_blob("evil", gz.clone()).await?;
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&tar)]}
    }))?;
    let cd = reg.push_blob("evil", config.clone()).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": gz.len()}]
    });
    reg.push_manifest(
        "evil:1",
        "application/vnd.oci.image.manifest.v1+json",
        serde_json::to_vec(&manifest)?,
    )
    .await?;
    let (dir, store) = store(&reg)?;
    let err = store
        .pull(&format!("{}/evil:1", reg.addr), &RegistryAuth::Anonymous)
        .await;
    assert!(matches!(err, Err(ImageError::Unpack { .. })), "{err:?}");
    // Again, now unpacking from the stored (verified) blob: the same refusal.
    let again = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        store.pull(&format!("{}/evil:1", reg.addr), &RegistryAuth::Anonymous),
    )
    .await?;
    assert!(matches!(again, Err(ImageError::Unpack { .. })), "{again:?}");
    assert!(!escape.exists());
    assert_eq!(std::fs::read_dir(sentinel_dir.path())?.count(), 0);
    let root = dir.path().join("images");
    assert_eq!(std::fs::read_dir(root.join("layers/sha256"))?.count(), 0);
    assert_eq!(std::fs::read_dir(root.join("tmp"))?.count(), 0);
    assert_eq!(std::fs::read_dir(root.join("refs"))?.count(), 0);
    Ok(())
}
