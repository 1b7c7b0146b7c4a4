//! Private certificate authorities for the TLS tests: a CA, server certificates it
//! issues, a second unrelated CA (the "wrong CA" case) and a certificate for the wrong
//! name, written as PEM files into a directory so that `--ca-cert FILE`, SeaweedFS's
//! `-s3.cert.file` and [`crate::http::TestServer::start_tls`] can use them.
//!
//! The certificates are made in-process with `rcgen` on `ring` (already in the tree
//! through `rustls`): ECDSA P-256 keys cost microseconds, so every test makes its own
//! authority, and the TLS tests need no external program (they run outside CI too,
//! unlike a generator driving the `openssl` command). Validity is rcgen's default
//! (1975 to 4096), so no clock question arises.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("testkit-tls-doc-{}", std::process::id()));
//! let pki = testkit::tls::TestPki::new(&dir).unwrap();
//! assert!(std::fs::read_to_string(&pki.ca_file).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
//! assert_ne!(std::fs::read(&pki.ca_file).unwrap(), std::fs::read(&pki.other_ca_file).unwrap());
//! assert!(pki.server.names().iter().any(|n| n == "localhost"));
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why a certificate or a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen refused the parameters or could not sign.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("building the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Writing a PEM file failed.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The names a server certificate of [`TestPki`] is valid for: the loopback name and
/// both loopback addresses.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The one name the wrong-name certificate of [`TestPki`] is valid for (a reserved
/// `.invalid` name, so it can never be a real host).
pub const WRONG_NAME: &str = "wrong-name.invalid";

/// A private certificate authority: a self-signed CA certificate and its key.
pub struct Ca {
    name: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("name", &self.name).finish()
    }
}

impl Ca {
    /// A new CA whose certificate's subject is `CN=<name>`, with a fresh P-256 key.
    ///
    /// # Errors
    ///
    /// When rcgen cannot generate the key or sign.
    pub fn new(name: &str) -> Result<Ca, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "testkit private CA (TEST ONLY)");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            name: name.to_owned(),
            cert,
            key,
        })
    }

    /// The CA's common name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A rustls client configuration trusting only this CA (ring provider).
    ///
    /// # Errors
    ///
    /// When rustls refuses the certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        client_config(&self.cert_der())
    }

    /// A server certificate for `names` (DNS names or IP addresses, each a
    /// subjectAltName; the first is also the common name), issued by this CA, with the
    /// `serverAuth` extended key usage and a fresh P-256 key.
    ///
    /// # Errors
    ///
    /// When a name is not a valid DNS name or address, or signing fails.
    pub fn issue(&self, names: &[&str]) -> Result<ServerCert, TlsError> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(ServerCert {
            names,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            ca_pem: self.cert_pem(),
            ca_der: self.cert_der(),
        })
    }
}

/// A server certificate and its private key (TEST ONLY).
#[derive(Clone)]
pub struct ServerCert {
    names: Vec<String>,
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
    ca_pem: String,
    ca_der: Vec<u8>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("names", &self.names)
            .finish()
    }
}

impl ServerCert {
    /// The names it is valid for.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate followed by its issuing CA's, PEM (a full chain, as servers
    /// that want one are given).
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.ca_pem)
    }

    /// Writes `DIR/STEM.pem` (the certificate) and `DIR/STEM.key` (the key) and
    /// returns their paths.
    ///
    /// # Errors
    ///
    /// When a file cannot be written.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), TlsError> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        write(&cert, self.cert_pem.as_bytes())?;
        write(&key, self.key_pem.as_bytes())?;
        Ok((cert, key))
    }

    /// A rustls client configuration trusting only the CA that issued this
    /// certificate.
    ///
    /// # Errors
    ///
    /// When rustls refuses the CA certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        client_config(&self.ca_der)
    }

    /// A rustls server configuration presenting this certificate (ring provider, the
    /// safe default protocol versions, no client authentication).
    ///
    /// # Errors
    ///
    /// When rustls refuses the certificate or key.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )?;
        Ok(Arc::new(config))
    }
}

fn client_config(ca_der: &[u8]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    std::fs::write(path, bytes).map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Everything the TLS tests need, written into one directory:
///
/// | file | what |
/// |---|---|
/// | `ca.pem` | the private CA (what `--ca-cert` is given) |
/// | `server.pem`, `server.key` | a certificate for [`LOOPBACK_NAMES`], issued by the CA |
/// | `other-ca.pem` | a second, unrelated CA (trusting it must not help) |
/// | `wrong-name.pem`, `wrong-name.key` | a certificate for [`WRONG_NAME`] only, issued by the CA |
#[derive(Debug)]
pub struct TestPki {
    /// The private CA.
    pub ca: Ca,
    /// The unrelated CA.
    pub other_ca: Ca,
    /// The server certificate for the loopback names.
    pub server: ServerCert,
    /// The certificate for [`WRONG_NAME`], issued by [`TestPki::ca`].
    pub wrong_name: ServerCert,
    /// `DIR/ca.pem`.
    pub ca_file: PathBuf,
    /// `DIR/other-ca.pem`.
    pub other_ca_file: PathBuf,
    /// `DIR/server.pem`.
    pub server_cert_file: PathBuf,
    /// `DIR/server.key`.
    pub server_key_file: PathBuf,
    /// `DIR/wrong-name.pem`.
    pub wrong_name_cert_file: PathBuf,
    /// `DIR/wrong-name.key`.
    pub wrong_name_key_file: PathBuf,
}

impl TestPki {
    /// Makes both CAs and both certificates and writes them into `dir` (created when
    /// missing).
    ///
    /// # Errors
    ///
    /// When generating or writing fails.
    pub fn new(dir: &Path) -> Result<TestPki, TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca = Ca::new("testkit private CA")?;
        let other_ca = Ca::new("testkit unrelated CA")?;
        let server = ca.issue(&LOOPBACK_NAMES)?;
        let wrong_name = ca.issue(&[WRONG_NAME])?;
        let ca_file = dir.join("ca.pem");
        write(&ca_file, ca.cert_pem().as_bytes())?;
        let other_ca_file = dir.join("other-ca.pem");
        write(&other_ca_file, other_ca.cert_pem().as_bytes())?;
        let (server_cert_file, server_key_file) = server.write(dir, "server")?;
        let (wrong_name_cert_file, wrong_name_key_file) = wrong_name.write(dir, "wrong-name")?;
        Ok(TestPki {
            ca,
            other_ca,
            server,
            wrong_name,
            ca_file,
            other_ca_file,
            server_cert_file,
            server_key_file,
            wrong_name_cert_file,
            wrong_name_key_file,
        })
    }
}
