//! Connection options (API.md §3, §7): where to connect, how to secure it,
//! pool and timeouts. Every DSN option is either forwarded or rejected
//! (the Python layer rejects unknown names; values are checked here).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use aura_core::{Error, ErrorCode, Result};
use aura_sql::PoolSettings;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// `sslmode`, as libpq spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it (libpq's default).
    Prefer,
    /// TLS always; the certificate is checked only against `sslrootcert`.
    Require,
    /// TLS always, certificate chain and host name verified.
    VerifyFull,
}

impl SslMode {
    pub fn parse(mode: &str) -> Result<SslMode> {
        match mode {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" | "verify-ca" => Err(config(format!(
                "sslmode={mode} is not supported by the postgres backend; \
                 use disable, prefer, require or verify-full"
            ))),
            _ => Err(config(
                "sslmode must be one of disable, prefer, require, verify-full".to_owned(),
            )),
        }
    }
}

pub(crate) fn config(message: String) -> Error {
    Error::new(ErrorCode::ConfigError, message).with_context("driver", crate::DRIVER)
}

/// Everything needed to open the pool.
#[derive(Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub application_name: Option<String>,
    /// Server settings sent at start-up (libpq `options`, e.g. `-c search_path=s`).
    pub server_options: Option<String>,
    pub ssl_mode: SslMode,
    /// PEM file of trusted CA certificates (`sslrootcert`).
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

impl Options {
    /// The tokio-postgres configuration.
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .connect_timeout(self.pool.connect_timeout)
            .ssl_mode(match self.ssl_mode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        if let Some(password) = &self.password {
            cfg.password(password);
        }
        if let Some(dbname) = &self.dbname {
            cfg.dbname(dbname);
        }
        if let Some(name) = &self.application_name {
            cfg.application_name(name);
        }
        if let Some(options) = &self.server_options {
            cfg.options(options);
        }
        cfg
    }

    /// The rustls configuration (ring) for `ssl_mode` and `ca_file`.
    pub fn tls(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config(format!("TLS set-up failed: {e}")))?;
        let verified = self.ssl_mode == SslMode::VerifyFull || self.ca_file.is_some();
        if !verified {
            // libpq's prefer/require without a root certificate: encrypted,
            // the server's identity not checked.
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                .with_no_client_auth());
        }
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|_| {
                        config(format!(
                            "sslrootcert '{}' is not a readable PEM certificate file",
                            path.display()
                        ))
                    })?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(config(format!(
                        "sslrootcert '{}' holds no usable certificate",
                        path.display()
                    )));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    }
}

/// Accepts any server certificate but still checks the handshake
/// signatures (sslmode=prefer/require without a root certificate).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn sslmodes_parse_or_are_rejected() {
        assert_eq!(SslMode::parse("require").unwrap(), SslMode::Require);
        assert_eq!(SslMode::parse("verify-full").unwrap(), SslMode::VerifyFull);
        let err = SslMode::parse("verify-ca").unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigError);
        assert_eq!(
            err.message,
            "sslmode=verify-ca is not supported by the postgres backend; \
             use disable, prefer, require or verify-full"
        );
        assert_eq!(
            SslMode::parse("bogus").unwrap_err().message,
            "sslmode must be one of disable, prefer, require, verify-full"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let options = Options {
            host: "h".into(),
            port: 5432,
            user: "u".into(),
            password: Some("hunter2".into()),
            dbname: None,
            application_name: None,
            server_options: None,
            ssl_mode: SslMode::Disable,
            ca_file: None,
            pool: PoolSettings {
                min_size: 1,
                max_size: 4,
                acquire_timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
                max_lifetime: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(1),
            },
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password: Some(\"***\")"), "{shown}");
    }

    #[test]
    fn a_missing_root_certificate_is_a_config_error() {
        let options = Options {
            host: "h".into(),
            port: 5432,
            user: "u".into(),
            password: None,
            dbname: None,
            application_name: None,
            server_options: None,
            ssl_mode: SslMode::VerifyFull,
            ca_file: Some("/nonexistent/ca.pem".into()),
            pool: PoolSettings {
                min_size: 1,
                max_size: 1,
                acquire_timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
                max_lifetime: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(1),
            },
        };
        let err = options.tls().unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigError);
        assert_eq!(
            err.message,
            "sslrootcert '/nonexistent/ca.pem' is not a readable PEM certificate file"
        );
    }
}
