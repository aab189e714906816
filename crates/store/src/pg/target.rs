//! Where to connect: the URL parsed (with libpq's `sslmode` and `sslrootcert` semantics, which the
//! driver does not know), its password-free forms for logs and watermarks, and the connection.

use super::{PgError, PgResult};
use postgres::config::{Host, SslMode};
use postgres::{Client, Config};
use postgres_native_tls::MakeTlsConnector;
use std::str::FromStr;
use std::time::Duration;

/// How the connection is encrypted, as libpq's `sslmode` means it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// `sslmode=disable`: plain TCP.
    Disable,
    /// `allow`, `prefer` (the default) or `require`: encrypted (required only for `require`), the
    /// certificate not verified, as libpq does unless a root certificate is given.
    Encrypt,
    /// `verify-ca` (or `require` with `sslrootcert`): the chain checked, not the host name.
    VerifyCa,
    /// `verify-full`: the chain and the host name checked.
    VerifyFull,
}

/// A parsed `postgres://` / `postgresql://` URL.
#[derive(Debug, Clone)]
pub struct PgTarget {
    config: Config,
    /// How the connection is encrypted.
    pub tls: TlsPolicy,
    root_cert: Option<String>,
    /// The URL with its password replaced by `***`: the only form logged or stored.
    pub redacted: String,
    /// `host:port/dbname`: names the database in watermarks whatever the user, password or options.
    pub key: String,
}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

impl PgTarget {
    /// Parse a `postgres://`/`postgresql://` URL (libpq's `sslmode`, `sslrootcert`, `connect_timeout`).
    pub fn parse(url: &str) -> PgResult<Self> {
        let redacted = redact_url(url);
        let bad = |why: &str| PgError::Url {
            url: redacted.clone(),
            why: why.to_string(),
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad(
                "expected postgres://USER:PASSWORD@HOST:PORT/DBNAME[?sslmode=…]",
            ));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut sslmode = None;
        let mut root_cert = None;
        let mut passed_on = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => sslmode = Some(value.to_string()),
                "sslrootcert" => root_cert = Some(percent_decode(value)),
                "sslcert" | "sslkey" => {
                    return Err(bad(
                        "client certificates (sslcert, sslkey) are not supported",
                    ))
                }
                _ => passed_on.push(pair),
            }
        }
        let tls = match (sslmode.as_deref(), &root_cert) {
            (Some("disable"), _) => TlsPolicy::Disable,
            (Some("verify-full"), _) => TlsPolicy::VerifyFull,
            (Some("verify-ca"), _) | (Some("require"), Some(_)) => TlsPolicy::VerifyCa,
            (None | Some("allow" | "prefer" | "require"), _) => TlsPolicy::Encrypt,
            (Some(other), _) => {
                return Err(bad(&format!(
                    "sslmode={other}: expected disable, allow, prefer, require, verify-ca or verify-full"
                )))
            }
        };
        let driver_url = if passed_on.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", passed_on.join("&"))
        };
        let mut config = Config::from_str(&driver_url).map_err(|e| bad(&e.to_string()))?;
        config.ssl_mode(match (tls, sslmode.as_deref()) {
            (TlsPolicy::Disable, _) => SslMode::Disable,
            (TlsPolicy::Encrypt, None | Some("allow" | "prefer")) => SslMode::Prefer,
            _ => SslMode::Require,
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("learnloop");
        }
        let key = database_key(&config);
        Ok(Self {
            config,
            tls,
            root_cert,
            redacted,
            key,
        })
    }
}

impl PgTarget {
    /// Use `password` when the URL has none (the CLI passes `PGPASSWORD`, as libpq does, so that
    /// the password need not appear in a command line or a crontab).
    pub fn with_default_password(mut self, password: Option<String>) -> Self {
        if self.config.get_password().is_none() {
            if let Some(p) = password.filter(|p| !p.is_empty()) {
                self.config.password(p);
            }
        }
        self
    }
}

fn database_key(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with any password (`user:PASSWORD@` or a `password=` parameter) replaced by `***`.
///
/// The credentials are found as the driver finds them: everything between the scheme and the
/// first `@` of the URL, so a password holding an unencoded `/` or `?` (which the driver accepts)
/// is hidden too. A host never holds `@`, so a later `@` before the path still belongs to a
/// mistyped password and is hidden with it.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_query(url);
    };
    let (userinfo, after) = match rest.find('@') {
        Some(first_at) => {
            let user = &rest[..first_at];
            let tail = &rest[first_at + 1..];
            match user.split_once(':') {
                Some((user, _password)) => {
                    let host_end = tail.find(['/', '?']).unwrap_or(tail.len());
                    let hosts = tail[..host_end].rfind('@').map_or(tail, |i| &tail[i + 1..]);
                    (format!("{user}:***@"), hosts)
                }
                None => (format!("{user}@"), tail),
            }
        }
        None => (String::new(), rest),
    };
    format!("{scheme}://{userinfo}{}", redact_query(after))
}

/// `text` with the value of every `password=` parameter after its first `?` replaced by `***`.
fn redact_query(text: &str) -> String {
    let Some((base, query)) = text.split_once('?') else {
        return text.to_string();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some(("password", _)) => "password=***".to_string(),
            _ => p.to_string(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

fn tls_connector(target: &PgTarget) -> PgResult<MakeTlsConnector> {
    let tls_err = |source| PgError::Tls {
        target: target.redacted.clone(),
        source,
    };
    let mut builder = native_tls::TlsConnector::builder();
    match target.tls {
        TlsPolicy::Disable | TlsPolicy::Encrypt => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        TlsPolicy::VerifyCa => {
            builder.danger_accept_invalid_hostnames(true);
        }
        TlsPolicy::VerifyFull => {}
    }
    if let Some(path) = &target.root_cert {
        let pem = std::fs::read(path).map_err(|source| PgError::RootCert {
            path: path.clone(),
            source,
        })?;
        for cert in pem_certificates(&pem) {
            builder.add_root_certificate(native_tls::Certificate::from_pem(cert).map_err(tls_err)?);
        }
    }
    Ok(MakeTlsConnector::new(builder.build().map_err(tls_err)?))
}

/// Each certificate of a PEM bundle (a root file may hold several).
fn pem_certificates(pem: &[u8]) -> Vec<&[u8]> {
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut certs = Vec::new();
    let mut rest = pem;
    while let Some(at) = rest.windows(END.len()).position(|w| w == END) {
        certs.push(&rest[..at + END.len()]);
        rest = &rest[at + END.len()..];
    }
    certs
}

/// Open a connection, encrypted as the URL asks.
pub fn connect(target: &PgTarget) -> PgResult<Client> {
    let tls = tls_connector(target)?;
    target
        .config
        .connect(tls)
        .map_err(|source| PgError::Connect {
            target: target.redacted.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgresql://ll:s3cr:et@db.example.com:6543/postgres?sslmode=require"),
            "postgresql://ll:***@db.example.com:6543/postgres?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://ll@localhost/x?password=hunter2&sslmode=disable"),
            "postgres://ll@localhost/x?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://localhost"), "postgres://localhost");
        // The driver takes everything up to the first `@` as the credentials, so these passwords
        // (accepted unencoded) must not leak through the path or the query.
        assert_eq!(
            redact_url("postgresql://u:S3cr/et@127.0.0.1:1/db"),
            "postgresql://u:***@127.0.0.1:1/db"
        );
        assert_eq!(
            redact_url("postgresql://u:Ab?Cd9@h/db?sslmode=disable"),
            "postgresql://u:***@h/db?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgresql://u:p@ss@h:5432/db"),
            "postgresql://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?application_name=a&password=x?y"),
            "postgres://u@h/db?application_name=a&password=***"
        );
    }

    #[test]
    fn sslmode_follows_libpq() {
        let policy = |q: &str| PgTarget::parse(&format!("postgres://u:p@h/db{q}")).map(|t| t.tls);
        assert_eq!(policy("").unwrap(), TlsPolicy::Encrypt);
        assert_eq!(policy("?sslmode=disable").unwrap(), TlsPolicy::Disable);
        assert_eq!(policy("?sslmode=require").unwrap(), TlsPolicy::Encrypt);
        assert_eq!(
            policy("?sslmode=require&sslrootcert=%2Ftmp%2Fca.pem").unwrap(),
            TlsPolicy::VerifyCa
        );
        assert_eq!(
            policy("?sslmode=verify-full").unwrap(),
            TlsPolicy::VerifyFull
        );
        assert!(policy("?sslmode=bogus").is_err());
        assert!(policy("?sslcert=x").is_err());
        let t = PgTarget::parse(
            "postgresql://u:secret@db.example.com:6543/postgres?sslmode=require&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(t.key, "db.example.com:6543/postgres");
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&Duration::from_secs(5))
        );
        assert!(!t.redacted.contains("secret"));
        let err = PgTarget::parse("mysql://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn root_cert_bundles_split() {
        let pem = b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(pem).len(), 2);
        assert_eq!(percent_decode("%2Ftmp%2Fca.pem"), "/tmp/ca.pem");
    }
}
