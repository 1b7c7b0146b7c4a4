//! A small certificate kit for tests and fuzz targets of the `.sign` path search:
//! RSA keys, X.509 v3 certificates from a description, and detached CMS `SignedData`
//! lines, all built with the RustCrypto crates the verifier already uses (no openssl),
//! so that generated inputs reach the path builder (random bytes never do).
//!
//! Not an API: compiled only with the `fuzzing` feature.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{BitString, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use rsa::pkcs8::EncodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};

const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_EXT_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// Unix time 2025-01-01T00:00:00Z: every generated certificate's default start.
pub const NOT_BEFORE: i64 = 1_735_689_600;
/// Unix time 2035-01-01T00:00:00Z: every generated certificate's default end.
pub const NOT_AFTER: i64 = 2_051_222_400;
/// A time inside the default validity, for [`crate::sign::SignVerifier::at`].
pub const VERIFY_AT: i64 = 1_767_225_600; // 2026-01-01

/// What a generated certificate says and who signs it. Keys are indices into the
/// [`Kit`]'s pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertSpec {
    /// Serial number (make it unique per issuer).
    pub serial: u32,
    /// Subject common name.
    pub subject: String,
    /// Issuer common name.
    pub issuer: String,
    /// The subject's key.
    pub key: usize,
    /// The key that signs the certificate.
    pub issuer_key: usize,
    /// `basicConstraints cA`.
    pub ca: bool,
    /// `basicConstraints pathLenConstraint`.
    pub path_len: Option<u8>,
    /// Validity start and end, Unix seconds.
    pub validity: (i64, i64),
}

impl CertSpec {
    /// A CA certificate valid from [`NOT_BEFORE`] to [`NOT_AFTER`].
    pub fn ca(serial: u32, subject: &str, key: usize, issuer: &str, issuer_key: usize) -> Self {
        CertSpec {
            serial,
            subject: subject.into(),
            issuer: issuer.into(),
            key,
            issuer_key,
            ca: true,
            path_len: None,
            validity: (NOT_BEFORE, NOT_AFTER),
        }
    }

    /// An end-entity (signer) certificate.
    pub fn leaf(serial: u32, subject: &str, key: usize, issuer: &str, issuer_key: usize) -> Self {
        CertSpec {
            ca: false,
            ..CertSpec::ca(serial, subject, key, issuer, issuer_key)
        }
    }
}

/// A pool of RSA keys and the builders that use them.
#[derive(Debug, Clone)]
pub struct Kit {
    keys: Vec<RsaPrivateKey>,
}

/// The kit's one failure type: generation is not expected to fail.
pub type KitResult<T> = Result<T, String>;

fn utc(secs: i64) -> KitResult<Time> {
    let secs = u64::try_from(secs).map_err(|e| e.to_string())?;
    UtcTime::from_unix_duration(Duration::from_secs(secs))
        .map(Time::UtcTime)
        .map_err(|e| e.to_string())
}

fn sha256_with_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: OID_SHA256_WITH_RSA,
        parameters: Some(Any::null()),
    }
}

fn name(cn: &str) -> KitResult<Name> {
    Name::from_str(&format!("CN={cn}")).map_err(|e| e.to_string())
}

fn der<T: Encode>(value: &T) -> KitResult<Vec<u8>> {
    value.to_der().map_err(|e| e.to_string())
}

impl Kit {
    /// `count` fresh RSA keys of `bits` bits (1024 is quick enough for fuzzing).
    pub fn generate(count: usize, bits: usize) -> KitResult<Self> {
        let mut rng = rsa::rand_core::OsRng;
        let keys = (0..count)
            .map(|_| RsaPrivateKey::new(&mut rng, bits).map_err(|e| e.to_string()))
            .collect::<KitResult<Vec<_>>>()?;
        Ok(Kit { keys })
    }

    /// Number of keys in the pool.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn key(&self, index: usize) -> KitResult<&RsaPrivateKey> {
        self.keys
            .get(index)
            .ok_or_else(|| format!("no key {index} in a pool of {}", self.keys.len()))
    }

    fn spki(&self, index: usize) -> KitResult<SubjectPublicKeyInfoOwned> {
        let public = self.key(index)?.to_public_key();
        let doc = public.to_public_key_der().map_err(|e| e.to_string())?;
        SubjectPublicKeyInfoOwned::from_der(doc.as_bytes()).map_err(|e| e.to_string())
    }

    fn sign_sha256(&self, index: usize, data: &[u8]) -> KitResult<Vec<u8>> {
        self.key(index)?
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data))
            .map_err(|e| e.to_string())
    }

    /// An X.509 v3 certificate as `spec` describes it.
    pub fn cert(&self, spec: &CertSpec) -> KitResult<Certificate> {
        let mut usage = KeyUsages::DigitalSignature.into();
        if spec.ca {
            usage = KeyUsages::KeyCertSign | KeyUsages::CRLSign;
        }
        let extensions = vec![
            Extension {
                extn_id: OID_EXT_BASIC_CONSTRAINTS,
                critical: true,
                extn_value: OctetString::new(der(&BasicConstraints {
                    ca: spec.ca,
                    path_len_constraint: spec.path_len,
                })?)
                .map_err(|e| e.to_string())?,
            },
            Extension {
                extn_id: OID_EXT_KEY_USAGE,
                critical: true,
                extn_value: OctetString::new(der(&KeyUsage(usage))?).map_err(|e| e.to_string())?,
            },
        ];
        let tbs = TbsCertificate {
            version: x509_cert::Version::V3,
            serial_number: SerialNumber::new(&spec.serial.to_be_bytes())
                .map_err(|e| e.to_string())?,
            signature: sha256_with_rsa(),
            issuer: name(&spec.issuer)?,
            validity: Validity {
                not_before: utc(spec.validity.0)?,
                not_after: utc(spec.validity.1)?,
            },
            subject: name(&spec.subject)?,
            subject_public_key_info: self.spki(spec.key)?,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        let signature = self.sign_sha256(spec.issuer_key, &der(&tbs)?)?;
        Ok(Certificate {
            tbs_certificate: tbs,
            signature_algorithm: sha256_with_rsa(),
            signature: BitString::from_bytes(&signature).map_err(|e| e.to_string())?,
        })
    }

    /// The DER of a detached CMS `SignedData` over `content`, signed (SHA-256, with
    /// `contentType` and `messageDigest` attributes) by `signer_key` and identified as
    /// `signer`, embedding `embedded` (which should include the signer's certificate).
    pub fn sign_cms(
        &self,
        content: &[u8],
        signer: &Certificate,
        signer_key: usize,
        embedded: &[Certificate],
    ) -> KitResult<Vec<u8>> {
        let any = |v: &dyn EncodeDyn| v.any();
        let attrs = SetOfVec::try_from(vec![
            Attribute {
                oid: OID_CONTENT_TYPE,
                values: SetOfVec::try_from(vec![any(&OID_DATA)?]).map_err(|e| e.to_string())?,
            },
            Attribute {
                oid: OID_MESSAGE_DIGEST,
                values: SetOfVec::try_from(vec![any(&OctetString::new(
                    Sha256::digest(content).to_vec(),
                )
                .map_err(|e| e.to_string())?)?])
                .map_err(|e| e.to_string())?,
            },
        ])
        .map_err(|e| e.to_string())?;
        let signature = self.sign_sha256(signer_key, &der(&attrs)?)?;
        let sha256 = AlgorithmIdentifierOwned {
            oid: OID_SHA256,
            parameters: None,
        };
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: signer.tbs_certificate.issuer.clone(),
                serial_number: signer.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: sha256.clone(),
            signed_attrs: Some(attrs),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: OID_RSA_ENCRYPTION,
                parameters: Some(Any::null()),
            },
            signature: OctetString::new(signature).map_err(|e| e.to_string())?,
            unsigned_attrs: None,
        };
        let certs = embedded
            .iter()
            .cloned()
            .map(CertificateChoices::Certificate)
            .collect::<Vec<_>>();
        let signed = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![sha256]).map_err(|e| e.to_string())?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: OID_DATA,
                econtent: None,
            },
            certificates: Some(CertificateSet(
                SetOfVec::try_from(certs).map_err(|e| e.to_string())?,
            )),
            crls: None,
            signer_infos: SignerInfos(
                SetOfVec::try_from(vec![signer_info]).map_err(|e| e.to_string())?,
            ),
        };
        der(&ContentInfo {
            content_type: OID_SIGNED_DATA,
            content: Any::encode_from(&signed).map_err(|e| e.to_string())?,
        })
    }
}

impl Kit {
    /// The issue-21 attack: `copies` CA certificates `CN=Loop CA` sharing key `ca_key`
    /// (each validly "issues" every other one) and a leaf `CN=Loop signer` (key
    /// `leaf_key`) issued by them. Returns the leaf and the CAs.
    pub fn looping_chain(
        &self,
        copies: u32,
        ca_key: usize,
        leaf_key: usize,
    ) -> KitResult<(Certificate, Vec<Certificate>)> {
        let cas = (0..copies)
            .map(|i| self.cert(&CertSpec::ca(10 + i, "Loop CA", ca_key, "Loop CA", ca_key)))
            .collect::<KitResult<Vec<_>>>()?;
        let leaf = self.cert(&CertSpec::leaf(
            100,
            "Loop signer",
            leaf_key,
            "Loop CA",
            ca_key,
        ))?;
        Ok((leaf, cas))
    }

    /// A `.sign` file over `content` of `lines` identical lines, each signed by the
    /// leaf of [`Kit::looping_chain`] and embedding it and its `copies` CAs.
    pub fn looping_sign_file(
        &self,
        content: &[u8],
        copies: u32,
        lines: usize,
        ca_key: usize,
        leaf_key: usize,
    ) -> KitResult<Vec<u8>> {
        let (leaf, cas) = self.looping_chain(copies, ca_key, leaf_key)?;
        let mut embedded = vec![leaf.clone()];
        embedded.extend(cas);
        let der = self.sign_cms(content, &leaf, leaf_key, &embedded)?;
        Ok(sign_file(&vec![der; lines]))
    }
}

/// `Any::encode_from` for the two attribute value types.
trait EncodeDyn {
    fn any(&self) -> KitResult<Any>;
}

impl EncodeDyn for ObjectIdentifier {
    fn any(&self) -> KitResult<Any> {
        Any::encode_from(self).map_err(|e| e.to_string())
    }
}

impl EncodeDyn for OctetString {
    fn any(&self) -> KitResult<Any> {
        Any::encode_from(self).map_err(|e| e.to_string())
    }
}

/// The text of a `.sign` file with one `0::pkcs7-pem:` line per CMS DER.
pub fn sign_file(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut text = String::from("#clamsign-1.0\n");
    for der in lines {
        text.push_str("0::pkcs7-pem:");
        text.push_str(&base64::engine::general_purpose::STANDARD.encode(der));
        text.push('\n');
    }
    text.into_bytes()
}

/// The PEM of a certificate (for [`crate::sign::SignRoots::from_pem`]).
pub fn pem(cert: &Certificate) -> KitResult<Vec<u8>> {
    let der = der(cert)?;
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der)
        .map(String::into_bytes)
        .map_err(|e| e.to_string())
}
