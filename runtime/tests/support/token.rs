//! A Distribution token server for the anonymous bearer-token flow, as Docker Hub runs it: the
//! registry answers 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, the client
//! asks the realm for a token without credentials, and retries with `Authorization: Bearer`.
//!
//! Tokens are RS256 JWTs signed by `openssl` with a throw-away self-signed key whose certificate is
//! both the registry's `rootcertbundle` and the token's `x5c` chain. Every token grants pull and push
//! on the repository named in the request's scope. Requests are recorded so a test can assert the
//! client really took the realm round trip (and sent no credentials).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use base64::Engine as _;

use super::run;

pub const ISSUER: &str = "k1s-test-issuer";
pub const SERVICE: &str = "k1s-test-registry";

/// One request the token server answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The request target, e.g. `/token?scope=repository:x:pull&service=...`.
    pub target: String,
    /// Whether it carried an `Authorization` header.
    pub authorized: bool,
}

/// A token server on 127.0.0.1:<random port>, served by a thread until the process ends.
pub struct TokenServer {
    pub realm: String,
    pub cert: PathBuf,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenServer {
    /// Generates the signing key and certificate in `dir` and starts serving.
    pub fn start(dir: &Path) -> Result<Self> {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=k1s-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert))
        .context("openssl (Debian package openssl)")?;
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .context("openssl x509")?;
        anyhow::ensure!(der.status.success(), "openssl x509 -outform DER failed");
        let der = der.stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let realm = format!("http://{}/token", listener.local_addr()?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &key, &x5c, &seen);
            }
        });
        Ok(Self {
            realm,
            cert,
            requests,
        })
    }

    /// What the server answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(stream: TcpStream, key: &Path, x5c: &str, seen: &Mutex<Vec<TokenRequest>>) -> Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut authorized = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        authorized |= header.to_ascii_lowercase().starts_with("authorization:");
    }
    let scope = query_param(&target, "scope").unwrap_or_default();
    seen.lock().unwrap().push(TokenRequest {
        target: target.clone(),
        authorized,
    });
    let token = sign(key, x5c, &scope)?;
    let body =
        serde_json::json!({ "token": token, "access_token": token, "expires_in": 300 }).to_string();
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}

/// The (percent-decoded) value of `name` in the query of `target`.
fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JWT granting pull and push on every repository in `scope` (space-separated
/// `repository:NAME:ACTIONS` entries).
fn sign(key: &Path, x5c: &str, scope: &str) -> Result<String> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let access: Vec<serde_json::Value> = scope
        .split(' ')
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name) = (parts.next()?, parts.next()?);
            Some(serde_json::json!({ "type": kind, "name": name, "actions": ["pull", "push"] }))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "x5c": [x5c] });
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "", "aud": SERVICE,
        "iat": now, "nbf": now - 60, "exp": now + 300,
        "jti": format!("k1s-{now}-{}", access.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("openssl stdin")?
        .write_all(signing_input.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "openssl dgst -sign failed");
    Ok(format!("{signing_input}.{}", b64(&out.stdout)))
}
