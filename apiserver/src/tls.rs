//! The cluster's PKI and the API server's rustls configuration.
//!
//! Layout of `<data-dir>/pki` (PEM, keys PKCS#8 ECDSA P-256):
//!
//! | file | what |
//! |---|---|
//! | `ca.crt`, `ca.key` | self-signed cluster CA (10 years) |
//! | `apiserver.crt`, `apiserver.key` | serving certificate (1 year) |
//! | `admin.crt`, `admin.key` | client certificate `CN=k1s-admin, O=system:masters` (1 year) |
//! | `admin.token` | random bearer token for the same admin user |
//! | `sa.key` | service-account token signing key (ES256); created once, never rotated here |
//!
//! Invariants:
//! - Private keys and the token are created with mode 0600 (never widened then narrowed) and
//!   replaced atomically (temporary file + rename), so a crash leaves either the old or new file.
//! - A start with an unchanged SAN set reads and parses files only (about a millisecond); a
//!   changed SAN set re-issues only the serving certificate. Leaf certificates are also re-issued
//!   when they expire within [`RENEW_BEFORE`], no longer chain to the CA, or no longer match their
//!   key. A missing or expiring CA regenerates everything.
//! - Client certificates are optional in the handshake but, when presented, must chain to the CA
//!   (x509 auth); requests without one are authenticated by bearer token in [`crate::auth`].

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

/// Common name of the cluster CA.
pub const CA_COMMON_NAME: &str = "k1s-ca";
/// Common name (user name) of the admin client certificate.
pub const ADMIN_USER: &str = "k1s-admin";
/// Organization (group) of the admin client certificate; bound to cluster-admin upstream.
pub const ADMIN_GROUP: &str = "system:masters";
/// Common name of the API server's serving certificate.
pub const SERVER_COMMON_NAME: &str = "k1s-apiserver";
/// DNS names every serving certificate carries, as kube-apiserver's does.
pub const SERVICE_DNS_NAMES: [&str; 4] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// Lifetime of the CA certificate.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// Lifetime of leaf (serving and client) certificates.
pub const LEAF_VALIDITY: Duration = Duration::days(365);
/// Certificates expiring sooner than this are re-issued at start-up.
pub const RENEW_BEFORE: Duration = Duration::days(30);
/// `not_before` is back-dated by this much to tolerate small clock skew between hosts.
const BACKDATE: Duration = Duration::hours(1);

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "apiserver.crt";
const SERVER_KEY: &str = "apiserver.key";
const ADMIN_CERT: &str = "admin.crt";
const ADMIN_KEY: &str = "admin.key";
const ADMIN_TOKEN: &str = "admin.token";
const SA_KEY: &str = "sa.key";

/// Errors from creating, loading or using the PKI.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PKI file or directory could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `create directory`).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A `--tls-san` value is neither an IP address nor a valid DNS name.
    #[error("invalid TLS subject alternative name {0:?}")]
    InvalidSan(String),
    /// Certificate or key generation failed.
    #[error("generating {what}: {source}")]
    Generate {
        /// Which certificate or key.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("parsing {what}: {message}")]
    Parse {
        /// Which certificate or key.
        what: &'static str,
        /// Why it could not be used.
        message: String,
    },
    /// rustls rejected the configuration.
    #[error("building TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("building client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

type Result<T, E = TlsError> = std::result::Result<T, E>;

/// The cluster PKI: everything as PEM text, ready for rustls or a kubeconfig.
///
/// Deliberately not `Debug`: it holds private keys.
#[derive(Clone)]
pub struct Pki {
    /// Directory the files live in.
    pub dir: PathBuf,
    /// Cluster CA certificate.
    pub ca_cert_pem: String,
    /// Cluster CA private key; signs serving certificates issued later (e.g. for the kubelet).
    pub ca_key_pem: String,
    /// API server serving certificate.
    pub server_cert_pem: String,
    /// API server serving key.
    pub server_key_pem: String,
    /// Admin client certificate (`CN=k1s-admin, O=system:masters`).
    pub admin_cert_pem: String,
    /// Admin client key.
    pub admin_key_pem: String,
    /// Admin bearer token.
    pub admin_token: String,
    /// Service-account token signing key (PKCS#8 ECDSA P-256); see [`crate::satoken`].
    pub sa_key_pem: String,
    /// The SANs of the serving certificate, as passed to [`ensure_pki`] plus the defaults.
    pub server_sans: Vec<String>,
}

impl Pki {
    /// Issues a new leaf certificate signed by the cluster CA and returns `(cert_pem, key_pem)`.
    ///
    /// `sans` may hold IP addresses and DNS names. `server` selects the serverAuth extended key
    /// usage, otherwise clientAuth; `organizations` become the subject's O attributes (groups).
    pub fn issue_leaf(
        &self,
        common_name: &str,
        organizations: &[&str],
        sans: &[String],
        server: bool,
    ) -> Result<(String, String)> {
        let issuer = ca_issuer(&self.ca_cert_pem, &self.ca_key_pem)?;
        let sans = sans
            .iter()
            .map(|s| parse_san(s))
            .collect::<Result<BTreeSet<_>>>()?;
        let purpose = if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        };
        issue_leaf(
            &issuer,
            common_name,
            organizations,
            &sans,
            purpose,
            "leaf certificate",
        )
    }
}

/// Loads the PKI from `dir`, generating whatever is missing, stale or inconsistent.
///
/// `sans` are extra subject alternative names for the serving certificate (`--tls-san`); the
/// loopback addresses, `localhost`, the host name and the in-cluster `kubernetes` service names
/// are always included.
pub fn ensure_pki(dir: &Path, sans: &[String]) -> Result<Pki> {
    create_dir(dir)?;
    let now = OffsetDateTime::now_utc();
    let want_sans = desired_sans(sans, hostname().as_deref())?;

    // The CA: load it, or (re)generate it together with every leaf it signs.
    let loaded_ca = match (
        read_optional(&dir.join(CA_CERT))?,
        read_optional(&dir.join(CA_KEY))?,
    ) {
        (Some(cert), Some(key)) if ca_usable(&cert, &key, now) => Some((cert, key)),
        (None, None) => None,
        _ => {
            tracing::warn!(dir = %dir.display(), "cluster CA missing, invalid or expiring: regenerating the PKI");
            None
        }
    };
    let ca_fresh = loaded_ca.is_none();
    // Everything new is written at the end in one batch (one round of fsyncs).
    let mut pending = Pending::default();
    let (ca_cert_pem, ca_key_pem) = match loaded_ca {
        Some(ca) => ca,
        None => {
            let pair = generate_ca(now)?;
            pending.pair(dir, CA_CERT, CA_KEY, &pair);
            pair
        }
    };
    let ca_ski = key_identifier(&ca_cert_pem)?;

    let server = load_leaf(dir, SERVER_CERT, SERVER_KEY, ca_fresh)?.filter(|(cert, key)| {
        leaf_usable(cert, key, &ca_ski, now, "serving", |c| {
            san_set(c).as_ref() == Some(&want_sans)
        })
    });
    let admin = load_leaf(dir, ADMIN_CERT, ADMIN_KEY, ca_fresh)?
        .filter(|(cert, key)| leaf_usable(cert, key, &ca_ski, now, "admin", |_| true));

    // Parsing the CA key costs more than the rest of a load, so only do it to issue.
    let mut issuer = None;
    let (server_cert_pem, server_key_pem) = match server {
        Some(pair) => pair,
        None => {
            let pair = issue_leaf(
                lazy_issuer(&mut issuer, &ca_cert_pem, &ca_key_pem)?,
                SERVER_COMMON_NAME,
                &[],
                &want_sans,
                ExtendedKeyUsagePurpose::ServerAuth,
                "serving certificate",
            )?;
            pending.pair(dir, SERVER_CERT, SERVER_KEY, &pair);
            tracing::info!(dir = %dir.display(), "issued API server serving certificate");
            pair
        }
    };
    let (admin_cert_pem, admin_key_pem) = match admin {
        Some(pair) => pair,
        None => {
            let pair = issue_leaf(
                lazy_issuer(&mut issuer, &ca_cert_pem, &ca_key_pem)?,
                ADMIN_USER,
                &[ADMIN_GROUP],
                &BTreeSet::new(),
                ExtendedKeyUsagePurpose::ClientAuth,
                "admin certificate",
            )?;
            pending.pair(dir, ADMIN_CERT, ADMIN_KEY, &pair);
            pair
        }
    };

    let token_path = dir.join(ADMIN_TOKEN);
    let admin_token = match read_optional(&token_path)? {
        Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            let token = random_token();
            pending.file(token_path, &token, 0o600);
            token
        }
    };
    // The signing key outlives CA rotations: tokens already handed to pods stay valid.
    let sa_path = dir.join(SA_KEY);
    let sa_key_pem = match read_optional(&sa_path)? {
        Some(pem) if parse_key_pair(&pem, "service-account key").is_ok() => pem,
        _ => {
            let pem = key_pair()?.serialize_pem();
            pending.file(sa_path, &pem, 0o600);
            pem
        }
    };
    pending.write()?;

    Ok(Pki {
        dir: dir.to_owned(),
        ca_cert_pem,
        ca_key_pem,
        server_cert_pem,
        server_key_pem,
        admin_cert_pem,
        admin_key_pem,
        admin_token,
        sa_key_pem,
        server_sans: want_sans.iter().map(San::to_string).collect(),
    })
}

/// Builds the API server's rustls configuration.
///
/// ALPN offers `h2` then `http/1.1`. Client certificates are optional, but one that is presented
/// must chain to the cluster CA, or the handshake fails.
pub fn server_config(pki: &Pki) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_certs(&pki.ca_cert_pem, "CA certificate")? {
        roots.add(cert)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let chain = parse_certs(&pki.server_cert_pem, "serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).map_err(|e| {
        TlsError::Parse {
            what: "serving key",
            message: e.to_string(),
        }
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Writes `contents` to `path` atomically, creating the file with `mode` from the start.
///
/// See [`write_all_atomic`].
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    write_all_atomic(&[(path, contents, mode)])
}

/// Writes several files, each atomically, creating each with its mode from the start.
///
/// Every file's data goes to a temporary sibling created with `O_EXCL` and the mode; all of them
/// are fsynced concurrently (the file system folds concurrent fsyncs into one journal commit,
/// which is what makes first start-up fast), then renamed over their targets, and the
/// directories are fsynced. Readers see each file old or new, never partial; a crash between two
/// renames can leave some files old and some new, which [`ensure_pki`] detects and repairs.
pub(crate) fn write_all_atomic(files: &[(&Path, &[u8], u32)]) -> io::Result<()> {
    let mut temps = Vec::with_capacity(files.len());
    let result = (|| {
        let mut opened = Vec::with_capacity(files.len());
        for (path, contents, mode) in files {
            let tmp = temp_path(path)?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(*mode)
                .open(&tmp)?;
            temps.push(tmp);
            file.write_all(contents)?;
            opened.push(file);
        }
        sync_all_concurrently(&opened)?;
        drop(opened);
        let mut dirs = BTreeSet::new();
        for ((path, _, _), tmp) in files.iter().zip(&temps) {
            fs::rename(tmp, path)?;
            dirs.insert(parent_dir(path));
        }
        temps.clear();
        for dir in dirs {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    for tmp in &temps {
        let _ = fs::remove_file(tmp);
    }
    result
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{:016x}", rand::random::<u64>()));
    Ok(parent_dir(path).join(tmp_name))
}

fn sync_all_concurrently(files: &[fs::File]) -> io::Result<()> {
    match files {
        [] => Ok(()),
        [one] => one.sync_all(),
        many => std::thread::scope(|scope| {
            let handles: Vec<_> = many
                .iter()
                .map(|f| scope.spawn(move || f.sync_all()))
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("fsync thread panicked")))
            })
        }),
    }
}

/// Files [`ensure_pki`] has yet to write.
#[derive(Default)]
struct Pending {
    files: Vec<(PathBuf, String, u32)>,
}

impl Pending {
    fn file(&mut self, path: PathBuf, contents: &str, mode: u32) {
        self.files.push((path, contents.to_owned(), mode));
    }

    /// A certificate (public) and its key (0600).
    fn pair(&mut self, dir: &Path, cert: &str, key: &str, pair: &(String, String)) {
        self.file(dir.join(key), &pair.1, 0o600);
        self.file(dir.join(cert), &pair.0, 0o644);
    }

    fn write(self) -> Result<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        let files: Vec<_> = self
            .files
            .iter()
            .map(|(p, c, m)| (p.as_path(), c.as_bytes(), *m))
            .collect();
        write_all_atomic(&files).map_err(|source| TlsError::Io {
            op: "write",
            path: self.files[0].0.parent().unwrap_or(Path::new("")).to_owned(),
            source,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Subject alternative names

/// One subject alternative name, normalised so sets compare meaningfully.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum San {
    Ip(IpAddr),
    Dns(String),
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Ip(ip) => ip.fmt(f),
            San::Dns(name) => f.write_str(name),
        }
    }
}

fn parse_san(raw: &str) -> Result<San> {
    let s = raw.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(San::Ip(ip));
    }
    // DNS names (a leading `*.` wildcard label allowed): LDH labels of 1..=63 characters.
    let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    let labels = name.strip_prefix("*.").unwrap_or(&name);
    let valid = !labels.is_empty()
        && name.len() <= 253
        && labels.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(San::Dns(name))
    } else {
        Err(TlsError::InvalidSan(raw.to_owned()))
    }
}

fn desired_sans(extra: &[String], hostname: Option<&str>) -> Result<BTreeSet<San>> {
    let mut sans = BTreeSet::from([
        San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        San::Dns("localhost".into()),
    ]);
    sans.extend(SERVICE_DNS_NAMES.iter().map(|n| San::Dns((*n).into())));
    // A host name that is not a valid DNS name (rare) is skipped rather than fatal.
    if let Some(Ok(h)) = hostname.map(parse_san) {
        sans.insert(h);
    }
    for s in extra.iter().filter(|s| !s.trim().is_empty()) {
        sans.insert(parse_san(s)?);
    }
    Ok(sans)
}

/// The SANs a certificate carries, or `None` if it has no (parsable) SAN extension.
fn san_set(cert: &X509Certificate<'_>) -> Option<BTreeSet<San>> {
    let ext = cert.subject_alternative_name().ok()??;
    let mut out = BTreeSet::new();
    for name in &ext.value.general_names {
        match name {
            GeneralName::DNSName(d) => {
                out.insert(San::Dns(d.to_ascii_lowercase()));
            }
            GeneralName::IPAddress(bytes) => {
                let ip = match <[u8; 4]>::try_from(*bytes) {
                    Ok(v4) => IpAddr::from(v4),
                    Err(_) => IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?),
                };
                out.insert(San::Ip(ip));
            }
            _ => {}
        }
    }
    Some(out)
}

fn hostname() -> Option<String> {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = raw.trim();
    (!h.is_empty()).then(|| h.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Generation

fn key_pair() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| TlsError::Generate {
        what: "key pair",
        source,
    })
}

/// A random positive 128-bit serial number.
fn serial() -> SerialNumber {
    let mut bytes = rand::random::<[u8; 16]>();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // keep it 16 bytes long and positive
    SerialNumber::from_slice(&bytes)
}

fn generate_ca(now: OffsetDateTime) -> Result<(String, String)> {
    let key = key_pair()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params.serial_number = Some(serial());
    let cert = params
        .self_signed(&key)
        .map_err(|source| TlsError::Generate {
            what: "CA certificate",
            source,
        })?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn issue_leaf(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    organizations: &[&str],
    sans: &BTreeSet<San>,
    purpose: ExtendedKeyUsagePurpose,
    what: &'static str,
) -> Result<(String, String)> {
    let now = OffsetDateTime::now_utc();
    let key = key_pair()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    for org in organizations {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *org);
    }
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s {
            San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            San::Dns(d) => d
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|source| TlsError::Generate { what, source }),
        })
        .collect::<Result<_>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    params.serial_number = Some(serial());
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| TlsError::Generate { what, source })?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The cluster CA as an rcgen issuer.
fn ca_issuer(cert_pem: &str, key_pem: &str) -> Result<Issuer<'static, KeyPair>> {
    let key = parse_key_pair(key_pem, "CA key")?;
    Issuer::from_ca_cert_pem(cert_pem, key).map_err(|source| TlsError::Generate {
        what: "CA issuer",
        source,
    })
}

/// The issuer in `slot`, built from the CA on first use.
fn lazy_issuer<'s>(
    slot: &'s mut Option<Issuer<'static, KeyPair>>,
    cert_pem: &str,
    key_pem: &str,
) -> Result<&'s Issuer<'static, KeyPair>> {
    let issuer = match slot.take() {
        Some(issuer) => issuer,
        None => ca_issuer(cert_pem, key_pem)?,
    };
    Ok(slot.insert(issuer))
}

fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

// ---------------------------------------------------------------------------------------------
// Loading and checking

fn parse_certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Parse {
            what,
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Parse {
            what,
            message: "no certificate in PEM".into(),
        });
    }
    Ok(certs)
}

fn parse_key_pair(pem: &str, what: &'static str) -> Result<KeyPair> {
    KeyPair::from_pem(pem).map_err(|e| TlsError::Parse {
        what,
        message: e.to_string(),
    })
}

/// Parses the first certificate of `pem` and hands it to `f`.
fn with_cert<T>(
    pem: &str,
    what: &'static str,
    f: impl FnOnce(&X509Certificate<'_>) -> T,
) -> Result<T> {
    let der = parse_certs(pem, what)?.swap_remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| TlsError::Parse {
        what,
        message: e.to_string(),
    })?;
    Ok(f(&cert))
}

/// The subject key identifier of a certificate (empty if it has none).
fn key_identifier(pem: &str) -> Result<Vec<u8>> {
    with_cert(pem, "CA certificate", |c| {
        c.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .unwrap_or_default()
    })
}

fn authority_key_identifier(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
}

/// Whether `cert` is valid from now until at least [`RENEW_BEFORE`] from now.
fn fresh(cert: &X509Certificate<'_>, now: OffsetDateTime) -> bool {
    let v = cert.validity();
    let now_ts = now.unix_timestamp();
    v.not_before.timestamp() <= now_ts
        && v.not_after.timestamp() > (now + RENEW_BEFORE).unix_timestamp()
}

/// Whether the certificate's public key is the key pair's.
fn key_matches(cert: &X509Certificate<'_>, key_pem: &str) -> bool {
    KeyPair::from_pem(key_pem)
        .is_ok_and(|k| cert.public_key().subject_public_key.data.as_ref() == k.public_key_raw())
}

fn ca_usable(cert_pem: &str, key_pem: &str, now: OffsetDateTime) -> bool {
    with_cert(cert_pem, "CA certificate", |c| {
        c.is_ca() && fresh(c, now) && key_matches(c, key_pem)
    })
    .unwrap_or(false)
}

fn leaf_usable(
    cert_pem: &str,
    key_pem: &str,
    ca_ski: &[u8],
    now: OffsetDateTime,
    what: &'static str,
    extra: impl FnOnce(&X509Certificate<'_>) -> bool,
) -> bool {
    let ok = with_cert(cert_pem, what, |c| {
        fresh(c, now)
            && authority_key_identifier(c).as_deref() == Some(ca_ski)
            && key_matches(c, key_pem)
            && extra(c)
    })
    .unwrap_or(false);
    if !ok {
        tracing::info!(what, "certificate missing, stale or changed: re-issuing");
    }
    ok
}

fn load_leaf(
    dir: &Path,
    cert: &str,
    key: &str,
    ca_fresh: bool,
) -> Result<Option<(String, String)>> {
    if ca_fresh {
        return Ok(None);
    }
    Ok(
        match (
            read_optional(&dir.join(cert))?,
            read_optional(&dir.join(key))?,
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => None,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Files

fn create_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| TlsError::Io {
            op: "create directory",
            path: dir.to_owned(),
            source,
        })
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn generate_then_load_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let sans = vec!["10.0.0.7".to_owned(), "k1s.example".to_owned()];
        let first = ensure_pki(&dir, &sans).unwrap();
        let second = ensure_pki(&dir, &sans).unwrap();
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.ca_key_pem, second.ca_key_pem);
        assert_eq!(first.server_cert_pem, second.server_cert_pem);
        assert_eq!(first.server_key_pem, second.server_key_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
        assert_eq!(first.admin_key_pem, second.admin_key_pem);
        assert_eq!(first.admin_token, second.admin_token);
        assert!(first.admin_token.len() >= 40);
        assert_eq!(
            fs::read_to_string(dir.join(ADMIN_TOKEN)).unwrap(),
            first.admin_token
        );

        let sans_in_cert = with_cert(&first.server_cert_pem, "t", san_set)
            .unwrap()
            .unwrap();
        for want in [
            "127.0.0.1",
            "::1",
            "localhost",
            "10.0.0.7",
            "k1s.example",
            "kubernetes.default.svc.cluster.local",
        ] {
            assert!(sans_in_cert.contains(&parse_san(want).unwrap()), "{want}");
        }
        if let Some(h) = hostname() {
            assert!(sans_in_cert.contains(&parse_san(&h).unwrap()));
        }
        let (cn, orgs) = with_cert(&first.admin_cert_pem, "t", |c| {
            let cn: Vec<String> = c
                .subject()
                .iter_common_name()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect();
            let o: Vec<String> = c
                .subject()
                .iter_organization()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect();
            (cn, o)
        })
        .unwrap();
        assert_eq!(cn, [ADMIN_USER]);
        assert_eq!(orgs, [ADMIN_GROUP]);
        server_config(&second).unwrap();
    }

    #[test]
    fn san_change_reissues_only_the_serving_cert() {
        let tmp = tempfile::tempdir().unwrap();
        let first = ensure_pki(tmp.path(), &["a.example".into()]).unwrap();
        // Same set in another order and spelling: nothing changes.
        let same = ensure_pki(tmp.path(), &["A.example.".into(), " ".into()]).unwrap();
        assert_eq!(first.server_cert_pem, same.server_cert_pem);

        let changed = ensure_pki(tmp.path(), &["b.example".into(), "192.0.2.1".into()]).unwrap();
        assert_ne!(first.server_cert_pem, changed.server_cert_pem);
        assert_ne!(first.server_key_pem, changed.server_key_pem);
        assert_eq!(first.ca_cert_pem, changed.ca_cert_pem);
        assert_eq!(first.ca_key_pem, changed.ca_key_pem);
        assert_eq!(first.admin_cert_pem, changed.admin_cert_pem);
        assert_eq!(first.admin_key_pem, changed.admin_key_pem);
        assert_eq!(first.admin_token, changed.admin_token);
        let sans = with_cert(&changed.server_cert_pem, "t", san_set)
            .unwrap()
            .unwrap();
        assert!(sans.contains(&San::Dns("b.example".into())));
        assert!(!sans.contains(&San::Dns("a.example".into())));
        assert!(sans.contains(&San::Ip("192.0.2.1".parse().unwrap())));
        // The re-issued cert is what is on disk now.
        let again = ensure_pki(tmp.path(), &["192.0.2.1".into(), "b.example".into()]).unwrap();
        assert_eq!(again.server_cert_pem, changed.server_cert_pem);
    }

    #[test]
    fn key_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        ensure_pki(tmp.path(), &[]).unwrap();
        for f in [CA_KEY, SERVER_KEY, ADMIN_KEY, ADMIN_TOKEN] {
            assert_eq!(mode(&tmp.path().join(f)), 0o600, "{f}");
        }
        for f in [CA_CERT, SERVER_CERT, ADMIN_CERT] {
            assert_eq!(mode(&tmp.path().join(f)), 0o644, "{f}");
        }
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    #[test]
    fn lost_ca_regenerates_everything_and_bad_leaf_is_reissued() {
        let tmp = tempfile::tempdir().unwrap();
        let first = ensure_pki(tmp.path(), &[]).unwrap();
        // A serving key that no longer matches its certificate is replaced.
        fs::write(tmp.path().join(SERVER_KEY), &first.admin_key_pem).unwrap();
        let fixed = ensure_pki(tmp.path(), &[]).unwrap();
        assert_ne!(fixed.server_cert_pem, first.server_cert_pem);
        assert_eq!(fixed.admin_cert_pem, first.admin_cert_pem);

        fs::remove_file(tmp.path().join(CA_KEY)).unwrap();
        let fresh = ensure_pki(tmp.path(), &[]).unwrap();
        assert_ne!(fresh.ca_cert_pem, first.ca_cert_pem);
        assert_ne!(fresh.admin_cert_pem, first.admin_cert_pem);
        assert_ne!(fresh.server_cert_pem, fixed.server_cert_pem);
        assert_eq!(fresh.admin_token, first.admin_token);
    }

    #[test]
    fn invalid_san_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["bad name", "-x.example", "a..b", "ünï.example"] {
            assert!(
                matches!(
                    ensure_pki(tmp.path(), &[bad.into()]),
                    Err(TlsError::InvalidSan(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            parse_san("*.Example.COM").unwrap(),
            San::Dns("*.example.com".into())
        );
        assert_eq!(
            parse_san("::1").unwrap(),
            San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn issues_kubelet_serving_cert_from_loaded_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = ensure_pki(tmp.path(), &[]).unwrap();
        let (cert, key) = pki
            .issue_leaf(
                "system:node:n1",
                &["system:nodes"],
                &["10.1.2.3".into()],
                true,
            )
            .unwrap();
        let ski = key_identifier(&pki.ca_cert_pem).unwrap();
        assert!(leaf_usable(
            &cert,
            &key,
            &ski,
            OffsetDateTime::now_utc(),
            "t",
            |_| true
        ));
    }

    #[test]
    fn load_is_fast() {
        let tmp = tempfile::tempdir().unwrap();
        ensure_pki(tmp.path(), &[]).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..10 {
            ensure_pki(tmp.path(), &[]).unwrap();
        }
        // Generous for debug builds on a loaded CI machine; release loads take about 1 ms.
        assert!(start.elapsed() < std::time::Duration::from_millis(500));
    }
}
