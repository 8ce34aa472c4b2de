//! Air-gapped import (OCI layout archives, skopeo `oci-archive`, `docker save` archives), removal
//! and GC of the image store.

mod support;

use std::collections::HashSet;
use std::process::Command;

use anyhow::Result;
use k1s_runtime::image::{ImageError, ImageStore, RegistryConfig};
use support::{TarBuilder, layout, run};

fn oci_layout_tar(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let path = dir.join("layout.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path)?);
    b.append_dir_all(".", layout())?;
    b.finish()?;
    Ok(path)
}

#[tokio::test]
async fn imports_oci_layouts_and_docker_save_archives_then_gc() -> Result<()> {
    let work = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path(), RegistryConfig::default())?;

    // An OCI layout tarred as is: bare tags go on the repository named at import.
    let imported = store
        .import(&oci_layout_tar(work.path())?, Some("k1s.test/bb"))
        .await?;
    let mut refs: Vec<_> = imported.iter().map(|i| i.reference.clone()).collect();
    refs.sort();
    assert_eq!(refs, ["k1s.test/bb:base", "k1s.test/bb:wh"]);
    let base = store.get("k1s.test/bb:base")?.unwrap();
    assert!(base.layers[0].join("bin/busybox").is_file());
    assert_eq!(base.config.entrypoint, ["/bin/sh"]);
    let wh = store.get("k1s.test/bb:wh")?.unwrap();
    assert_eq!(wh.layers.len(), 4);
    assert_eq!(wh.layers[0], base.layers[0], "shared layer unpacked once");

    // skopeo's oci-archive names the image in full.
    let oci_archive = work.path().join("oci-archive.tar");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:base", layout().display()),
        &format!("oci-archive:{}:k1s.test/ocia:2", oci_archive.display()),
    ]))?;
    let imported = store.import(&oci_archive, None).await?;
    assert_eq!(imported[0].reference, "k1s.test/ocia:2");

    // `docker save` format.
    let saved = work.path().join("saved.tar");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:wh", layout().display()),
        &format!("docker-archive:{}:k1s.test/saved:1", saved.display()),
    ]))?;
    let imported = store.import(&saved, None).await?;
    assert_eq!(imported[0].reference, "k1s.test/saved:1");
    let img = store.get("k1s.test/saved:1")?.unwrap();
    assert_eq!(img.layers.len(), 4);
    assert!(img.layers[0].join("bin/busybox").is_file());
    assert_eq!(img.config.entrypoint, ["/bin/sh"]);

    // rm by reference and by image ID, then GC keeps what is referenced or in use.
    let listed = store.list()?;
    assert_eq!(listed.len(), 4);
    assert_eq!(store.remove("k1s.test/bb:wh")?, ["k1s.test/bb:wh"]);
    assert!(matches!(
        store.remove("k1s.test/bb:wh"),
        Err(ImageError::NotFound(_))
    ));
    let saved_id = img.id.trim_start_matches("sha256:")[..12].to_string();
    assert_eq!(store.remove(&saved_id)?, ["k1s.test/saved:1"]);
    let in_use: HashSet<_> = [wh.layers[3].clone()].into();
    let stats = store.gc(&in_use).await?;
    assert!(stats.blobs_removed > 0, "{stats:?}");
    assert!(wh.layers[3].is_dir(), "a layer in use survives GC");
    assert!(!wh.layers[2].exists(), "an unreferenced layer is removed");
    for l in &base.layers {
        assert!(l.is_dir());
    }
    // What is left still imports/pulls nothing new and is intact.
    assert!(
        store.get("k1s.test/bb:base")?.unwrap().layers[0]
            .join("bin/busybox")
            .is_file()
    );
    let stats = store.gc(&HashSet::new()).await?;
    assert_eq!(stats.layers_removed, 1);
    assert_eq!(stats.blobs_removed, 0);
    Ok(())
}

#[tokio::test]
async fn hostile_and_bogus_archives_are_rejected() -> Result<()> {
    let work = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(&dir.path().join("store"), RegistryConfig::default())?;
    let evil = work.path().join("evil.tar");
    std::fs::write(&evil, TarBuilder::new().file("../escaped", b"x").finish())?;
    assert!(store.import(&evil, None).await.is_err());
    assert!(!dir.path().join("escaped").exists());
    let empty = work.path().join("empty.tar");
    std::fs::write(&empty, TarBuilder::new().file("hello", b"x").finish())?;
    assert!(matches!(
        store.import(&empty, None).await,
        Err(ImageError::InvalidContent { .. })
    ));
    // An index.json naming a blob whose content does not match its digest.
    let bad = work.path().join("bad.tar");
    let d = format!("sha256:{}", "a".repeat(64));
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":2}}]}}"#
    );
    std::fs::write(
        &bad,
        TarBuilder::new()
            .file("index.json", index.as_bytes())
            .file(&format!("blobs/sha256/{}", "a".repeat(64))[..], b"{}")
            .finish(),
    )?;
    let r = store.import(&bad, Some("x")).await;
    assert!(matches!(r, Err(ImageError::DigestMismatch { .. })), "{r:?}");
    assert_eq!(std::fs::read_dir(dir.path().join("store/tmp"))?.count(), 0);
    Ok(())
}
