//! Hostile `.sign` files for tests and benchmarks (TEST ONLY keys, see [`crate::keys`]).
//!
//! [`looping_sign_file`] builds the worst case of the `.sign` certificate path search:
//! every line is a detached CMS signature whose signer (a leaf) was issued by
//! `CN=Loop CA`, and the line also embeds [`LOOP_CAS`] CA certificates that all have
//! that same subject and issuer and the same key. Each of them therefore "issues" every
//! other one, so a depth-first path search that is not budgeted tries every ordering of
//! up to `MAX_CHAIN_DEPTH` of them (15·14·…·10 ≈ 3.6 million RSA checks per line)
//! before giving up, since `CN=Loop CA` is not a trusted root.
//!
//! The same certificates chain correctly when one of them is trusted
//! ([`LoopingSign::ca_der`]), which proves the generated CMS is well-formed.

use base64::Engine as _;
use der::asn1::{BitString, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

use crate::keys::{TEST_CDIFF_KEY_PEM, TEST_INFO_KEY_PEM};

/// CA certificates embedded in every line (with the leaf: the 16 a line may embed).
pub const LOOP_CAS: usize = 15;

/// The content every line signs.
pub const LOOP_CONTENT: &[u8] = b"content signed by the looping-certificates .sign file\n";

/// When the certificates are valid: 2020-01-01 .. 2040-01-01 (UNIX seconds).
pub const LOOP_VALIDITY: (u64, u64) = (1_577_836_800, 2_208_988_800);

const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// A generated looping `.sign` file.
#[derive(Debug, Clone)]
pub struct LoopingSign {
    /// The whole `.sign` file (`#clamsign-1.0` and the signature lines).
    pub file: Vec<u8>,
    /// DER of one of the `CN=Loop CA` certificates: trusting it makes every line verify.
    pub ca_der: Vec<u8>,
}

/// Why a looping `.sign` file could not be made (a bug in this generator).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the looping .sign file: {0}")]
pub struct SignBuildError(String);

fn err(e: impl std::fmt::Display) -> SignBuildError {
    SignBuildError(e.to_string())
}

fn sha256_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: OID_SHA256_WITH_RSA,
        parameters: Some(Any::null()),
    }
}

fn rsa_sign(key: &RsaPrivateKey, data: &[u8]) -> Result<Vec<u8>, SignBuildError> {
    key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data))
        .map_err(err)
}

fn spki(key: &RsaPublicKey) -> Result<SubjectPublicKeyInfoOwned, SignBuildError> {
    let der = key.to_public_key_der().map_err(err)?;
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(err)
}

fn time(secs: u64) -> Result<Time, SignBuildError> {
    Ok(Time::UtcTime(
        UtcTime::from_unix_duration(Duration::from_secs(secs)).map_err(err)?,
    ))
}

/// A certificate `subject` (issued by `issuer`, signed with `signer`) for `public`.
fn certificate(
    serial: u8,
    issuer: &Name,
    subject: &Name,
    public: &RsaPublicKey,
    signer: &RsaPrivateKey,
    ca: bool,
) -> Result<Certificate, SignBuildError> {
    let extensions = if ca {
        let bc = BasicConstraints {
            ca: true,
            path_len_constraint: None,
        };
        Some(vec![Extension {
            extn_id: OID_BASIC_CONSTRAINTS,
            critical: true,
            extn_value: OctetString::new(bc.to_der().map_err(err)?).map_err(err)?,
        }])
    } else {
        None
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[serial]).map_err(err)?,
        signature: sha256_rsa(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: time(LOOP_VALIDITY.0)?,
            not_after: time(LOOP_VALIDITY.1)?,
        },
        subject: subject.clone(),
        subject_public_key_info: spki(public)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions,
    };
    let signature = rsa_sign(signer, &tbs.to_der().map_err(err)?)?;
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: sha256_rsa(),
        signature: BitString::from_bytes(&signature).map_err(err)?,
    })
}

/// One detached CMS `SignedData` (DER) over [`LOOP_CONTENT`]: the leaf signs, the
/// leaf and the looping CAs are embedded.
fn cms(
    leaf: &Certificate,
    leaf_key: &RsaPrivateKey,
    cas: &[Certificate],
) -> Result<Vec<u8>, SignBuildError> {
    use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
    use cms::content_info::{CmsVersion, ContentInfo};
    use cms::signed_data::{
        CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo,
        SignerInfos,
    };
    let digest_alg = AlgorithmIdentifierOwned {
        oid: OID_SHA256,
        parameters: None,
    };
    // Without signed attributes the RSA signature covers the content digest itself.
    let signature = rsa_sign(leaf_key, LOOP_CONTENT)?;
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.tbs_certificate.issuer.clone(),
            serial_number: leaf.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: digest_alg.clone(),
        signed_attrs: None,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: OID_RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(signature).map_err(err)?,
        unsigned_attrs: None,
    };
    let mut certs = vec![CertificateChoices::Certificate(leaf.clone())];
    certs.extend(cas.iter().cloned().map(CertificateChoices::Certificate));
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![digest_alg]).map_err(err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: OID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(certs).map_err(err)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(err)?),
    };
    let info = ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(err)?,
    };
    info.to_der().map_err(err)
}

/// A `.sign` file of `lines` identical looping signature lines (see the module docs).
/// Three lines stay under the 64 KiB a mirror downloads for a `.sign` file.
pub fn looping_sign_file(lines: usize) -> Result<LoopingSign, SignBuildError> {
    let ca_key = RsaPrivateKey::from_pkcs8_pem(TEST_CDIFF_KEY_PEM).map_err(err)?;
    let leaf_key = RsaPrivateKey::from_pkcs8_pem(TEST_INFO_KEY_PEM).map_err(err)?;
    let loop_name = Name::from_str("CN=Loop CA,O=testkit").map_err(err)?;
    let leaf_name = Name::from_str("CN=Loop leaf,O=testkit").map_err(err)?;
    let ca_public = ca_key.to_public_key();
    let cas = (1..=LOOP_CAS)
        .map(|i| {
            let serial = u8::try_from(i).map_err(err)?;
            certificate(serial, &loop_name, &loop_name, &ca_public, &ca_key, true)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = certificate(
        100,
        &loop_name,
        &leaf_name,
        &leaf_key.to_public_key(),
        &ca_key,
        false,
    )?;
    let line = base64::engine::general_purpose::STANDARD.encode(cms(&leaf, &leaf_key, &cas)?);
    let mut file = b"#clamsign-1.0\n".to_vec();
    for _ in 0..lines {
        file.extend_from_slice(b"230::pkcs7-pem:");
        file.extend_from_slice(line.as_bytes());
        file.push(b'\n');
    }
    let ca_der = cas
        .first()
        .ok_or_else(|| err("no CA"))?
        .to_der()
        .map_err(err)?;
    Ok(LoopingSign { file, ca_der })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;
    use cvd_format::sign::{SignFile, SignRoots, SignVerifier};

    #[test]
    fn the_looping_file_fits_the_download_limit_and_verifies_when_its_ca_is_trusted() {
        let looping = looping_sign_file(3).unwrap();
        assert!(looping.file.len() > 40_000 && looping.file.len() < 64 * 1024);
        let file = SignFile::parse(&looping.file).unwrap();
        assert_eq!(file.entries().len(), 3);
        let mut roots = SignRoots::empty();
        roots.add_der(&looping.ca_der).unwrap();
        let at = time::OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap();
        let report = SignVerifier::new()
            .roots(roots)
            .at(at)
            .verify(&file, LOOP_CONTENT)
            .unwrap();
        assert!(report.chain[0].contains("Loop leaf"), "{:?}", report.chain);
        // Other content does not verify.
        let mut roots = SignRoots::empty();
        roots.add_der(&looping.ca_der).unwrap();
        assert!(
            SignVerifier::new()
                .roots(roots)
                .at(at)
                .verify(&file, &b"other"[..])
                .is_err()
        );
    }
}
