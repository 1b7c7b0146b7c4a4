//! Trust anchors and signing keys.
//!
//! Keys are values: [`KeySet::official`] returns the three official ClamAV keys (the
//! default trust set), and callers with their own publishing keys build a [`KeySet`]
//! from [`PublicKey`]s. Nothing in this crate consults a global key.

use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};

use crate::error::{Error, Result};

/// Official CVD (legacy signature) key: modulus, decimal.
const OFFICIAL_CVD_N: &str = "118640995551645342603070001658453189751527774412027743746599405743243142607464144767361060640655844749760788890022283424922762488917565551002467771109669598189410434699034532232228621591089508178591428456220796841621637175567590476666928698770143328137383952820383197532047771780196576957695822641224262693037";
/// Official CVD key: public exponent.
const OFFICIAL_CVD_E: &str = "100001027";
/// Official INFO (versig2 `.info` DSIG) key: modulus, decimal.
const OFFICIAL_INFO_N: &str = "11088894983048545473659556106627194923928941791795047620591658697413581043322715912172496806525381055880964520618400224333320534660299233983755341740679502866829909679955734391392668378361221524205396631090105151641270857277080310734320951653700508941717419168723942507890702904702707587451621691050754307850383399865346487203798464178537392211402786481359824461197231102895415093770394216666324484593935762408468516826633192140826667923494822045805347809932848454845886971706424360558667862775876072059437703365380209101697738577515476935085469455279994113145977994084618328482151013142393373316337519977244732747977";
/// Official INFO key: public exponent.
const OFFICIAL_INFO_E: &str = "100002049";
/// Official CDIFF key: modulus, decimal.
const OFFICIAL_CDIFF_N: &str = "14783905874077467090262228516557917570254599638376203532031989214105552847269687489771975792123442185817287694951949800908791527542017115600501303394778618535864845235700041590056318230102449612217458549016089313306591388590790796515819654102320725712300822356348724011232654837503241736177907784198700834440681124727060540035754699658105895050096576226753008596881698828185652424901921668758326578462003247906470982092298106789657211905488986281078346361469524484829559560886227198091995498440676639639830463593211386055065360288422394053998134458623712540683294034953818412458362198117811990006021989844180721010947";
/// Official CDIFF key: public exponent.
const OFFICIAL_CDIFF_E: &str = "100002053";

/// An RSA public key used to verify a ClamAV signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    inner: RsaPublicKey,
}

impl PublicKey {
    /// Builds a key from its modulus `n` and public exponent `e`, both in decimal (the
    /// form ClamAV's sources and the spec use).
    ///
    /// ```
    /// let key = cvd_format::PublicKey::from_decimal("3233", "17")?;
    /// assert_eq!(key.bits(), 12);
    /// # Ok::<(), cvd_format::Error>(())
    /// ```
    pub fn from_decimal(n: &str, e: &str) -> Result<Self> {
        let parse = |what: &str, s: &str| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::Key {
                    reason: format!("{what} is not a decimal integer"),
                });
            }
            BigUint::parse_bytes(s.as_bytes(), 10).ok_or_else(|| Error::Key {
                reason: format!("{what} is not a decimal integer"),
            })
        };
        let n = parse("modulus", n)?;
        let e = parse("exponent", e)?;
        let inner = RsaPublicKey::new(n, e).map_err(|err| Error::Key {
            reason: err.to_string(),
        })?;
        Ok(Self { inner })
    }

    /// Reads an SPKI (`-----BEGIN PUBLIC KEY-----`) or PKCS#1
    /// (`-----BEGIN RSA PUBLIC KEY-----`) PEM document.
    pub fn from_public_key_pem(pem: &str) -> Result<Self> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::pkcs8::DecodePublicKey;
        let inner = RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|err| Error::Key {
                reason: format!("not an RSA public key PEM: {err}"),
            })?;
        Ok(Self { inner })
    }

    /// A built-in key from decimal constants, without a fallible path: the constants are
    /// valid (the `official_keys_parse` test checks them with [`PublicKey::from_decimal`]),
    /// and were one ever mangled the key would be zero and verify nothing (fail closed)
    /// rather than panic.
    fn official(n: &str, e: &str) -> Self {
        let n = BigUint::parse_bytes(n.as_bytes(), 10).unwrap_or_default();
        let e = BigUint::parse_bytes(e.as_bytes(), 10).unwrap_or_default();
        Self {
            inner: RsaPublicKey::new_unchecked(n, e),
        }
    }

    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.inner.n().bits()
    }

    /// Size of the modulus in bytes (the length of a PSS signature).
    pub fn size(&self) -> usize {
        self.inner.size()
    }

    pub(crate) fn rsa(&self) -> &RsaPublicKey {
        &self.inner
    }
}

/// The trust anchors used to verify containers and patches: one key per signature kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySet {
    /// Verifies the legacy RSA signature in a `.cvd` header (MD5 of the body).
    pub cvd: PublicKey,
    /// Verifies the versig2 `DSIG` of `<name>.info`.
    pub info: PublicKey,
    /// Verifies the versig2 signature of `.cdiff` patches (used by the `cdiff` crate).
    pub cdiff: PublicKey,
}

impl KeySet {
    /// The official ClamAV keys (spec §1 and §2): the default trust set.
    pub fn official() -> Self {
        Self {
            cvd: PublicKey::official(OFFICIAL_CVD_N, OFFICIAL_CVD_E),
            info: PublicKey::official(OFFICIAL_INFO_N, OFFICIAL_INFO_E),
            cdiff: PublicKey::official(OFFICIAL_CDIFF_N, OFFICIAL_CDIFF_E),
        }
    }

    /// A trust set with one key per signature kind.
    pub fn new(cvd: PublicKey, info: PublicKey, cdiff: PublicKey) -> Self {
        Self { cvd, info, cdiff }
    }

    /// A trust set that uses the same key for every signature kind (handy for private
    /// publishers and tests).
    pub fn single(key: PublicKey) -> Self {
        Self {
            cvd: key.clone(),
            info: key.clone(),
            cdiff: key,
        }
    }
}

impl Default for KeySet {
    fn default() -> Self {
        Self::official()
    }
}

/// An RSA private key used to sign containers we build.
#[derive(Clone)]
pub struct SigningKey {
    inner: RsaPrivateKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("bits", &self.inner.n().bits())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 (`-----BEGIN PRIVATE KEY-----`) or PKCS#1
    /// (`-----BEGIN RSA PRIVATE KEY-----`) PEM document.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let inner = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|err| Error::Key {
                reason: format!("not an RSA private key PEM: {err}"),
            })?;
        inner.validate().map_err(|err| Error::Key {
            reason: format!("inconsistent RSA private key: {err}"),
        })?;
        Ok(Self { inner })
    }

    /// Generates a fresh key of `bits` bits (2048 is what ClamAV's versig2 expects)
    /// with the operating system's random number generator.
    pub fn generate(bits: usize) -> Result<Self> {
        let inner =
            RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(|err| Error::Key {
                reason: format!("cannot generate a {bits}-bit key: {err}"),
            })?;
        Ok(Self { inner })
    }

    /// Writes the key as a PKCS#8 PEM document.
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        use rsa::pkcs8::EncodePrivateKey;
        self.inner
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|err| Error::Key {
                reason: format!("cannot encode key: {err}"),
            })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.to_public_key(),
        }
    }

    pub(crate) fn rsa(&self) -> &RsaPrivateKey {
        &self.inner
    }
}

/// The private keys used to build a signed `.cvd`: one for the legacy header signature,
/// one for the `.info` `DSIG`.
#[derive(Clone, Debug)]
pub struct SigningKeys {
    /// Signs the MD5 of the body (legacy signature in the header).
    pub cvd: SigningKey,
    /// Signs `<name>.info` (versig2 `DSIG`).
    pub info: SigningKey,
}

impl SigningKeys {
    /// Separate keys for the legacy signature and the `.info` `DSIG`.
    pub fn new(cvd: SigningKey, info: SigningKey) -> Self {
        Self { cvd, info }
    }

    /// One key for both signatures.
    pub fn single(key: SigningKey) -> Self {
        Self {
            cvd: key.clone(),
            info: key,
        }
    }

    /// The trust set that verifies what these keys sign (the `cdiff` key is the `.info`
    /// key).
    pub fn public_keys(&self) -> KeySet {
        KeySet {
            cvd: self.cvd.public_key(),
            info: self.info.public_key(),
            cdiff: self.info.public_key(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_keys_parse() -> Result<()> {
        let set = KeySet::official();
        assert_eq!(
            set.cvd,
            PublicKey::from_decimal(OFFICIAL_CVD_N, OFFICIAL_CVD_E)?
        );
        assert_eq!(
            set.info,
            PublicKey::from_decimal(OFFICIAL_INFO_N, OFFICIAL_INFO_E)?
        );
        assert_eq!(
            set.cdiff,
            PublicKey::from_decimal(OFFICIAL_CDIFF_N, OFFICIAL_CDIFF_E)?
        );
        assert_eq!(set.cvd.bits(), 1024);
        // The official 2048-bit keys have a 2047-bit modulus; signatures are 256 bytes.
        assert_eq!(set.info.bits(), 2047);
        assert_eq!(set.info.size(), 256);
        assert_eq!(set.cdiff.size(), 256);
        Ok(())
    }

    #[test]
    fn from_decimal_rejects_garbage() {
        assert!(PublicKey::from_decimal("12a", "3").is_err());
        assert!(PublicKey::from_decimal("", "3").is_err());
        assert!(PublicKey::from_decimal("3233", "-17").is_err());
        assert!(PublicKey::from_decimal("3233", "1").is_err());
    }
}
