//! CPE 2.3 names for the products we identify.
//!
//! Why: vulnerability matching downstream keys on CPE vendor/product pairs, which rarely equal
//! what a banner says (`vsFTPd` is `beasts:vsftpd`, `nginx` is `f5:nginx`). The table is our own,
//! written from the NVD dictionary's vendor/product names.

/// (product as we report it, CPE part, vendor, product).
const TABLE: &[(&str, char, &str, &str)] = &[
    ("OpenSSH", 'a', "openbsd", "openssh"),
    ("Dropbear sshd", 'a', "dropbear_ssh_project", "dropbear_ssh"),
    ("libssh", 'a', "libssh", "libssh"),
    ("nginx", 'a', "f5", "nginx"),
    ("Apache httpd", 'a', "apache", "http_server"),
    ("lighttpd", 'a', "lighttpd", "lighttpd"),
    (
        "Microsoft IIS httpd",
        'a',
        "microsoft",
        "internet_information_services",
    ),
    ("Caddy", 'a', "caddyserver", "caddy"),
    ("OpenResty", 'a', "openresty", "openresty"),
    ("Apache Tomcat", 'a', "apache", "tomcat"),
    ("Jetty", 'a', "eclipse", "jetty"),
    ("Redis", 'a', "redis", "redis"),
    ("Valkey", 'a', "lfprojects", "valkey"),
    ("memcached", 'a', "memcached", "memcached"),
    ("vsftpd", 'a', "beasts", "vsftpd"),
    ("ProFTPD", 'a', "proftpd", "proftpd"),
    ("Pure-FTPd", 'a', "pureftpd", "pure-ftpd"),
    ("dnsmasq", 'a', "thekelleys", "dnsmasq"),
    ("ISC BIND", 'a', "isc", "bind"),
    ("Unbound", 'a', "nlnetlabs", "unbound"),
    ("PowerDNS Recursor", 'a', "powerdns", "recursor"),
    (
        "PowerDNS Authoritative Server",
        'a',
        "powerdns",
        "authoritative_server",
    ),
    ("Knot DNS", 'a', "nic", "knot_dns"),
    ("Postfix", 'a', "postfix", "postfix"),
    ("Exim", 'a', "exim", "exim"),
    ("Sendmail", 'a', "sendmail", "sendmail"),
    ("OpenSMTPD", 'a', "openbsd", "opensmtpd"),
    ("Dovecot", 'a', "dovecot", "dovecot"),
    ("Cyrus IMAP", 'a', "cmu", "cyrus_imap_server"),
    ("Courier", 'a', "courier-mta", "courier_mail_server"),
    ("Net-SNMP", 'a', "net-snmp", "net-snmp"),
    ("MySQL", 'a', "oracle", "mysql"),
    ("MariaDB", 'a', "mariadb", "mariadb"),
    ("PostgreSQL", 'a', "postgresql", "postgresql"),
    ("OpenLDAP", 'a', "openldap", "openldap"),
    (
        "389 Directory Server",
        'a',
        "redhat",
        "389_directory_server",
    ),
    ("Samba", 'a', "samba", "samba"),
    ("MiniUPnPd", 'a', "miniupnp_project", "miniupnpd"),
    ("ntpd", 'a', "ntp", "ntp"),
    ("xrdp", 'a', "neutrinolabs", "xrdp"),
];

/// The CPE 2.3 formatted string of `product` at `version`, when the product is in our table.
pub fn cpe_for(product: &str, version: Option<&str>) -> Option<String> {
    let (_, part, vendor, name) = TABLE.iter().find(|(p, ..)| *p == product)?;
    let version = match version {
        Some(v) if !v.is_empty() => escape(v),
        _ => "*".to_string(),
    };
    Some(format!(
        "cpe:2.3:{part}:{vendor}:{name}:{version}:*:*:*:*:*:*:*"
    ))
}

/// CPE 2.3 formatted-string quoting: everything but alphanumerics, `_`, `-` and `.` is escaped
/// with a backslash, and values are lowercase.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars().filter(|c| c.is_ascii_graphic()) {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_products() {
        assert_eq!(
            cpe_for("OpenSSH", Some("9.2p1")).as_deref(),
            Some("cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*")
        );
        assert_eq!(
            cpe_for("nginx", Some("1.22.1")).as_deref(),
            Some("cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*")
        );
        assert_eq!(
            cpe_for("Postfix", None).as_deref(),
            Some("cpe:2.3:a:postfix:postfix:*:*:*:*:*:*:*:*")
        );
        assert_eq!(
            cpe_for("vsftpd", Some("3.0.3")).as_deref(),
            Some("cpe:2.3:a:beasts:vsftpd:3.0.3:*:*:*:*:*:*:*")
        );
        assert_eq!(cpe_for("SomethingElse", Some("1")), None);
    }

    #[test]
    fn special_characters_are_quoted() {
        assert_eq!(
            cpe_for("MariaDB", Some("10.11.4+x:y")).as_deref(),
            Some("cpe:2.3:a:mariadb:mariadb:10.11.4\\+x\\:y:*:*:*:*:*:*:*")
        );
    }
}
