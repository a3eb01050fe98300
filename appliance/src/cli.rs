//! The command line, as `shared/CONTRACT.md` defines it (clap derive).
//!
//! Why a module of declarations only: the contract is the interface scripts depend on, so it is
//! kept readable in one place, apart from what the commands do.

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use picket_model::Severity;
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0  the command did its job (with --fail-on: no finding at or above the threshold)
  1  --fail-on SEVERITY was given and a finding at or above it was reported
  2  usage or input error: bad argument, unreadable file, malformed target, unknown scan id
  3  runtime failure: the job could not complete (store locked or corrupted, network error)

Scans are kept in the store under --state-dir (default /var/lib/picket as root, else
$XDG_STATE_HOME/picket or ~/.local/state/picket).";

/// Picket: an edge vulnerability scanner.
#[derive(Debug, Parser)]
#[command(name = "picket", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Directory of the store (scan history).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Report format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the report to FILE (atomically) instead of standard output.
    #[arg(long, global = true, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit with status 1 when a finding at or above SEVERITY is reported
    /// (critical, high, medium, low, info).
    #[arg(long, global = true, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,

    /// More diagnostics on standard error (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on standard error: no progress, no warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse::<Severity>().map_err(|e| e.to_string())
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Table,
    Sarif,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scan and keep its report in the store.
    #[command(subcommand)]
    Scan(ScanCommand),
    /// Browse the stored scan history.
    #[command(subcommand)]
    Scans(ScansCommand),
    /// Manage the vulnerability knowledge base (OSV advisories).
    #[command(subcommand)]
    Kb(KbCommand),
    /// The appliance's local text setup (network, proxy, enrollment, status), for a terminal
    /// or a serial line; reads until end of input.
    Console(ConsoleArgs),
    /// Run the appliance daemon: check in with the platform, run its scan jobs, upload results.
    Daemon(DaemonArgs),
    /// Enroll this appliance with a platform using a one-time code.
    Enroll(EnrollArgs),
    /// Enrollment, platform contact, outbox and jobs; --check tests the path to the platform.
    Status(StatusArgs),
}

/// `picket daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Configuration file (TOML; see docs/daemon.md). Default /etc/picket/picket.toml if present.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `picket enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The platform: https://HOST[:PORT].
    #[arg(long, value_name = "URL")]
    pub platform: String,

    /// The one-time enrollment code from the platform.
    #[arg(long, value_name = "CODE")]
    pub code: String,

    /// PEM file of the platform's CA, trusted for this call (besides the system roots).
    #[arg(long, value_name = "FILE", conflicts_with = "ca_fingerprint")]
    pub ca_file: Option<PathBuf>,

    /// SHA-256 fingerprint of the platform's CA certificate: only that CA is trusted.
    #[arg(long, value_name = "SHA256")]
    pub ca_fingerprint: Option<String>,

    /// Daemon configuration file (for the proxy and [platform] trust), as for `picket daemon`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `picket status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Test DNS, TCP, proxy, TLS and the API in order; exit 3 naming the first failing step.
    #[arg(long)]
    pub check: bool,

    /// Daemon configuration file, as for `picket daemon`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `picket console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Directory the systemd-networkd files are written to.
    #[arg(long, value_name = "DIR", default_value = "/etc/systemd/network")]
    pub etc_dir: PathBuf,

    /// Also write static DNS servers to this resolv.conf (for systems without systemd-resolved).
    #[arg(long, value_name = "FILE")]
    pub resolv_conf: Option<PathBuf>,

    /// Daemon configuration file (proxy, platform trust), as for `picket daemon`. Default
    /// /etc/picket/picket.toml if present.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// No menu: write the network settings saved in the store to --etc-dir (and
    /// --resolv-conf) and exit; for a boot unit ordered before systemd-networkd.
    #[arg(long)]
    pub apply_stored: bool,
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Import OSV advisories: JSON files, directories of them, or osv.dev zip archives
    /// (e.g. Debian/all.zip). Idempotent; reports what changed.
    Import {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Advisory counts per ecosystem and the age of the data.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Discover hosts, open ports and services on a network.
    Net(NetArgs),
    /// Inventory hosts over SSH and match their packages against the knowledge base.
    Host(HostArgs),
    /// Crawl a web application or REST API and test its inputs (confirmed findings only).
    Web(Box<WebArgs>),
}

/// `picket scan web`.
#[derive(Debug, Args)]
pub struct WebArgs {
    /// Start URL (http:// or https://); its origin is the scope.
    #[arg(value_name = "URL")]
    pub url: String,

    /// Login page with the form to fill in (relative to URL or absolute).
    #[arg(long, value_name = "URL", requires_all = ["username", "password_env"])]
    pub login_url: Option<String>,

    /// User name for --login-url.
    #[arg(long, value_name = "USER", requires = "login_url")]
    pub username: Option<String>,

    /// Name of the environment variable holding the login password.
    #[arg(long, value_name = "VAR", requires = "login_url")]
    pub password_env: Option<String>,

    /// Header sent with every request, `Name: value` (repeatable).
    #[arg(long, value_name = "HEADER", action = ArgAction::Append)]
    pub header: Vec<String>,

    /// Header whose value comes from an environment variable, `Name: VAR` (repeatable; for
    /// tokens: `--header-env "Authorization: API_TOKEN"`).
    #[arg(long, value_name = "NAME: VAR", action = ArgAction::Append)]
    pub header_env: Vec<String>,

    /// Cookie sent with every request, `name=value` (repeatable).
    #[arg(long, value_name = "COOKIE", action = ArgAction::Append)]
    pub cookie: Vec<String>,

    /// Cookie whose value comes from an environment variable, `name=VAR` (repeatable).
    #[arg(long, value_name = "NAME=VAR", action = ArgAction::Append)]
    pub cookie_env: Vec<String>,

    /// OpenAPI 3.x or Swagger 2.0 document (URL or JSON file); without it the usual paths
    /// (/openapi.json, /swagger.json, /v3/api-docs...) are tried.
    #[arg(long, value_name = "URL|FILE")]
    pub openapi: Option<String>,

    /// URL prefix outside the start origin that is in scope (repeatable).
    #[arg(long, value_name = "PREFIX", action = ArgAction::Append)]
    pub include: Vec<String>,

    /// Regular expression of URLs never requested (repeatable; replaces the default, which
    /// excludes logout-like links).
    #[arg(long, value_name = "REGEX", action = ArgAction::Append)]
    pub exclude: Vec<String>,

    /// Requests per second at most, over the whole scan (crawl, login and checks).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_rps: Option<u32>,

    /// Requests at most, over the whole scan.
    #[arg(long, value_name = "N", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_requests: u64,

    /// Pages the crawler fetches at most.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_pages: u32,

    /// Link hops from the start URL at most.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub max_depth: u32,

    /// Requests in flight at most.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,

    /// Seconds one request may take (connect to last byte).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,

    /// Seconds the whole scan may take.
    #[arg(long, value_name = "SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub scan_timeout: u64,

    /// Address of the callback listener for SSRF and blind injections (the target must reach
    /// it: give --callback-url when it sees the appliance under another address).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub callback_listen: std::net::SocketAddr,

    /// Base URL the target uses to reach the callback listener.
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,

    /// Request header tested as an injection point (repeatable; default User-Agent, Referer,
    /// X-Forwarded-Host).
    #[arg(long, value_name = "NAME", action = ArgAction::Append)]
    pub inject_header: Vec<String>,

    /// Accept any TLS certificate (self-signed internal apps).
    #[arg(long)]
    pub insecure_tls: bool,

    /// Crawl and run the passive checks only: no payloads are sent.
    #[arg(long)]
    pub passive_only: bool,

    /// Base delay of the time-based checks, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1500,
          value_parser = clap::value_parser!(u64).range(200..=10_000))]
    pub time_delay: u64,
}

/// `picket scan host`.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// ssh://USER@HOST[:PORT], or @FILE with one such target per line (# comments).
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Private key file (OpenSSH format: ed25519, ECDSA or RSA).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// Name of the environment variable holding the password: for login (without --identity)
    /// and for sudo (with --sudo).
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,

    /// Name of the environment variable holding the passphrase of --identity's key.
    #[arg(long, value_name = "VAR", requires = "identity")]
    pub passphrase_env: Option<String>,

    /// Run the inventory commands through sudo (non-interactive, or with --password-env's
    /// password on sudo's standard input).
    #[arg(long)]
    pub sudo: bool,

    /// Accept and store the host key of a host seen for the first time. Without it, an unknown
    /// host key is refused (pin it with --host-key or a previous run with this flag).
    #[arg(long)]
    pub trust_on_first_use: bool,

    /// Expected host key, as an OpenSSH public key line (`ssh-ed25519 AAAA...`); with one target.
    /// It replaces the pinned key once the scan succeeds (how a re-keyed host is re-pinned).
    #[arg(long, value_name = "KEY")]
    pub host_key: Option<String>,

    /// Hosts scanned at the same time.
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub parallel: u16,

    /// Seconds one host may take, connection to last command.
    #[arg(long, value_name = "SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub host_timeout: u64,

    /// Seconds to wait for the TCP connection and SSH handshake.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout: u64,
}

/// `picket scan net`.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// IPv4/IPv6 address, CIDR, range (a.b.c.d-e), hostname or @file.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,

    /// TCP ports: 22,80,443 | 1-1024 | top100 | top1000 | all | none.
    #[arg(long, value_name = "SPEC", default_value = "top1000")]
    pub ports: String,

    /// UDP ports, same syntax as --ports.
    #[arg(long, value_name = "SPEC", default_value = "none")]
    pub udp_ports: String,

    /// Probes per second at most, over all hosts.
    #[arg(long, value_name = "PPS", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,

    /// Targets not to scan (repeat the option or separate with commas).
    #[arg(long, value_name = "TARGET", value_delimiter = ',', action = ArgAction::Append)]
    pub exclude: Vec<String>,

    /// Skip host discovery: treat every target as up.
    #[arg(long)]
    pub no_ping: bool,

    /// Skip service and version detection.
    #[arg(long)]
    pub no_service: bool,

    /// List hosts that are down too.
    #[arg(long)]
    pub all_hosts: bool,

    /// List closed and filtered ports too.
    #[arg(long)]
    pub all_ports: bool,

    /// Skip reverse DNS lookups.
    #[arg(long)]
    pub no_rdns: bool,

    /// Use the unprivileged TCP connect scan even with raw-socket privilege.
    #[arg(long)]
    pub connect: bool,

    /// Times an unanswered probe is sent again.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(0..=10))]
    pub retries: u8,
}

#[derive(Debug, Subcommand)]
pub enum ScansCommand {
    /// List stored scans, oldest first.
    List,
    /// Show a stored scan's report. ID: an id, a unique prefix of one, `latest` or `previous`.
    Show {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// What changed between two stored net scans (ids as for `show`).
    Diff {
        #[arg(value_name = "OLD")]
        old: String,
        #[arg(value_name = "NEW")]
        new: String,
    },
}

impl NetArgs {
    /// The scanner's configuration for these arguments.
    pub fn scan_config(&self) -> picket_netscan::NetScanConfig {
        picket_netscan::NetScanConfig {
            targets: self.targets.clone(),
            exclude: self.exclude.clone(),
            tcp_ports: self.ports.clone(),
            udp_ports: self.udp_ports.clone(),
            max_rate: self.rate,
            no_ping: self.no_ping,
            no_service: self.no_service,
            all_ports: self.all_ports,
            all_hosts: self.all_hosts,
            no_rdns: self.no_rdns,
            force_connect: self.connect,
            retries: self.retries,
            ..picket_netscan::NetScanConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn scan_net_maps_onto_the_scanner_config() {
        let cli = Cli::try_parse_from([
            "picket",
            "--format",
            "json",
            "scan",
            "net",
            "198.18.0.0/24",
            "198.18.1.1",
            "--ports",
            "22,80",
            "--udp-ports",
            "top100",
            "--rate",
            "500",
            "--exclude",
            "198.18.0.1,198.18.0.2",
            "--exclude",
            "198.18.0.3",
            "--no-ping",
            "--no-service",
            "--all-hosts",
            "--all-ports",
            "--no-rdns",
            "--connect",
            "--retries",
            "1",
            "--fail-on",
            "HIGH",
        ]);
        let cli = match cli {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(cli.format, Format::Json);
        assert_eq!(cli.fail_on, Some(Severity::High));
        let Command::Scan(ScanCommand::Net(args)) = cli.command else {
            panic!("not scan net");
        };
        let cfg = args.scan_config();
        assert_eq!(cfg.targets, vec!["198.18.0.0/24", "198.18.1.1"]);
        assert_eq!(cfg.exclude, vec!["198.18.0.1", "198.18.0.2", "198.18.0.3"]);
        assert_eq!(
            (cfg.tcp_ports.as_str(), cfg.udp_ports.as_str()),
            ("22,80", "top100")
        );
        assert_eq!(cfg.max_rate, Some(500));
        assert!(cfg.no_ping && cfg.no_service && cfg.all_hosts && cfg.all_ports);
        assert!(cfg.no_rdns && cfg.force_connect);
        assert_eq!(cfg.retries, 1);
    }

    #[test]
    fn defaults_follow_the_contract() {
        let cli = Cli::try_parse_from(["picket", "scan", "net", "127.0.0.1"]);
        let Ok(Cli {
            command: Command::Scan(ScanCommand::Net(args)),
            format,
            ..
        }) = cli
        else {
            panic!("parse failed");
        };
        assert_eq!(format, Format::Table);
        let cfg = args.scan_config();
        assert_eq!(
            (cfg.tcp_ports.as_str(), cfg.udp_ports.as_str()),
            ("top1000", "none")
        );
        assert_eq!(cfg.retries, 3);
        assert!(!cfg.force_connect && !cfg.no_ping);
    }

    #[test]
    fn scan_host_takes_a_key_and_a_sudo_password_together() {
        let cli = Cli::try_parse_from([
            "picket",
            "scan",
            "host",
            "ssh://ops@198.18.0.30",
            "@fleet.txt",
            "--identity",
            "k",
            "--password-env",
            "PW",
            "--sudo",
            "--parallel",
            "8",
        ]);
        let Ok(Cli {
            command: Command::Scan(ScanCommand::Host(args)),
            ..
        }) = cli
        else {
            panic!("parse failed");
        };
        assert_eq!(args.targets, vec!["ssh://ops@198.18.0.30", "@fleet.txt"]);
        assert!(args.sudo && args.identity.is_some() && args.password_env.is_some());
        assert_eq!((args.parallel, args.host_timeout), (8, 120));
        for bad in [
            vec!["picket", "scan", "host", "ssh://a@b", "--parallel", "0"],
            vec![
                "picket",
                "scan",
                "host",
                "ssh://a@b",
                "--passphrase-env",
                "X",
            ],
            vec!["picket", "kb", "import"],
        ] {
            assert_eq!(
                Cli::try_parse_from(&bad).err().map(|e| e.exit_code()),
                Some(2),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            vec!["picket", "scan", "net", "127.0.0.1", "--rate", "0"],
            vec!["picket", "scan", "net", "127.0.0.1", "--retries", "99"],
            vec!["picket", "--fail-on", "severe", "scans", "list"],
            vec!["picket", "--format", "xml", "scans", "list"],
            vec!["picket", "scan", "net"],
            vec!["picket", "-q", "-v", "scans", "list"],
        ] {
            let err = Cli::try_parse_from(&args).err();
            assert_eq!(err.map(|e| e.exit_code()), Some(2), "{args:?}");
        }
    }
}
