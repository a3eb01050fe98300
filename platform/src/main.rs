//! `picket-platform`: the thin binary over the `picket_platform` library.
//!
//! Exit codes: 0 done · 2 usage or input error (bad config, unknown key: the message names the
//! file and key) · 3 runtime failure (store in use or damaged, address in use, I/O).

use anyhow::Context;
use clap::{Parser, Subcommand};
use picket_platform::config::Config;
use picket_platform::error::{EXIT_OK, EXIT_RUNTIME};
use picket_platform::server::{Platform, Server};
use picket_platform::PlatformError;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

const DEFAULT_STATE_DIR: &str = "/var/lib/picket-platform";

#[derive(Debug, Parser)]
#[command(
    name = "picket-platform",
    version,
    about = "The reference Picket platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// TOML configuration file (unknown keys are errors).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the CA, the store and the admin token live.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the appliance API, the operator API and the console over HTTPS.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Override the config's listen address (e.g. 127.0.0.1:0 for a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Write the bound address to this file once listening (for tests and scripts).
        #[arg(long)]
        addr_file: Option<PathBuf>,
    },
    /// Create the state directory (CA, store, admin token) and print the CA fingerprint.
    Init {
        #[command(flatten)]
        common: Common,
    },
    /// Print a fresh one-time enrollment code. Without --url the store is opened directly (the
    /// platform must not be running); with --url the running platform is asked.
    Code {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        ttl_secs: Option<u64>,
        #[arg(long)]
        label: Option<String>,
        /// Running platform, e.g. https://127.0.0.1:8443 (its CA and the admin token are read
        /// from the state directory).
        #[arg(long)]
        url: Option<String>,
    },
    /// Print the CA certificate (PEM) and its SHA-256 fingerprint.
    Ca {
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Print the operators' bearer token (created if missing).
    AdminToken {
        #[command(flatten)]
        common: Common,
    },
}

fn load_config(path: Option<&Path>) -> Result<Config, PlatformError> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::default()),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PICKET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Raises the descriptor limit to the hard limit: each appliance holds a connection.
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

async fn serve(
    common: Common,
    listen: Option<std::net::SocketAddr>,
    addr_file: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let mut config = load_config(common.config.as_deref())?;
    if let Some(l) = listen {
        config.listen = l;
    }
    raise_nofile();
    let platform = Arc::new(Platform::open(config, &common.state_dir)?);
    let server = Server::bind(platform.clone()).await?;
    let addr = server.local_addr()?;
    if let Some(f) = addr_file {
        std::fs::write(&f, format!("{addr}\n"))
            .with_context(|| format!("writing {}", f.display()))?;
    }
    tracing::info!(%addr, fingerprint = %platform.ca.fingerprint(), "platform listening");
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down");
    };
    server.run(shutdown).await?;
    Ok(EXIT_OK)
}

async fn code_via_url(
    common: &Common,
    url: &str,
    req: &picket_model::api::CreateCode,
) -> anyhow::Result<String> {
    use picket_platform::client::{client_config, Conn};
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| PlatformError::Invalid {
            what: "--url",
            detail: "must start with https://".into(),
        })?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr: std::net::SocketAddr = tokio::net::lookup_host(hostport)
        .await
        .with_context(|| format!("resolving {hostport}"))?
        .next()
        .ok_or_else(|| PlatformError::Invalid {
            what: "--url",
            detail: format!("{hostport} has no address"),
        })?;
    let host = hostport
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(hostport)
        .trim_matches(['[', ']']);
    let ca_path = common.state_dir.join("ca/ca.pem");
    let ca_pem = std::fs::read_to_string(&ca_path)
        .with_context(|| format!("reading {}", ca_path.display()))?;
    let config = load_config(common.config.as_deref())?;
    let token = picket_platform::server::load_admin_token(
        &common.state_dir,
        config.admin_token_file.as_deref(),
    )?;
    let mut conn = Conn::connect(addr, host, client_config(&ca_pem, None)?).await?;
    let auth = format!("Bearer {token}");
    let ans = conn
        .post_json("/api/v1/enrollment-codes", &[("authorization", &auth)], req)
        .await?;
    if ans.status != 200 {
        anyhow::bail!(
            "platform answered {}: {}",
            ans.status,
            String::from_utf8_lossy(&ans.body)
        );
    }
    let code: picket_model::api::EnrollmentCode = ans.json()?;
    Ok(code.code)
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Cmd::Serve {
            common,
            listen,
            addr_file,
        } => {
            init_tracing();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(serve(common, listen, addr_file))
        }
        Cmd::Init { common } => {
            let config = load_config(common.config.as_deref())?;
            let p = Platform::open(config, &common.state_dir)?;
            println!("{}", p.ca.fingerprint());
            Ok(EXIT_OK)
        }
        Cmd::Code {
            common,
            ttl_secs,
            label,
            url,
        } => {
            let req = picket_model::api::CreateCode { ttl_secs, label };
            let code = match url {
                Some(url) => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("starting the runtime")?;
                    rt.block_on(code_via_url(&common, &url, &req))?
                }
                None => {
                    let config = load_config(common.config.as_deref())?;
                    let p = Arc::new(Platform::open(config, &common.state_dir)?);
                    let code = picket_platform::operator::create_code(&p, &req)?.code;
                    p.store.flush_blocking()?;
                    code
                }
            };
            println!("{code}");
            Ok(EXIT_OK)
        }
        Cmd::Ca { state_dir } => {
            let ca = picket_platform::ca::Ca::open_or_create(&state_dir)?;
            print!("{}", ca.cert_pem());
            println!("SHA256 Fingerprint={}", ca.fingerprint());
            Ok(EXIT_OK)
        }
        Cmd::AdminToken { common } => {
            let config = load_config(common.config.as_deref())?;
            let token = picket_platform::server::load_admin_token(
                &common.state_dir,
                config.admin_token_file.as_deref(),
            )?;
            println!("{token}");
            Ok(EXIT_OK)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Our errors already name their cause; anyhow's chain would repeat it.
            match e.downcast_ref::<PlatformError>() {
                Some(pe) => eprintln!("picket-platform: {pe}"),
                None => eprintln!("picket-platform: {e:#}"),
            }
            let code = e
                .downcast_ref::<PlatformError>()
                .map(PlatformError::exit_code)
                .unwrap_or(EXIT_RUNTIME);
            ExitCode::from(code)
        }
    }
}
