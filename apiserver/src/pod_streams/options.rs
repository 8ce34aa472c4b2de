//! Upstream's `PodExecOptions` / `PodAttachOptions` from the query string. `command` repeats
//! (`?command=sh&command=-c&command=...`), so the raw query is read, not the map.

use k1s_apimachinery::status::StatusError;

use crate::response::ApiError;

/// What a client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// The container, resolved (the only one, or the one asked for).
    pub container: String,
    /// `?container=` as sent.
    pub asked_container: Option<String>,
    /// The command (exec only).
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

fn truthy(v: &str) -> bool {
    matches!(v, "true" | "1" | "True" | "TRUE")
}

/// Parses the query of an exec (`attach == false`) or attach request.
pub fn parse(raw: Option<&str>, attach: bool) -> Result<StreamOptions, ApiError> {
    let mut o = StreamOptions::default();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "command" | "cmd" => o.command.push(v.into_owned()),
            "container" if !v.is_empty() => o.asked_container = Some(v.into_owned()),
            "stdin" | "input" => o.stdin = truthy(&v),
            "stdout" | "output" => o.stdout = truthy(&v),
            "stderr" | "error" => o.stderr = truthy(&v),
            "tty" => o.tty = truthy(&v),
            _ => {}
        }
    }
    if !(o.stdin || o.stdout || o.stderr) {
        return Err(ApiError(StatusError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        )));
    }
    if !attach && o.command.is_empty() {
        return Err(ApiError(StatusError::bad_request(
            "you must specify at least one command for the container",
        )));
    }
    if o.tty {
        // One stream on a terminal, as upstream.
        o.stderr = false;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_command_and_flags() {
        let o = parse(
            Some("command=sh&command=-c&command=echo+a%26b&container=c&stdin=true&stdout=true&stderr=true&tty=false"),
            false,
        )
        .unwrap();
        assert_eq!(o.command, ["sh", "-c", "echo a&b"]);
        assert_eq!(o.asked_container.as_deref(), Some("c"));
        assert!(o.stdin && o.stdout && o.stderr && !o.tty);
        let t = parse(Some("command=sh&stdout=true&stderr=true&tty=true"), false).unwrap();
        assert!(t.tty && !t.stderr);
    }

    #[test]
    fn rejects_empty() {
        assert!(parse(Some("command=sh"), false).is_err());
        assert!(parse(Some("stdout=true"), false).is_err());
        assert!(parse(Some("stdout=true"), true).is_ok());
    }
}
