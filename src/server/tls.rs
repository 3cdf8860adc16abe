//! The rustls server configuration and the first-start self-signed certificate.
//!
//! The certificate is RSA-2048, like the one xapi's `gencert` makes, not ECDSA: the Go SDK
//! limits TLS 1.2 to ECDHE-RSA-AES-GCM suites, so an ECDSA certificate would only work with it
//! over TLS 1.3. rcgen can generate RSA keys only with the aws-lc-rs backend, which is also
//! rustls' default provider.

use std::fs;
use std::io::{self, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::{ServerError, TlsSource};

/// Certificate file name inside a [`TlsSource::SelfSigned`] directory.
pub const CERT_FILE_NAME: &str = "server.crt";
/// Private key file name inside a [`TlsSource::SelfSigned`] directory (mode 0600).
pub const KEY_FILE_NAME: &str = "server.key";

/// Years a generated certificate stays valid, as xapi's `gencert` does.
const CERT_VALIDITY_YEARS: i32 = 10;

/// Builds the acceptor for the HTTPS listener. Blocking: it reads files and may generate a key.
pub(super) fn acceptor(source: &TlsSource) -> Result<TlsAcceptor, ServerError> {
    let (chain, key) = match source {
        TlsSource::Files { cert, key } => (load_chain(cert)?, load_key(key)?),
        TlsSource::SelfSigned { dir } => load_or_generate(dir)?,
    };
    if let Some(fingerprint) = chain.first().and_then(|leaf| fingerprint_sha256(leaf)) {
        tracing::info!(%fingerprint, "HTTPS certificate SHA-256 fingerprint");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_error)?;
    // Only HTTP/1.1 is served; a client offering only h2 is refused during the handshake.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The SHA-256 fingerprint of `dir/server.crt`, as colon-separated upper-case hex (the form
/// `openssl x509 -fingerprint -sha256` and xapi print), or `None` if there is no readable
/// certificate there.
pub fn certificate_fingerprint_sha256(dir: &Path) -> Option<String> {
    let chain = load_chain(&dir.join(CERT_FILE_NAME)).ok()?;
    fingerprint_sha256(chain.first()?)
}

fn fingerprint_sha256(cert: &CertificateDer<'_>) -> Option<String> {
    // rustls exposes its SHA-256 only through a cipher suite; any SHA-256 suite will do.
    let suite = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13()?;
    let hash = suite.common.hash_provider;
    debug_assert_eq!(hash.algorithm(), rustls::crypto::hash::HashAlgorithm::SHA256);
    let digest = hash.hash(cert.as_ref());
    let hex: Vec<String> = digest.as_ref().iter().map(|byte| format!("{byte:02X}")).collect();
    Some(hex.join(":"))
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Loads `dir/server.{crt,key}`, generating both first if neither exists. Exactly one of the
/// two existing is an error, so that a lone key is never overwritten.
fn load_or_generate(dir: &Path) -> Result<Identity, ServerError> {
    let cert_path = dir.join(CERT_FILE_NAME);
    let key_path = dir.join(KEY_FILE_NAME);
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => {
            tracing::info!(cert = %cert_path.display(), "loading HTTPS certificate");
        }
        (false, false) => {
            generate(dir)?;
            tracing::info!(cert = %cert_path.display(), "generated self-signed HTTPS certificate");
        }
        (true, false) | (false, true) => {
            return Err(ServerError::Tls(format!(
                "{} must hold both {CERT_FILE_NAME} and {KEY_FILE_NAME}, or neither to generate them",
                dir.display()
            )));
        }
    }
    Ok((load_chain(&cert_path)?, load_key(&key_path)?))
}

/// Writes a fresh self-signed RSA-2048 certificate and key into `dir`. Each file is written
/// under a temporary name and renamed, so a crash never leaves a truncated file behind.
fn generate(dir: &Path) -> Result<(), ServerError> {
    let host = machine_hostname();
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if let Some(host) = &host {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(tls_error)?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, host.as_deref().unwrap_or("localhost"));
    params.distinguished_name = subject;
    // Starting a year early tolerates a client clock that lags ours.
    let year = current_year();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + CERT_VALIDITY_YEARS, 1, 1);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(tls_error)?;
    let cert = params.self_signed(&key).map_err(tls_error)?;

    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    write_replacing(&dir.join(KEY_FILE_NAME), key.serialize_pem().as_bytes(), 0o600)?;
    // Only the server reads it from here; clients get it in the handshake.
    write_replacing(&dir.join(CERT_FILE_NAME), cert.pem().as_bytes(), 0o600)?;
    Ok(())
}

fn write_replacing(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    match fs::remove_file(&temporary) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let file = fs::File::open(path).map_err(|e| file_error(path, e))?;
    let chain = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if chain.is_empty() {
        return Err(ServerError::Tls(format!("{}: no PEM certificate found", path.display())));
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    let file = fs::File::open(path).map_err(|e| file_error(path, e))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| file_error(path, e))?
        .ok_or_else(|| ServerError::Tls(format!("{}: no PEM private key found", path.display())))
}

/// The kernel's host name, if it can be used as a DNS name in the certificate.
fn machine_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
}

/// The current calendar year, give or take a day around New Year (the callers leave margin).
fn current_year() -> i32 {
    const SECONDS_PER_YEAR: u64 = 31_556_952; // 365.2425 days
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    1970 + i32::try_from(seconds / SECONDS_PER_YEAR).unwrap_or(0)
}

fn file_error(path: &Path, error: io::Error) -> ServerError {
    ServerError::Tls(format!("{}: {error}", path.display()))
}

fn tls_error(error: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(error.to_string())
}
