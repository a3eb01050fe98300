//! `picket console`: the appliance's local text setup, on tty1 and on the serial console.
//!
//! Why line-oriented and not a full-screen UI: a serial line at 115200 baud has no known size,
//! maybe no cursor addressing, and is often driven by a script (the QEMU tests) or a person on a
//! console server. So the console prints plain ASCII lines no wider than 72 columns, asks one
//! question per line, and reads lines with its own small editor ([`LineReader`]): CR, LF or CRLF
//! end a line; backspace and DEL both erase (terminals disagree on which they send); Ctrl-U
//! clears; Ctrl-C cancels back to the menu; escape sequences (arrow keys) are dropped. On a
//! terminal the console switches it to non-canonical, no-echo, no-signal mode and echoes itself
//! (so a secret is not echoed and Ctrl-C is a key, not a signal that would end the program).
//! From pipes it reads the same bytes plainly, which is how the tests drive it.
//!
//! Every question is asked at most [`MAX_TRIES`] times; after that the screen gives up and the
//! menu comes back, so a stuck script or a cat on the keyboard never loops forever. End of input
//! ends the console with status 0 (systemd starts it again on the appliance).

use crate::app::AppError;
use crate::cli::{Cli, ConsoleArgs};
use crate::control::{Request, Response};
use crate::enroll::CaTrust;
use crate::netcfg::{self, Addressing, Cidr, IfName, NetPlan, StaticAddressing};
use crate::secrets::SecretString;
use crate::settings::{self, ApplianceSettings, NetworkSettings, ProxySettings};
use crate::store::{Store, StoreError};
use std::io::{self, BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The menu prompt. The image's QEMU tests wait for exactly this text: keep it.
pub const MENU_PROMPT: &str = "Choice [1-5]: ";

/// Bad answers accepted at one question before the screen returns to the menu.
pub const MAX_TRIES: usize = 3;

/// Longest line kept; further characters are dropped (with a bell on a terminal).
pub const MAX_LINE: usize = 256;

/// Menu rounds before the console exits by itself (systemd restarts it): a bound on the loop,
/// far beyond any real session.
const MAX_ROUNDS: usize = 100_000;

/// Output width the texts are written for.
const WIDTH: usize = 72;

/// What a read produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A completed line (without its terminator).
    Text(String),
    /// Ctrl-C: abandon the current screen.
    Cancel,
    /// End of input (or Ctrl-D on an empty line).
    Eof,
}

/// A line editor over any byte source: a terminal in non-canonical mode, a pipe, a serial line.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    /// The previous line ended with CR: a LF right after it is the rest of a CRLF, not an empty
    /// line.
    after_cr: bool,
}

/// Where an escape sequence is in its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Esc {
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [` or `ESC O`: parameter bytes until a final byte 0x40..=0x7e.
    Sequence,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            after_cr: false,
        }
    }

    /// Reads one line. `echo` receives what a terminal should show (characters, erasures, the
    /// final newline); for a secret only the newline is echoed.
    pub fn read_line(&mut self, echo: &mut dyn Write, secret: bool) -> io::Result<Line> {
        let mut buf = String::new();
        let mut esc = Esc::None;
        loop {
            let byte = match self.next_byte()? {
                Some(b) => b,
                None if buf.is_empty() => return Ok(Line::Eof),
                None => {
                    echo.write_all(b"\n")?;
                    echo.flush()?;
                    return Ok(Line::Text(buf));
                }
            };
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match esc {
                Esc::Start => {
                    esc = if matches!(byte, b'[' | b'O') {
                        Esc::Sequence
                    } else {
                        Esc::None
                    };
                    continue;
                }
                Esc::Sequence => {
                    if (0x40..=0x7e).contains(&byte) {
                        esc = Esc::None;
                    }
                    continue;
                }
                Esc::None => {}
            }
            match byte {
                b'\n' if after_cr && buf.is_empty() => {}
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    echo.write_all(b"\n")?;
                    echo.flush()?;
                    return Ok(Line::Text(buf));
                }
                0x08 | 0x7f => {
                    let erased = buf.pop().is_some();
                    if erased && !secret {
                        echo.write_all(b"\x08 \x08")?;
                    }
                }
                0x15 => {
                    if !secret {
                        for _ in 0..buf.chars().count() {
                            echo.write_all(b"\x08 \x08")?;
                        }
                    }
                    buf.clear();
                }
                0x03 => {
                    echo.write_all(b"^C\n")?;
                    echo.flush()?;
                    return Ok(Line::Cancel);
                }
                0x04 if buf.is_empty() => return Ok(Line::Eof),
                0x1b => esc = Esc::Start,
                0x20..=0x7e => {
                    if buf.len() < MAX_LINE {
                        buf.push(char::from(byte));
                        if !secret {
                            echo.write_all(&[byte])?;
                        }
                    } else {
                        echo.write_all(b"\x07")?;
                    }
                }
                // Other control bytes and anything outside ASCII are not part of any value the
                // console asks for.
                _ => {}
            }
            echo.flush()?;
        }
    }

    fn next_byte(&mut self) -> io::Result<Option<u8>> {
        // A signal may interrupt the read; a few retries are plenty (the bound keeps a storm of
        // signals from spinning).
        for _ in 0..100 {
            match self.inner.fill_buf() {
                Ok(buf) => {
                    let first = buf.first().copied();
                    if first.is_some() {
                        self.inner.consume(1);
                    }
                    return Ok(first);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from(io::ErrorKind::Interrupted))
    }
}

/// Why a screen stopped before finishing.
#[derive(Debug)]
pub enum Stop {
    /// Back to the menu (Ctrl-C, or too many bad answers).
    Menu,
    /// Input ended: the console exits.
    Eof,
    /// Reading or writing the terminal failed.
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

type Step<T> = Result<T, Stop>;

/// Makes text safe for any terminal: printable ASCII, newlines and nothing else (an error
/// message from the network must not carry escape sequences to the console).
pub fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\n' || c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The terminal: a line reader, an output, and whether we echo (terminal) or not (pipe).
#[derive(Debug)]
pub struct Term<R, W> {
    reader: LineReader<R>,
    out: W,
    echo: bool,
}

impl<R: BufRead, W: Write> Term<R, W> {
    /// `echo`: the input is a terminal in no-echo mode, so typed characters are shown by us.
    pub fn new(input: R, out: W, echo: bool) -> Self {
        Term {
            reader: LineReader::new(input),
            out,
            echo,
        }
    }

    /// Prints text (made ASCII) and flushes.
    pub fn say(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(ascii(text).as_bytes())?;
        self.out.flush()
    }

    /// Prints a line.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        self.say(text)?;
        self.say("\n")
    }

    /// Shows `prompt` and reads one line.
    pub fn read(&mut self, prompt: &str, secret: bool) -> Step<Line> {
        self.say(prompt)?;
        let line = if self.echo {
            self.reader.read_line(&mut self.out, secret)?
        } else {
            // From a pipe nothing is echoed, but the transcript still gets a line break after
            // each answer so that every prompt starts a line.
            let line = self.reader.read_line(&mut io::sink(), secret)?;
            if line != Line::Eof {
                self.say("\n")?;
            }
            line
        };
        Ok(line)
    }

    /// Shows `prompt` and reads a line; Ctrl-C and end of input stop the screen.
    pub fn answer(&mut self, prompt: &str, secret: bool) -> Step<String> {
        match self.read(prompt, secret)? {
            Line::Text(t) => Ok(t.trim().to_owned()),
            Line::Cancel => Err(Stop::Menu),
            Line::Eof => Err(Stop::Eof),
        }
    }

    /// Asks until `parse` accepts the answer, at most [`MAX_TRIES`] times; each refusal is
    /// explained on its own line.
    pub fn ask<T>(
        &mut self,
        prompt: &str,
        secret: bool,
        mut parse: impl FnMut(&str) -> Result<T, String>,
    ) -> Step<T> {
        for _ in 0..MAX_TRIES {
            let text = self.answer(prompt, secret)?;
            match parse(&text) {
                Ok(v) => return Ok(v),
                Err(why) => self.line(&format!("  ! {why}"))?,
            }
        }
        self.line(&format!(
            "  ! {MAX_TRIES} invalid answers; nothing was changed. Back to the menu."
        ))?;
        Err(Stop::Menu)
    }

    /// A yes/no question; Enter gives `default`.
    pub fn confirm(&mut self, prompt: &str, default: bool) -> Step<bool> {
        let hint = if default { "[Y/n]" } else { "[y/N]" };
        self.ask(&format!("{prompt} {hint}: "), false, |s| {
            match s.to_ascii_lowercase().as_str() {
                "" => Ok(default),
                "y" | "yes" => Ok(true),
                "n" | "no" => Ok(false),
                _ => Err("answer y or n".into()),
            }
        })
    }
}

/// Where the console writes what it configures.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// The store's directory (settings, enrollment).
    pub state_dir: PathBuf,
    /// Where the systemd-networkd files go.
    pub network_dir: PathBuf,
    /// A resolv.conf to write static DNS servers to (images without systemd-resolved).
    pub resolv_conf: Option<PathBuf>,
    /// The daemon's configuration file (proxy and platform trust of enrollment and the check);
    /// `None`: the default path, if present.
    pub config: Option<PathBuf>,
}

impl ConsoleOptions {
    fn daemon_config(&self) -> Result<crate::config::Config, String> {
        let r = match &self.config {
            Some(p) => crate::config::Config::load(p, true),
            None => crate::config::Config::load(Path::new(crate::config::DEFAULT_CONFIG), false),
        };
        r.map_err(|e| e.to_string())
    }
}

/// One interface as the network screen lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub name: String,
    pub state: String,
    pub mac: String,
}

/// The machine's interfaces (without `lo`) with link state and hardware address from sysfs.
pub fn interfaces() -> Vec<InterfaceInfo> {
    netcfg::list_interfaces()
        .into_iter()
        .map(|name| {
            let read = |attr: &str| {
                sysfs_attr(&format!("/sys/class/net/{name}/{attr}")).unwrap_or_else(|| "?".into())
            };
            InterfaceInfo {
                state: read("operstate"),
                mac: read("address"),
                name,
            }
        })
        .collect()
}

/// A small sysfs attribute, first line, capped at 64 bytes.
fn sysfs_attr(path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(64)
        .read_to_string(&mut s)
        .ok()?;
    Some(s.lines().next().unwrap_or("").trim().to_owned())
}

/// The IP addresses configured on each interface (`lo` excluded), as `NAME ADDRESS/PREFIX`.
pub fn interface_addresses() -> Vec<(String, String)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ifa in addrs.take(1024) {
        if ifa.interface_name == "lo" {
            continue;
        }
        let (Some(addr), mask) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (ip, prefix): (IpAddr, Option<u32>) = if let Some(a) = addr.as_sockaddr_in() {
            let p = mask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map(|m| u32::from(m.ip()).count_ones());
            (IpAddr::V4(a.ip()), p)
        } else if let Some(a) = addr.as_sockaddr_in6() {
            let p = mask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in6())
                .map(|m| u128::from(m.ip()).count_ones());
            (IpAddr::V6(a.ip()), p)
        } else {
            continue;
        };
        let text = match prefix {
            Some(p) => format!("{ip}/{p}"),
            None => ip.to_string(),
        };
        out.push((ifa.interface_name, text));
    }
    out
}

/// The console: the menu and its screens.
#[derive(Debug)]
pub struct Console<R, W> {
    term: Term<R, W>,
    opts: ConsoleOptions,
    /// The stored settings as last read (refreshed after every screen).
    settings: Result<ApplianceSettings, String>,
}

impl<R: BufRead, W: Write> Console<R, W> {
    pub fn new(term: Term<R, W>, opts: ConsoleOptions) -> Self {
        Console {
            term,
            opts,
            settings: Err("not read yet".into()),
        }
    }

    /// Runs the menu until input ends. Returns an error only when the terminal itself fails.
    pub fn run(&mut self) -> io::Result<()> {
        self.refresh();
        self.draw_menu()?;
        for _ in 0..MAX_ROUNDS {
            let choice = match self.term.read(MENU_PROMPT, false) {
                Ok(Line::Text(t)) => t,
                Ok(Line::Cancel) | Err(Stop::Menu) => continue,
                Ok(Line::Eof) | Err(Stop::Eof) => return Ok(()),
                Err(Stop::Io(e)) => return Err(e),
            };
            let result = match choice.trim() {
                // An empty line is how a person on a serial line asks "where am I?".
                "" | "5" => Ok(()),
                "1" => self.network_screen(),
                "2" => self.proxy_screen(),
                "3" => self.enroll_screen(),
                "4" => self.status_screen(),
                _ => {
                    self.term.line("  ! Type a number from 1 to 5.")?;
                    continue;
                }
            };
            match result {
                Ok(()) | Err(Stop::Menu) => {}
                Err(Stop::Eof) => return Ok(()),
                Err(Stop::Io(e)) => return Err(e),
            }
            self.refresh();
            self.draw_menu()?;
        }
        Ok(())
    }

    fn refresh(&mut self) {
        self.settings = load_settings(&self.opts.state_dir);
    }

    fn draw_menu(&mut self) -> io::Result<()> {
        let rule = "=".repeat(WIDTH);
        let mut text = format!(
            "\n{rule}\nPicket appliance setup (picket {})\n{rule}\n",
            picket_model::PICKET_VERSION
        );
        match &self.settings {
            Ok(s) => {
                text.push_str(&wrap("  Network : ", &describe_network(&s.network)));
                text.push_str(&wrap("  Proxy   : ", &describe_proxy(s.proxy.as_ref())));
            }
            Err(e) => text.push_str(&wrap("  Settings: ", &format!("cannot be read: {e}"))),
        }
        text.push_str(&wrap(
            "  Platform: ",
            &enrollment_line(&self.opts.state_dir),
        ));
        text.push_str(
            "\n  1  Network   interface, DHCP or static address, DNS, VLAN\n\
             \x20 2  Proxy     HTTP proxy towards the platform\n\
             \x20 3  Enroll    join a platform with a one-time enrollment code\n\
             \x20 4  Status    enrollment, addresses, connectivity check\n\
             \x20 5  Refresh   redraw this menu (an empty line does too)\n\n",
        );
        self.term.say(&text)
    }

    /// The settings to change, or the reason they cannot be (then the screen ends).
    fn current_settings(&mut self) -> Step<ApplianceSettings> {
        self.refresh();
        match &self.settings {
            Ok(s) => Ok(s.clone()),
            Err(e) => {
                let msg = format!("  ! The settings cannot be read: {e}");
                self.term.line(&msg)?;
                Err(Stop::Menu)
            }
        }
    }

    fn save_settings(&mut self, s: &ApplianceSettings) -> Step<bool> {
        match save_settings(&self.opts.state_dir, s) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.term.say(&wrap(
                    "  ! Saving failed, nothing was changed: ",
                    &e.to_string(),
                ))?;
                Ok(false)
            }
        }
    }

    fn network_screen(&mut self) -> Step<()> {
        self.term.line("\n-- Network --")?;
        let mut current = self.current_settings()?;
        let existing = NetPlan::from_settings(&current.network).ok().flatten();
        if let Some(p) = &existing {
            self.term.line(&format!("Now: {}", describe_plan(p)))?;
        }
        let ifs = interfaces();
        if ifs.is_empty() {
            self.term
                .line("  ! No network interface found (only lo). Back to the menu.")?;
            return Err(Stop::Menu);
        }
        self.term.line("Interfaces:")?;
        for (i, info) in ifs.iter().enumerate() {
            self.term.line(&format!(
                "  {:>2}  {:<16} {:<8} {}",
                i + 1,
                info.name,
                info.state,
                info.mac
            ))?;
        }
        let names: Vec<String> = ifs.iter().map(|i| i.name.clone()).collect();
        let default_if = existing
            .as_ref()
            .map(|p| p.interface.as_str().to_owned())
            .filter(|n| names.contains(n));
        let prompt = match &default_if {
            Some(d) => format!("Interface [1-{} or name, Enter = {d}]: ", names.len()),
            None => format!("Interface [1-{} or name]: ", names.len()),
        };
        let interface = self.term.ask(&prompt, false, |s| match (s, &default_if) {
            ("", Some(d)) => IfName::parse(d).map_err(|e| e.to_string()),
            _ => pick_interface(s, &names),
        })?;

        let dhcp = self
            .term
            .ask("Addressing: 1 DHCP, 2 static [1]: ", false, |s| match s {
                "" | "1" => Ok(true),
                "2" => Ok(false),
                _ => Err("type 1 for DHCP or 2 for a static address".into()),
            })?;
        let addressing = if dhcp {
            Addressing::Dhcp
        } else {
            self.ask_static()?
        };
        let vlan = self.term.ask(
            "VLAN id 1-4094 (Enter for untagged): ",
            false,
            |s| match s {
                "" => Ok(None),
                s => netcfg::parse_vlan(s).map(Some).map_err(|e| e.to_string()),
            },
        )?;
        let plan = NetPlan {
            interface,
            addressing,
            vlan,
        };
        self.term.line(&format!("\n{}", describe_plan(&plan)))?;
        if !self.term.confirm("Apply these settings?", true)? {
            self.term.line("Nothing was changed.")?;
            return Ok(());
        }
        // The store is the source of truth (/etc is rendered from it at boot): save first, and
        // write /etc only once the settings are safe.
        current.network = plan.to_settings();
        if !self.save_settings(&current)? {
            return Ok(());
        }
        self.term.line("Saved.")?;
        self.apply_plan(&plan)?;
        Ok(())
    }

    fn apply_plan(&mut self, plan: &NetPlan) -> Step<()> {
        match netcfg::apply(
            plan,
            &self.opts.network_dir,
            self.opts.resolv_conf.as_deref(),
        ) {
            Ok(applied) => {
                for p in &applied.written {
                    self.term.line(&format!("  wrote {}", p.display()))?;
                }
                for p in &applied.removed {
                    self.term.line(&format!("  removed {}", p.display()))?;
                }
                self.term
                    .line(&reload_message(&applied.reload, &self.opts.network_dir))?;
            }
            Err(e) => self
                .term
                .say(&wrap("  ! Applying failed: ", &e.to_string()))?,
        }
        Ok(())
    }

    fn ask_static(&mut self) -> Step<Addressing> {
        let address = self
            .term
            .ask("Address/prefix (e.g. 192.0.2.10/24): ", false, |s| {
                Cidr::parse(s).map_err(|e| e.to_string())
            })?;
        let gateway = self
            .term
            .ask("Gateway (Enter for none): ", false, |s| match s {
                "" => Ok(None),
                s => {
                    let gw = netcfg::parse_host_ip("gateway", s).map_err(|e| e.to_string())?;
                    // Checked here so the person retypes the gateway, not everything.
                    StaticAddressing::new(address, Some(gw), Vec::new())
                        .map(|_| Some(gw))
                        .map_err(|e| e.to_string())
                }
            })?;
        let dns = self.term.ask(
            "DNS servers, up to 3, space separated (Enter for none): ",
            false,
            |s| netcfg::parse_dns_list(s).map_err(|e| e.to_string()),
        )?;
        // Both parts were validated above; a failure here is still reported, not unwrapped.
        match StaticAddressing::new(address, gateway, dns) {
            Ok(s) => Ok(Addressing::Static(s)),
            Err(e) => {
                self.term.line(&format!("  ! {e}"))?;
                Err(Stop::Menu)
            }
        }
    }

    fn proxy_screen(&mut self) -> Step<()> {
        self.term.line("\n-- Proxy --")?;
        let mut current = self.current_settings()?;
        self.term
            .line(&format!("Now: {}", describe_proxy(current.proxy.as_ref())))?;
        self.term.line(
            "The appliance reaches the platform over HTTPS, through an HTTP CONNECT proxy\n\
             if one is set here.",
        )?;
        let has_proxy = current.proxy.is_some();
        let prompt = if has_proxy {
            "Proxy URL (http://HOST:PORT), none, or Enter to keep: "
        } else {
            "Proxy URL (http://HOST:PORT), or Enter for none: "
        };
        // Outer None: keep what is set.
        let url: Option<Option<String>> = self.term.ask(prompt, false, |s| match s {
            "" if has_proxy => Ok(None),
            "" => Ok(Some(None)),
            s if s.eq_ignore_ascii_case("none") => Ok(Some(None)),
            s => crate::config::check_proxy_url(s).map(|()| Some(Some(s.to_owned()))),
        })?;
        let Some(url) = url else {
            self.term.line("Nothing was changed.")?;
            return Ok(());
        };
        let proxy = match url {
            None => None,
            Some(url) => {
                let username = self.term.ask("Username (Enter for none): ", false, |s| {
                    check_credential("username", s)
                })?;
                let password = match &username {
                    None => None,
                    Some(_) => self
                        .term
                        .ask("Password (not shown): ", true, |s| {
                            check_credential("password", s)
                        })?
                        .map(SecretString::new),
                };
                Some(ProxySettings {
                    url,
                    username,
                    password,
                })
            }
        };
        self.term
            .line(&format!("\nProxy: {}", describe_proxy(proxy.as_ref())))?;
        if !self.term.confirm("Save?", true)? {
            self.term.line("Nothing was changed.")?;
            return Ok(());
        }
        current.proxy = proxy;
        if self.save_settings(&current)? {
            self.term.line("Saved.")?;
        }
        Ok(())
    }

    fn enroll_screen(&mut self) -> Step<()> {
        self.term.line("\n-- Enroll --")?;
        let mut current = self.current_settings()?;
        let now = enrollment_line(&self.opts.state_dir);
        if now.starts_with("enrolled") {
            self.term.say(&wrap("Now: ", &now))?;
            self.term.line(
                "Enrolling again gives this appliance a new identity; the platform keeps\n\
                 the old one as a separate appliance.",
            )?;
            if !self.term.confirm("Enroll again?", false)? {
                self.term.line("Nothing was changed.")?;
                return Ok(());
            }
        }
        let default_url = current.platform_url.clone();
        let prompt = match &default_url {
            Some(u) => format!("Platform URL (https://HOST[:PORT], Enter = {u}): "),
            None => "Platform URL (https://HOST[:PORT]): ".to_owned(),
        };
        let url = self.term.ask(&prompt, false, |s| match (s, &default_url) {
            ("", Some(u)) => Ok(u.clone()),
            ("", None) => Err("type the platform's address, e.g. https://picket.example".into()),
            (s, _) => crate::config::check_platform_url(s).map(|()| s.to_owned()),
        })?;
        let code = self.term.ask("Enrollment code: ", false, |s| {
            if s.is_empty() {
                Err("type the one-time code shown by the platform".into())
            } else if s.len() > 128 {
                Err("an enrollment code is shorter than that".into())
            } else {
                Ok(s.to_owned())
            }
        })?;
        let default_fp = current.platform_ca_fingerprint.clone();
        let prompt = match &default_fp {
            Some(_) => "Platform CA SHA-256 fingerprint (Enter = the one saved before): ",
            None => "Platform CA SHA-256 fingerprint (Enter: trust public CAs): ",
        };
        let fingerprint = self.term.ask(prompt, false, |s| match s {
            "" => Ok(default_fp.clone()),
            s => crate::config::parse_fingerprint(s).map(|_| Some(s.to_owned())),
        })?;
        let trust = match &fingerprint {
            Some(fp) => CaTrust::Fingerprint(fp.clone()),
            None => CaTrust::SystemRoots,
        };
        self.term.line(&format!(
            "Enrolling with {url} (up to {} s)...",
            ENROLL_TIMEOUT.as_secs()
        ))?;
        match enroll_blocking(&self.opts, &url, &code, trust) {
            Ok(o) => {
                self.term
                    .line(&format!("Enrolled as appliance {}.", o.appliance_id))?;
                self.term.line(&format!(
                    "Platform {}; certificate valid until {}.",
                    o.platform_url, o.certificate_not_after
                ))?;
                self.term
                    .line(&format!("Platform CA pinned: {}", o.ca_fingerprint))?;
                current.platform_url = Some(url);
                current.platform_ca_fingerprint = fingerprint;
                if self.save_settings(&current)? {
                    self.term.line("Saved.")?;
                }
            }
            Err(e) => {
                self.term.say(&wrap("  ! Enrollment failed: ", &e))?;
                self.term
                    .line("    Check the code, the URL and the network (menu 4 runs a check).")?;
            }
        }
        Ok(())
    }

    fn status_screen(&mut self) -> Step<()> {
        self.term.line("\n-- Status --")?;
        match status_report(&self.opts.state_dir) {
            Ok(r) => {
                let enrolled = match (&r.appliance_id, r.enrolled) {
                    (Some(id), true) => format!("yes, appliance {id}"),
                    _ => "no (menu 3 enrolls)".into(),
                };
                let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                let mut text = String::new();
                text.push_str(&wrap("Enrolled    : ", &enrolled));
                text.push_str(&wrap("Platform    : ", &or_dash(&r.platform_url)));
                if let Some(t) = &r.certificate_not_after {
                    text.push_str(&wrap("Certificate : ", &format!("valid until {t}")));
                }
                let daemon = if r.daemon_running {
                    "running"
                } else {
                    "not running"
                };
                text.push_str(&wrap("Daemon      : ", daemon));
                let contact = match (&r.last_contact, r.daemon_running) {
                    (Some(t), _) => t.clone(),
                    (None, true) => "none yet".into(),
                    (None, false) => "unknown (the daemon is not running)".into(),
                };
                text.push_str(&wrap("Last contact: ", &contact));
                if let Some(e) = &r.last_error {
                    text.push_str(&wrap("Last error  : ", e));
                }
                text.push_str(&wrap(
                    "Outbox      : ",
                    &format!(
                        "{} chunk(s), {} bytes waiting for upload",
                        r.outbox_chunks, r.outbox_bytes
                    ),
                ));
                for w in &r.warnings {
                    text.push_str(&wrap("Warning     : ", w));
                }
                self.term.say(&text)?;
            }
            Err(e) => self
                .term
                .say(&wrap("Status      : ", &format!("unavailable: {e}")))?,
        }
        if let Ok(s) = &self.settings {
            let net = describe_network(&s.network);
            let proxy = describe_proxy(s.proxy.as_ref());
            self.term.say(&wrap("Network     : ", &net))?;
            self.term.say(&wrap("Proxy       : ", &proxy))?;
        }
        self.term.line("Addresses:")?;
        let addrs = interface_addresses();
        if addrs.is_empty() {
            self.term.line("  (none)")?;
        }
        for (name, addr) in addrs {
            self.term.line(&format!("  {name:<16} {addr}"))?;
        }
        self.term.line(&format!(
            "Connectivity check (dns, tcp, proxy, tls, api; up to {} s):",
            CHECK_TIMEOUT.as_secs()
        ))?;
        match check_report(&self.opts) {
            Ok(c) => {
                for st in &c.steps {
                    let label =
                        format!("  {:<6}{}  ", st.step, if st.ok { "ok  " } else { "FAIL" });
                    self.term.say(&wrap(&label, &st.detail))?;
                }
                match &c.failed {
                    Some(step) => self.term.line(&format!("Check FAILED at step: {step}"))?,
                    None => self.term.line("Check passed: the platform is reachable.")?,
                }
            }
            Err(e) => self.term.say(&wrap("  not run: ", &e))?,
        }
        Ok(())
    }
}

/// Who has the store: this process (opened) or the running daemon (asked over its socket).
enum Access {
    Store(Box<Store>),
    Daemon,
}

/// The store if it is free; the daemon if it holds it. Deciding without waiting matters: on the
/// appliance the daemon always holds the store, and a lock wait before every read would make
/// each menu redraw take seconds on the serial line. Another short-lived picket (the console on
/// the other terminal saving) holds it only briefly, so without a daemon socket it is waited for.
fn access(state_dir: &Path) -> Result<Access, String> {
    match Store::open_waiting(state_dir, Duration::ZERO) {
        Ok(store) => return Ok(Access::Store(Box::new(store))),
        Err(StoreError::Locked { .. }) => {}
        Err(e) => return Err(e.to_string()),
    }
    // Locked and no socket yet: either a short-lived picket holds the store, or the daemon is
    // starting (it takes the lock seconds before its socket exists; ~5 s on an emulated appliance).
    // Wait for whichever comes first, bounded.
    let deadline = std::time::Instant::now() + DAEMON_START_WAIT;
    loop {
        if crate::control::socket_path(state_dir).exists() {
            return Ok(Access::Daemon);
        }
        match Store::open_waiting(state_dir, Duration::ZERO) {
            Ok(store) => return Ok(Access::Store(Box::new(store))),
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// How long the console waits for a locked store to be freed or for the daemon's socket to appear.
const DAEMON_START_WAIT: Duration = Duration::from_secs(20);

fn ask_daemon(state_dir: &Path, req: &Request) -> Result<Response, String> {
    crate::control::request(state_dir, req).map_err(|e| e.to_string())
}

fn load_settings(state_dir: &Path) -> Result<ApplianceSettings, String> {
    match access(state_dir)? {
        Access::Store(store) => settings::load_from(&store, state_dir).map_err(|e| e.to_string()),
        Access::Daemon => match ask_daemon(state_dir, &Request::GetSettings)? {
            Response::Settings(w) => Ok(w.into_settings()),
            other => Err(crate::control::unexpected(state_dir, &other).to_string()),
        },
    }
}

fn save_settings(state_dir: &Path, s: &ApplianceSettings) -> Result<(), String> {
    settings::validate(s).map_err(|e| e.to_string())?;
    match access(state_dir)? {
        Access::Store(store) => settings::save_to(&store, state_dir, s).map_err(|e| e.to_string()),
        Access::Daemon => {
            let req = Request::SaveSettings(crate::control::WireSettings::from(s));
            match ask_daemon(state_dir, &req)? {
                Response::Ok => Ok(()),
                other => Err(crate::control::unexpected(state_dir, &other).to_string()),
            }
        }
    }
}

/// How long the connectivity check may take as a whole (each of its steps has its own bound).
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// The appliance's status: from the store, or from the daemon while it holds the store (the
/// same sources as `picket status`).
fn status_report(state_dir: &Path) -> Result<crate::status::StatusReport, String> {
    match access(state_dir)? {
        Access::Store(store) => {
            crate::status::offline_report(&store, state_dir).map_err(|e| e.to_string())
        }
        Access::Daemon => crate::status::daemon_report(state_dir).map_err(|e| e.to_string()),
    }
}

/// `picket status --check`, as the console runs it: from the store's identity and settings, or
/// asked of the daemon while it holds the store.
fn check_report(opts: &ConsoleOptions) -> Result<crate::status::CheckReport, String> {
    let state_dir = opts.state_dir.as_path();
    let input = match access(state_dir)? {
        Access::Store(store) => {
            let cfg = opts.daemon_config()?;
            match crate::status::check_input(*store, state_dir, &cfg) {
                Ok(i) => i,
                Err(crate::app::AppError::NotEnrolled) => {
                    return Err("no platform yet: enroll first (menu 3)".into())
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Access::Daemon => return crate::status::daemon_check(state_dir).map_err(|e| e.to_string()),
    };
    runtime()?.block_on(async {
        tokio::time::timeout(CHECK_TIMEOUT, crate::status::run_check(input))
            .await
            .map_err(|_| format!("no result within {} s", CHECK_TIMEOUT.as_secs()))
    })
}

/// How long an enrollment may take before the console gives up on it.
const ENROLL_TIMEOUT: Duration = Duration::from_secs(60);

fn enroll_blocking(
    opts: &ConsoleOptions,
    url: &str,
    code: &str,
    trust: CaTrust,
) -> Result<crate::enroll::EnrollOutcome, String> {
    let state_dir = opts.state_dir.as_path();
    let store = match access(state_dir)? {
        Access::Store(store) => store,
        Access::Daemon => {
            let req = Request::Enroll {
                platform_url: url.to_owned(),
                code: code.to_owned(),
                ca: trust,
            };
            return match ask_daemon(state_dir, &req)? {
                Response::Enrolled(o) => Ok(o),
                other => Err(crate::control::unexpected(state_dir, &other).to_string()),
            };
        }
    };
    let cfg = opts.daemon_config()?;
    runtime()?.block_on(async {
        match tokio::time::timeout(
            ENROLL_TIMEOUT,
            crate::enroll::enroll_with_store(&store, state_dir, &cfg, url, code, &trust),
        )
        .await
        {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} s", ENROLL_TIMEOUT.as_secs())),
        }
    })
}

/// A proxy username or password: printable ASCII without spaces or ':' in the username (Basic
/// auth joins them with ':'); empty means none.
fn check_credential(what: &str, s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > 128 {
        return Err(format!("the {what} is too long (at most 128 characters)"));
    }
    if what == "username" && s.contains([':', ' ']) {
        return Err("a username cannot contain ':' or spaces".into());
    }
    Ok(Some(s.to_owned()))
}

fn reload_message(r: &netcfg::ReloadOutcome, dir: &Path) -> String {
    match r {
        netcfg::ReloadOutcome::Reloaded => {
            "systemd-networkd reloaded: the settings are in effect.".to_owned()
        }
        netcfg::ReloadOutcome::NotRunning => {
            "systemd-networkd is not running; the settings take effect when it starts.".to_owned()
        }
        netcfg::ReloadOutcome::NotNetworkdDir => format!(
            "{} is not read by systemd-networkd; nothing was reloaded.",
            dir.display()
        ),
    }
}

fn describe_network(n: &NetworkSettings) -> String {
    match NetPlan::from_settings(n) {
        Ok(Some(p)) => describe_plan(&p),
        Ok(None) => "not configured".into(),
        Err(e) => format!("stored settings are invalid ({e})"),
    }
}

fn describe_proxy(p: Option<&ProxySettings>) -> String {
    match p {
        None => "none (direct connection)".into(),
        Some(p) => match &p.username {
            None => p.url.clone(),
            Some(u) => format!(
                "{} as user {u}{}",
                p.url,
                if p.password.is_some() {
                    " (password set)"
                } else {
                    ""
                }
            ),
        },
    }
}

/// The enrollment as one line: from the store, or from the running daemon when it holds it.
fn enrollment_line(state_dir: &Path) -> String {
    let line = |enrolled: bool, id: Option<&str>, url: Option<&str>| match (enrolled, id) {
        (true, Some(id)) => format!("enrolled as {id} with {}", url.unwrap_or("?")),
        _ => "not enrolled".to_owned(),
    };
    let r = match access(state_dir) {
        Ok(Access::Store(store)) => crate::enroll::identity(&store)
            .map(|i| {
                line(
                    i.is_some(),
                    i.as_ref().map(|i| i.appliance_id.as_str()),
                    i.as_ref().map(|i| i.platform_url.as_str()),
                )
            })
            .map_err(|e| e.to_string()),
        Ok(Access::Daemon) => match ask_daemon(state_dir, &Request::Status) {
            Ok(Response::Status(s)) => Ok(line(
                s.enrolled,
                s.appliance_id.as_deref(),
                s.platform_url.as_deref(),
            )),
            Ok(other) => Err(crate::control::unexpected(state_dir, &other).to_string()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    r.unwrap_or_else(|e| format!("unknown ({e})"))
}

/// `label` then `text`, continued lines indented under the text, at most [`WIDTH`] wide.
fn wrap(label: &str, text: &str) -> String {
    let indent = " ".repeat(label.len());
    let room = WIDTH.saturating_sub(label.len()).max(20);
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > room {
            let lead = if out.is_empty() { label } else { &indent };
            out.push_str(&format!("{lead}{line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let lead = if out.is_empty() { label } else { &indent };
    out.push_str(&format!("{lead}{line}\n"));
    out
}

/// An interface by its number in the list or by its name.
fn pick_interface(s: &str, names: &[String]) -> Result<IfName, String> {
    if let Ok(n) = s.parse::<usize>() {
        return match n.checked_sub(1).and_then(|i| names.get(i)) {
            Some(name) => IfName::parse(name).map_err(|e| e.to_string()),
            None => Err(format!("type a number from 1 to {}", names.len())),
        };
    }
    if names.iter().any(|n| n == s) {
        return IfName::parse(s).map_err(|e| e.to_string());
    }
    Err(format!(
        "no interface {:?}; choose one of the list",
        ascii(&s.chars().take(32).collect::<String>())
    ))
}

/// A one-paragraph description of a plan, for the confirmation and the status screen.
pub fn describe_plan(plan: &NetPlan) -> String {
    let mut s = format!("Interface {}", plan.interface.as_str());
    if let (Some(id), Some(name)) = (plan.vlan, plan.vlan_interface()) {
        s.push_str(&format!(", VLAN {id} ({name})"));
    }
    match &plan.addressing {
        Addressing::Dhcp => s.push_str(", DHCP"),
        Addressing::Static(st) => {
            s.push_str(&format!(", static {}", st.address()));
            match st.gateway() {
                Some(gw) => s.push_str(&format!(", gateway {gw}")),
                None => s.push_str(", no gateway"),
            }
            if st.dns().is_empty() {
                s.push_str(", no DNS servers");
            } else {
                let dns: Vec<String> = st.dns().iter().map(|d| d.to_string()).collect();
                s.push_str(&format!(", DNS {}", dns.join(" ")));
            }
        }
    }
    s
}

/// Puts a terminal on standard input into the console's mode for as long as it lives, and
/// restores the previous mode when dropped.
#[derive(Debug)]
pub struct TtyMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl TtyMode {
    /// Non-canonical input (our editor sees every byte), no echo (we echo, and not secrets), no
    /// signals from Ctrl-C/Ctrl-\/Ctrl-Z (there is nothing to drop back to), CR not translated
    /// (we accept CR, LF and CRLF ourselves), output newline translated to CRLF. Does nothing
    /// when standard input is not a terminal.
    pub fn enter() -> TtyMode {
        use nix::sys::termios::{
            tcgetattr, tcsetattr, InputFlags, LocalFlags, OutputFlags, SetArg,
            SpecialCharacterIndices,
        };
        let stdin = io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return TtyMode { saved: None };
        };
        let mut t = saved.clone();
        t.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG | LocalFlags::IEXTEN);
        t.input_flags
            .remove(InputFlags::ICRNL | InputFlags::INLCR | InputFlags::IGNCR);
        t.output_flags
            .insert(OutputFlags::OPOST | OutputFlags::ONLCR);
        t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        if tcsetattr(&stdin, SetArg::TCSANOW, &t).is_err() {
            return TtyMode { saved: None };
        }
        TtyMode { saved: Some(saved) }
    }

    /// Whether standard input is a terminal the console now echoes for.
    pub fn active(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for TtyMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// Runs the console on standard input and output until input ends.
pub fn run_stdio(opts: ConsoleOptions) -> io::Result<()> {
    let mode = TtyMode::enter();
    let stdin = io::stdin();
    let term = Term::new(stdin.lock(), io::stdout().lock(), mode.active());
    let result = Console::new(term, opts).run();
    drop(mode);
    result
}

/// `picket console`: exit status 0 when input ends; 3 if the terminal cannot be read or
/// written. With `--apply-stored`, renders the stored network settings instead.
pub fn run(cli: &Cli, args: &ConsoleArgs) -> Result<u8, AppError> {
    let opts = ConsoleOptions {
        state_dir: crate::app::state_dir(cli)?,
        network_dir: args.etc_dir.clone(),
        resolv_conf: args.resolv_conf.clone(),
        config: args.config.clone(),
    };
    if args.apply_stored {
        return apply_stored(cli, &opts);
    }
    match run_stdio(opts) {
        Ok(()) => Ok(crate::app::exit::OK),
        // The other end of a pipe or a hung-up line: nobody is left to set anything up.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(crate::app::exit::OK),
        Err(source) => Err(AppError::Write {
            target: "the console".into(),
            source,
        }),
    }
}

/// `picket console --apply-stored`: /etc rendered from the store at boot. Stored settings that
/// do not validate are an error (exit 2) and nothing is written; no settings yet is not (exit 0,
/// the image's own default applies).
fn apply_stored(cli: &Cli, opts: &ConsoleOptions) -> Result<u8, AppError> {
    let stored = settings::load(&opts.state_dir)?;
    let plan = NetPlan::from_settings(&stored.network).map_err(|e| AppError::Config {
        path: opts.state_dir.join("store"),
        reason: format!("stored network settings: {e}"),
    })?;
    let Some(plan) = plan else {
        crate::app::note(cli, "no network settings stored yet; nothing written");
        return Ok(crate::app::exit::OK);
    };
    let applied =
        netcfg::apply(&plan, &opts.network_dir, opts.resolv_conf.as_deref()).map_err(|e| {
            AppError::Write {
                target: opts.network_dir.display().to_string(),
                source: io::Error::other(e.to_string()),
            }
        })?;
    crate::app::note(cli, &describe_plan(&plan));
    for p in &applied.written {
        crate::app::note(cli, &format!("wrote {}", p.display()));
    }
    for p in &applied.removed {
        crate::app::note(cli, &format!("removed {}", p.display()));
    }
    crate::app::note(cli, &reload_message(&applied.reload, &opts.network_dir));
    Ok(crate::app::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> (Vec<Line>, Vec<u8>) {
        let mut r = LineReader::new(input);
        let mut echo = Vec::new();
        let mut out = Vec::new();
        for _ in 0..100 {
            let l = r
                .read_line(&mut echo, false)
                .unwrap_or_else(|e| panic!("{e}"));
            let end = l == Line::Eof;
            out.push(l);
            if end {
                break;
            }
        }
        (out, echo)
    }

    fn text(s: &str) -> Line {
        Line::Text(s.to_owned())
    }

    #[test]
    fn cr_lf_and_crlf_each_end_one_line() {
        let (l, _) = lines(b"a\rb\nc\r\nd\r\n\r\ne");
        assert_eq!(
            l,
            vec![
                text("a"),
                text("b"),
                text("c"),
                text("d"),
                text(""),
                text("e"),
                Line::Eof
            ]
        );
        // LF then CR: two terminators, the second an empty line.
        let (l, _) = lines(b"x\n\ry\n");
        assert_eq!(l, vec![text("x"), text(""), text("y"), Line::Eof]);
    }

    #[test]
    fn backspace_del_and_ctrl_u_edit() {
        let (l, echo) = lines(b"ab\x08c\x7fd\r\nxyz\x15ok\n\x08\x08\n");
        assert_eq!(l, vec![text("ad"), text("ok"), text(""), Line::Eof]);
        let shown = String::from_utf8_lossy(&echo);
        assert!(shown.starts_with("ab\x08 \x08c\x08 \x08d\n"), "{shown:?}");
    }

    #[test]
    fn escape_sequences_and_controls_are_dropped() {
        let (l, _) = lines(b"1\x1b[A\x1b[1;5C\x1bOP2\x00\x07\xc3\xa93\n");
        assert_eq!(l, vec![text("123"), Line::Eof]);
    }

    #[test]
    fn ctrl_c_cancels_and_ctrl_d_on_empty_line_ends() {
        let (l, _) = lines(b"abc\x03def\n\x04ignored\n");
        assert_eq!(l, vec![Line::Cancel, text("def"), Line::Eof]);
        let (l, _) = lines(b"ab\x04c\n");
        assert_eq!(l, vec![text("abc"), Line::Eof]);
    }

    #[test]
    fn secrets_are_not_echoed() {
        let mut r = LineReader::new(&b"hunter2\r"[..]);
        let mut echo = Vec::new();
        let l = r
            .read_line(&mut echo, true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l, text("hunter2"));
        assert_eq!(echo, b"\n");
    }

    #[test]
    fn long_lines_are_capped_and_a_last_line_without_newline_counts() {
        let long = vec![b'x'; MAX_LINE + 50];
        let (l, echo) = lines(&long);
        assert_eq!(l, vec![text(&"x".repeat(MAX_LINE)), Line::Eof]);
        assert_eq!(echo.iter().filter(|b| **b == 0x07).count(), 50);
    }

    #[test]
    fn ask_gives_up_after_max_tries() {
        let mut out = Vec::new();
        let mut t = Term::new(&b"a\nb\nc\n5\n"[..], &mut out, false);
        let r = t.ask("N: ", false, |s| {
            s.parse::<u8>().map_err(|_| "a number".to_string())
        });
        assert!(matches!(r, Err(Stop::Menu)), "{r:?}");
        let shown = String::from_utf8_lossy(&out);
        assert_eq!(shown.matches("  ! a number").count(), MAX_TRIES, "{shown}");
    }

    #[test]
    fn output_is_ascii() {
        assert_eq!(ascii("caf\u{e9} \x1b[2J\tok\n"), "caf? ?[2J?ok\n");
    }

    fn read_all(input: &[u8]) -> Vec<Line> {
        let mut r = LineReader::new(input);
        let mut out = Vec::new();
        // Each read consumes at least one byte or ends: input.len() + 1 reads suffice.
        for _ in 0..=input.len() {
            match r.read_line(&mut io::sink(), false) {
                Ok(Line::Eof) | Err(_) => break,
                Ok(l) => out.push(l),
            }
        }
        out
    }

    proptest::proptest! {
        /// Any bytes a serial line can deliver: no panic, and every line is printable ASCII of
        /// bounded length.
        #[test]
        fn any_bytes_give_bounded_printable_lines(input in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            for l in read_all(&input) {
                if let Line::Text(t) = l {
                    proptest::prop_assert!(t.len() <= MAX_LINE);
                    proptest::prop_assert!(t.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{t:?}");
                }
            }
        }

        /// Printable lines joined by any mix of CR, LF and CRLF read back exactly.
        #[test]
        fn lines_survive_every_line_ending(
            lines in proptest::collection::vec("[ -~]{0,40}", 0..20),
            ends in proptest::collection::vec(0u8..3, 20),
        ) {
            let mut input = Vec::new();
            for (l, e) in lines.iter().zip(&ends) {
                input.extend_from_slice(l.as_bytes());
                input.extend_from_slice(match e { 0 => b"\r".as_slice(), 1 => b"\n", _ => b"\r\n" });
            }
            // ESC in the text would start a sequence; the generator's range has none. A bare CR
            // followed by an empty line ended by LF is indistinguishable from CRLF: one line.
            let got = read_all(&input);
            let mut want = Vec::new();
            let mut prev_cr = false;
            for (l, e) in lines.iter().zip(&ends) {
                if !(prev_cr && l.is_empty() && *e == 1) {
                    want.push(Line::Text(l.clone()));
                }
                prev_cr = *e == 0;
            }
            proptest::prop_assert_eq!(got, want);
        }
    }
}
