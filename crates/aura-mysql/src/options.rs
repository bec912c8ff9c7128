//! Connection options (API.md §3, §7): where to connect, how to secure it,
//! pool and timeouts. Every DSN option is either forwarded or rejected
//! (the Python layer rejects unknown names; values are checked here).

use std::fmt;
use std::path::PathBuf;

use aura_core::{Error, ErrorCode, Result};
use aura_sql::PoolSettings;
use mysql_async::{OptsBuilder, PoolConstraints, PoolOpts, SslOpts};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// `ssl-mode`, as the MySQL client spells it (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it, plain TCP otherwise (decided once,
    /// when the pool opens).
    Preferred,
    /// TLS always; the certificate is checked only when `ssl-ca` is given.
    Required,
    /// TLS always, the chain checked against `ssl-ca`, not the host name.
    VerifyCa,
    /// TLS always, chain and host name verified.
    VerifyIdentity,
}

impl SslMode {
    pub fn parse(mode: &str) -> Result<SslMode> {
        match mode.to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" => Ok(SslMode::Disabled),
            "PREFERRED" => Ok(SslMode::Preferred),
            "REQUIRED" => Ok(SslMode::Required),
            "VERIFY_CA" => Ok(SslMode::VerifyCa),
            "VERIFY_IDENTITY" => Ok(SslMode::VerifyIdentity),
            _ => Err(config(
                "ssl-mode must be one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
                    .to_owned(),
            )),
        }
    }
}

pub(crate) fn config(message: String) -> Error {
    Error::new(ErrorCode::ConfigError, message).with_context("driver", crate::DRIVER)
}

/// The character sets the codec can use: text is UTF-8 end to end, so
/// only `utf8mb4` (all of Unicode) is accepted.
pub fn check_charset(charset: &str) -> Result<()> {
    if charset.eq_ignore_ascii_case("utf8mb4") {
        return Ok(());
    }
    Err(config(format!(
        "charset={charset} is not supported by the mysql backend; text is stored as utf8mb4"
    )))
}

/// Everything needed to open the pool.
#[derive(Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub ssl_mode: SslMode,
    /// PEM file of trusted CA certificates (`ssl-ca`).
    pub ca_file: Option<PathBuf>,
    /// Pool sizes and timeouts (PoolConfig, connect and request timeouts).
    pub pool: PoolSettings,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("ssl_mode", &self.ssl_mode)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// Statements every new connection runs: UTF-8 text with a byte-order
/// collation (comparisons as the memory engine's), strict writes (a bad
/// value is an error, never silently truncated), a one-second row-lock
/// wait, after which a blocked write fails as a retryable `conflict`, and
/// on MariaDB (10.11.8 and later; the `/*M!` comment runs there only)
/// snapshot isolation: writing a row changed since the transaction's
/// snapshot fails (error 1020, a `conflict`) instead of overwriting it.
const SETUP: &[&str] = &[
    "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION innodb_lock_wait_timeout = 1",
    "/*M!101108 SET SESSION innodb_snapshot_isolation = ON */",
];

/// Prepared statements kept per connection (distinct `IN (...)` lengths
/// each prepare one).
const STATEMENT_CACHE: usize = 256;

impl Options {
    /// The mysql_async options; `tls`: whether this pool uses TLS (after
    /// `Preferred` was resolved).
    pub fn opts(&self, tls: bool) -> Result<OptsBuilder> {
        let constraints = PoolConstraints::new(0, self.pool.max_size.max(1))
            .ok_or_else(|| config("pool min_size must not exceed max_size".to_owned()))?;
        let pool = PoolOpts::new()
            .with_constraints(constraints)
            // Sessions keep their settings and prepared statements: every
            // request leaves its connection outside a transaction, and one
            // whose state is unknown is closed, never returned.
            .with_reset_connection(false)
            .with_abs_conn_ttl(Some(self.pool.max_lifetime))
            .with_inactive_connection_ttl(self.pool.idle_timeout);
        let mut builder = OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(self.password.clone())
            .db_name(self.dbname.clone())
            .prefer_socket(false)
            // UPDATE reports matched rows, as on every other backend.
            .client_found_rows(true)
            .stmt_cache_size(STATEMENT_CACHE)
            .setup(SETUP.to_vec())
            .pool_opts(pool);
        if tls {
            builder = builder.ssl_opts(self.ssl()?);
        }
        Ok(builder)
    }

    /// Whether TLS is tried at all.
    pub fn wants_tls(&self) -> bool {
        self.ssl_mode != SslMode::Disabled
    }

    /// The rustls settings for `ssl_mode` and `ca_file`.
    pub fn ssl(&self) -> Result<SslOpts> {
        let mut ssl = SslOpts::default();
        if let Some(path) = &self.ca_file {
            check_pem(path)?;
            ssl = ssl
                .with_root_certs(vec![path.clone().into()])
                .with_disable_built_in_roots(true);
        }
        let verify_chain = self.ca_file.is_some() || self.ssl_mode == SslMode::VerifyIdentity;
        match self.ssl_mode {
            SslMode::VerifyCa if self.ca_file.is_none() => Err(config(
                "ssl-mode=VERIFY_CA needs ssl-ca (the CA certificate file)".to_owned(),
            )),
            SslMode::VerifyIdentity => Ok(ssl),
            SslMode::VerifyCa => Ok(ssl.with_danger_skip_domain_validation(true)),
            // PREFERRED/REQUIRED: encrypted; the certificate is checked
            // against ssl-ca when one is given, as the MySQL client does.
            _ if verify_chain => Ok(ssl.with_danger_skip_domain_validation(true)),
            _ => Ok(ssl
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true)),
        }
    }
}

fn check_pem(path: &PathBuf) -> Result<()> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|_| {
            config(format!(
                "ssl-ca '{}' is not a readable PEM certificate file",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(config(format!(
            "ssl-ca '{}' holds no certificate",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn options(mode: SslMode, ca: Option<&str>) -> Options {
        Options {
            host: "h".into(),
            port: 3306,
            user: "u".into(),
            password: Some("hunter2".into()),
            dbname: None,
            ssl_mode: mode,
            ca_file: ca.map(PathBuf::from),
            pool: PoolSettings {
                min_size: 1,
                max_size: 4,
                acquire_timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
                max_lifetime: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(1),
            },
        }
    }

    #[test]
    fn ssl_modes_parse_in_any_spelling_or_are_rejected() {
        assert_eq!(SslMode::parse("required").unwrap(), SslMode::Required);
        assert_eq!(SslMode::parse("VERIFY-CA").unwrap(), SslMode::VerifyCa);
        assert_eq!(
            SslMode::parse("verify_identity").unwrap(),
            SslMode::VerifyIdentity
        );
        let err = SslMode::parse("bogus").unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigError);
        assert_eq!(
            err.message,
            "ssl-mode must be one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
        );
    }

    #[test]
    fn only_utf8mb4_is_accepted() {
        check_charset("UTF8MB4").unwrap();
        assert_eq!(
            check_charset("latin1").unwrap_err().message,
            "charset=latin1 is not supported by the mysql backend; text is stored as utf8mb4"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", options(SslMode::Disabled, None));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password: Some(\"***\")"), "{shown}");
    }

    #[test]
    fn tls_settings_follow_the_mode() {
        let required = options(SslMode::Required, None).ssl().unwrap();
        assert!(required.accept_invalid_certs());
        let identity = options(SslMode::VerifyIdentity, None).ssl().unwrap();
        assert!(!identity.accept_invalid_certs() && !identity.skip_domain_validation());
        let err = options(SslMode::VerifyCa, None).ssl().unwrap_err();
        assert_eq!(
            err.message,
            "ssl-mode=VERIFY_CA needs ssl-ca (the CA certificate file)"
        );
        let err = options(SslMode::VerifyCa, Some("/nonexistent/ca.pem"))
            .ssl()
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigError);
        assert_eq!(
            err.message,
            "ssl-ca '/nonexistent/ca.pem' is not a readable PEM certificate file"
        );
    }
}
