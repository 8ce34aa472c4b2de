//! Hostile layer tars: whatever a layer says, nothing is written outside its directory. Each case
//! unpacks into `<tmp>/layer` and checks a sentinel directory beside it stays untouched.

mod support;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use k1s_runtime::image::unpack::{UnpackError, UnpackLimits, unpack};
use support::TarBuilder;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("layer")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/sentinel"), "untouched").unwrap();
        Self { dir }
    }

    fn layer(&self) -> std::path::PathBuf {
        self.dir.path().join("layer")
    }

    fn unpack(&self, tar: &[u8]) -> Result<k1s_runtime::image::unpack::UnpackStats, UnpackError> {
        unpack(tar, &self.layer(), &UnpackLimits::default(), None)
    }

    /// The directory beside the layer is exactly as it was.
    fn assert_outside_untouched(&self) {
        let outside = self.dir.path().join("outside");
        let names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["sentinel"],
            "something was written outside the layer"
        );
        assert_eq!(
            std::fs::read_to_string(outside.join("sentinel")).unwrap(),
            "untouched"
        );
        let top: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(top.len(), 2, "{top:?}");
    }
}

fn hostile(r: Result<k1s_runtime::image::unpack::UnpackStats, UnpackError>) {
    assert!(matches!(r, Err(UnpackError::Hostile { .. })), "{r:?}");
}

#[test]
fn dotdot_paths_are_rejected() {
    let c = Case::new();
    hostile(
        c.unpack(
            &TarBuilder::new()
                .file("../outside/sentinel", b"pwned")
                .finish(),
        ),
    );
    hostile(
        c.unpack(
            &TarBuilder::new()
                .file("a/../../outside/x", b"pwned")
                .finish(),
        ),
    );
    c.assert_outside_untouched();
}

#[test]
fn absolute_paths_land_inside() {
    let c = Case::new();
    let tar = TarBuilder::new()
        .dir("/")
        .file("/etc/abs", b"inside")
        .file("./rel/./x", b"x")
        .finish();
    c.unpack(&tar).unwrap();
    assert_eq!(
        std::fs::read_to_string(c.layer().join("etc/abs")).unwrap(),
        "inside"
    );
    assert_eq!(
        std::fs::read_to_string(c.layer().join("rel/x")).unwrap(),
        "x"
    );
    c.assert_outside_untouched();
}

#[test]
fn writes_through_symlinks_are_rejected() {
    let c = Case::new();
    let outside = c.dir.path().join("outside");
    // An escaping symlink is fine as data...
    let tar = TarBuilder::new()
        .symlink("evil", outside.to_str().unwrap())
        .symlink("rel", "../outside")
        .finish();
    c.unpack(&tar).unwrap();
    assert_eq!(std::fs::read_link(c.layer().join("evil")).unwrap(), outside);
    // ...but nothing is written through it, as a parent, a file, or a directory.
    for tar in [
        TarBuilder::new()
            .symlink("evil", outside.to_str().unwrap())
            .file("evil/pwned", b"x")
            .finish(),
        TarBuilder::new()
            .symlink("rel", "../outside")
            .file("rel/sentinel", b"x")
            .finish(),
        TarBuilder::new()
            .symlink("rel", "../outside")
            .dir("rel/sub")
            .finish(),
        TarBuilder::new()
            .symlink("rel", "../outside")
            .file("rel/.wh.sentinel", b"")
            .finish(),
        TarBuilder::new()
            .symlink("rel", "../outside")
            .file("rel/.wh..wh..opq", b"")
            .finish(),
    ] {
        let c = Case::new();
        hostile(c.unpack(&tar));
        c.assert_outside_untouched();
    }
    // A symlink replaced by a file: the file is created, not the symlink's target written.
    let c = Case::new();
    let target = c.dir.path().join("outside/sentinel");
    let tar = TarBuilder::new()
        .symlink("f", target.to_str().unwrap())
        .file("f", b"replaced")
        .finish();
    c.unpack(&tar).unwrap();
    assert_eq!(
        std::fs::read_to_string(c.layer().join("f")).unwrap(),
        "replaced"
    );
    c.assert_outside_untouched();
}

#[test]
fn hardlinks_must_stay_inside() {
    for tar in [
        TarBuilder::new()
            .hardlink("h", "../outside/sentinel")
            .finish(),
        TarBuilder::new().hardlink("h", "/etc/passwd").finish(),
        TarBuilder::new()
            .symlink("s", "../outside")
            .hardlink("h", "s/sentinel")
            .finish(),
        TarBuilder::new().dir("d").hardlink("h", "d").finish(),
    ] {
        let c = Case::new();
        hostile(c.unpack(&tar));
        c.assert_outside_untouched();
        assert!(!c.layer().join("h").exists());
    }
    let c = Case::new();
    let tar = TarBuilder::new()
        .file("a", b"data")
        .hardlink("b", "a")
        .finish();
    c.unpack(&tar).unwrap();
    let (a, b) = (
        c.layer().join("a").metadata().unwrap(),
        c.layer().join("b").metadata().unwrap(),
    );
    assert_eq!(a.ino(), b.ino());
    // Writing through a symlink named like the target does not reach outside: linking a symlink
    // makes another symlink.
    let c = Case::new();
    let tar = TarBuilder::new()
        .symlink("s", "../outside/sentinel")
        .hardlink("h", "s")
        .finish();
    c.unpack(&tar).unwrap();
    assert!(
        c.layer()
            .join("h")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    c.assert_outside_untouched();
}

#[test]
fn devices_are_skipped_and_setuid_only_on_files() {
    let c = Case::new();
    let mut b = TarBuilder::new();
    b.char_device("dev/null");
    b.file_mode("suid", b"x", 0o4755);
    b.dir("d");
    let mut tar = b.finish();
    // Give the directory entry setuid+setgid+sticky bits by hand (mode field at offset 100).
    let dir_header = 512 * 3;
    tar[dir_header + 100..dir_header + 107].copy_from_slice(b"0007755");
    let sum: u32 = tar[dir_header..dir_header + 512]
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if (148..156).contains(&i) {
                32
            } else {
                x as u32
            }
        })
        .sum();
    let cks = format!("{sum:06o}\0 ");
    tar[dir_header + 148..dir_header + 156].copy_from_slice(cks.as_bytes());
    let stats = c.unpack(&tar).unwrap();
    assert_eq!(stats.skipped_devices, 1);
    assert!(!c.layer().join("dev/null").exists());
    assert_eq!(
        c.layer().join("suid").metadata().unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        c.layer().join("d").metadata().unwrap().mode() & 0o7777,
        0o1755
    );
}

#[test]
fn whiteouts_are_overlay_devices() {
    let c = Case::new();
    let tar = TarBuilder::new()
        .file("etc/.wh.passwd", b"")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/kept", b"k")
        .finish();
    c.unpack(&tar).unwrap();
    let m = c.layer().join("etc/passwd").symlink_metadata().unwrap();
    assert!(m.file_type().is_char_device() && m.rdev() == 0);
    assert_eq!(
        xattr::get(c.layer().join("opq"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    for bad in ["x/.wh...", "x/.wh.."] {
        let c = Case::new();
        // `x/.wh..` normalises to `x/.wh..`; both name `..` once the prefix is stripped.
        let r = c.unpack(&TarBuilder::new().file(bad, b"").finish());
        assert!(r.is_err(), "{bad}");
        c.assert_outside_untouched();
    }
}

#[test]
fn sizes_and_counts_are_capped() {
    let limits = UnpackLimits {
        max_total_bytes: 1 << 20,
        max_entry_bytes: 1000,
        max_entries: 10,
    };
    let c = Case::new();
    let big = TarBuilder::new().file("big", &[7u8; 2000]).finish();
    let r = unpack(&big[..], &c.layer(), &limits, None);
    assert!(
        matches!(
            r,
            Err(UnpackError::TooLarge {
                what: "entry size",
                ..
            })
        ),
        "{r:?}"
    );
    let mut many = TarBuilder::new();
    for i in 0..11 {
        many.file(&format!("f{i}"), b"");
    }
    let r = unpack(&many.finish()[..], &Case::new().layer(), &limits, None);
    assert!(
        matches!(
            r,
            Err(UnpackError::TooLarge {
                what: "entry count",
                ..
            })
        ),
        "{r:?}"
    );
    let c2 = Case::new();
    let r2 = unpack(
        &TarBuilder::new().file("f", b"").finish()[..],
        &c2.layer(),
        &limits,
        None,
    );
    assert!(r2.is_ok(), "{r2:?}");
    // A gzip bomb: a small blob that inflates past the total cap.
    let zeros = vec![0u8; 4 << 20];
    let mut tar = TarBuilder::new().file("z", &zeros[..999]).finish();
    tar.extend_from_slice(&zeros);
    let gz = {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    assert!(gz.len() < 64 << 10);
    let r = unpack(&gz[..], &Case::new().layer(), &limits, None);
    assert!(
        matches!(
            r,
            Err(UnpackError::TooLarge {
                what: "total size",
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn truncated_data_and_wrong_diff_id_are_errors() {
    let tar = TarBuilder::new().file("f", &[1u8; 3000]).finish();
    let r = unpack(
        &tar[..1200],
        &Case::new().layer(),
        &UnpackLimits::default(),
        None,
    );
    assert!(r.is_err(), "{r:?}");
    // Ending right after the data (no padding, no trailer) is accepted, as umoci writes it.
    let short = TarBuilder::new().file("f", &[1u8; 700]).finish();
    let c = Case::new();
    c.unpack(&short[..512 + 700]).unwrap();
    assert_eq!(std::fs::read(c.layer().join("f")).unwrap(), vec![1u8; 700]);
    let r = unpack(
        &tar[..],
        &Case::new().layer(),
        &UnpackLimits::default(),
        Some("sha256:0000000000000000000000000000000000000000000000000000000000000000"),
    );
    assert!(
        matches!(r, Err(UnpackError::DiffIdMismatch { .. })),
        "{r:?}"
    );
}
