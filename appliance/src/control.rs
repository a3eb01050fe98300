//! The running daemon's local control socket (`STATE_DIR/daemon.sock`, mode 0600).
//!
//! Why: `picket daemon` holds the store (its lock) for as long as it runs, so other local
//! processes — `picket console` saving settings or enrolling, `picket status` — cannot open it.
//! Instead of releasing the store between operations (and racing with them), the daemon answers
//! their few requests itself. One JSON request line, one JSON answer line, both bounded; only the
//! socket's owner (root on the appliance) can connect, as the state directory is 0700.

use crate::app::AppError;
use crate::settings::{ApplianceSettings, ProxySettings};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File name of the socket in the state directory.
pub const SOCKET_FILE: &str = "daemon.sock";
/// Largest request or answer line.
pub const MAX_LINE: usize = 2 * 1024 * 1024;
/// How long a client waits for an answer (an enrollment may take a while through a proxy).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}

/// [`ApplianceSettings`] with the proxy password carried (the settings type never serializes it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireSettings {
    pub settings: ApplianceSettings,
    pub proxy_password: Option<String>,
}

impl From<&ApplianceSettings> for WireSettings {
    fn from(s: &ApplianceSettings) -> Self {
        WireSettings {
            settings: s.clone(),
            proxy_password: s
                .proxy
                .as_ref()
                .and_then(|p| p.password.as_ref())
                .map(|p| p.expose().to_owned()),
        }
    }
}

impl WireSettings {
    pub fn into_settings(self) -> ApplianceSettings {
        let mut s = self.settings;
        if let (Some(p), Some(pw)) = (s.proxy.as_mut(), self.proxy_password) {
            *p = ProxySettings {
                password: Some(crate::secrets::SecretString::new(pw)),
                ..p.clone()
            };
        }
        s
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    GetSettings,
    SaveSettings(WireSettings),
    Enroll {
        platform_url: String,
        code: String,
        ca: crate::enroll::CaTrust,
    },
    Status,
    Check,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Response {
    Ok,
    Settings(WireSettings),
    Enrolled(crate::enroll::EnrollOutcome),
    Status(Box<crate::status::StatusReport>),
    Check(crate::status::CheckReport),
    Error { message: String, exit_code: u8 },
}

/// The error for an answer of the wrong kind.
pub fn unexpected(state_dir: &Path, r: &Response) -> AppError {
    match r {
        Response::Error { message, exit_code } => AppError::Control {
            path: socket_path(state_dir),
            reason: format!("the daemon answered: {message} (exit {exit_code})"),
        },
        other => AppError::Control {
            path: socket_path(state_dir),
            reason: format!("unexpected answer {other:?}"),
        },
    }
}

/// Sends one request to the daemon and returns its answer (blocking).
pub fn request(state_dir: &Path, req: &Request) -> Result<Response, AppError> {
    let path = socket_path(state_dir);
    let err = |reason: String| AppError::Control {
        path: path.clone(),
        reason,
    };
    let stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        err(format!(
            "the store is locked but the daemon does not answer ({e}); is another picket running?"
        ))
    })?;
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)))
        .map_err(|e| err(e.to_string()))?;
    let mut line = serde_json::to_vec(req).map_err(|e| err(e.to_string()))?;
    line.push(b'\n');
    (&stream)
        .write_all(&line)
        .map_err(|e| err(format!("send: {e}")))?;
    let mut reader = BufReader::new(&stream);
    let answer = read_line_bounded(&mut reader).map_err(|e| err(format!("receive: {e}")))?;
    let resp: Response =
        serde_json::from_slice(&answer).map_err(|e| err(format!("bad answer: {e}")))?;
    if let Response::Error { message, exit_code } = &resp {
        // Give the caller the same exit class the daemon decided.
        return Err(if *exit_code == crate::app::exit::USAGE {
            AppError::Config {
                path: path.clone(),
                reason: message.clone(),
            }
        } else {
            err(message.clone())
        });
    }
    Ok(resp)
}

/// One `\n`-terminated line of at most [`MAX_LINE`] bytes.
pub fn read_line_bounded(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before the end of the line",
            ));
        }
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            out.extend_from_slice(buf.get(..pos).unwrap_or_default());
            r.consume(pos + 1);
            return Ok(out);
        }
        let n = buf.len();
        out.extend_from_slice(buf);
        r.consume(n);
        if out.len() > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
    }
}

/// The answer for an error.
pub fn error_response(e: &AppError) -> Response {
    Response::Error {
        message: e.to_string(),
        exit_code: e.exit_code(),
    }
}

/// Serves the control socket until `shutdown` is cancelled; `handle` answers each request.
pub async fn serve<F, Fut>(
    state_dir: PathBuf,
    shutdown: tokio_util::sync::CancellationToken,
    handle: F,
) -> Result<(), AppError>
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response> + Send + 'static,
{
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let path = socket_path(&state_dir);
    let err = |reason: String| AppError::Control {
        path: path.clone(),
        reason,
    };
    // A socket left by a killed daemon: we hold the store lock, so no other daemon uses it.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).map_err(|e| err(e.to_string()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err(e.to_string()))?;
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("control socket accept: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            continue; // busy: the client sees the connection close
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let (rd, mut wr) = stream.into_split();
            let mut rd = tokio::io::BufReader::new(rd.take(MAX_LINE as u64 + 1));
            let mut line = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), rd.read_until(b'\n', &mut line))
                    .await;
            let resp = match read {
                Ok(Ok(_)) if line.len() <= MAX_LINE => match serde_json::from_slice(&line) {
                    Ok(req) => handle(req).await,
                    Err(e) => Response::Error {
                        message: format!("bad request: {e}"),
                        exit_code: crate::app::exit::USAGE,
                    },
                },
                _ => return,
            };
            if let Ok(mut bytes) = serde_json::to_vec(&resp) {
                bytes.push(b'\n');
                let _ = tokio::time::timeout(Duration::from_secs(10), wr.write_all(&bytes)).await;
            }
        });
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
