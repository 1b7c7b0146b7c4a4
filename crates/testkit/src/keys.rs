//! Fixed **TEST-ONLY** RSA keys, so tests do not spend seconds generating keys.
//!
//! These private keys are published in this repository and protect nothing: never use
//! them to sign anything that a real client should trust. They were generated once with
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048` (PKCS#8 PEM).
//!
//! The PEM strings are the primary interface (they work from any crate, including
//! `cvd-format`'s own tests, which link a second copy of `cvd-format` through this
//! crate). The helper functions return `cvd_format` types for other crates.

use cvd_format::{KeySet, SigningKey, SigningKeys};

/// Signs the legacy CVD header signature in tests (TEST ONLY).
pub const TEST_CVD_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDr/JucweC94zYr\n\
oMuvUCu1dfbgkaytUgQBT6ELxG8GCh5W7c2XlPxVde+gzjuz3E/VWYAAraYK6mm4\n\
RtuYzjvjFh9wzrDHyp0WaKUe0if/obwVg4xF9NS/OIBOvSR2CRpTFYxeIRAuGvZz\n\
LHezIl9a1x3Yi922SCOEuIUFG2N7JtTHJFf0WGw9ntFIqC84byOWa2jRBI/AX+PI\n\
5dSFFieN/FUq4yyhGd6i0s7Lkw7e6YY1sgwRarRn04ouVHBOg7tzKNmF9YMVDfCP\n\
M8c9liLJf6u37c6omHToSJHMkTrLKgvX3+V3ZNxXKfP0afaul6aA5uXXTNysyYCB\n\
/08oVe2jAgMBAAECggEATdGt0RogDg48oVNzh5rk5wCBCloPetI2buY+4b4DrJau\n\
nZTqvKdNNLNg84K+rlei3eSXMOIShLv7Y+C97pxnpEF52b3XDvNSLP8SIGFF/mbr\n\
up54JeOQOoSbzxtRSDlFPIu5D5tQlhufFKjfyis2DaMtfOjWkpMkX1JnzyDSg9vO\n\
nx7dpmZIFVPgTK+KjU71Kry/HayLpHkiPTugIc48eLqDXPEZWR6HEC0/xLR9Aqou\n\
8isMb8VjrDKX78SdAyxvmn5CBBEuIVpEYDcBG5lLbCjaXBJ99Kri6Z+ot92pMrLE\n\
ebO+qsRG5Z4agQhrARwIZ80pAWzWlIJDLklNp+dwkQKBgQD7JpkxWYneKHxwT1fQ\n\
kdtS/sZ1Z/zfQG7um31ORMpZRj+gG//sYLf+PuSTlyq5ErJQBVkWz5U0OJRa2m7B\n\
MyGk0FQodFm/9fSop1Vwzefq3RplEZm6O+ToGEcamwZRcxznm3spnIVsj3m3Olzb\n\
5IejcV4BGECfKy+59z3bdh+ocQKBgQDwiw5OsVyQxrAJxazYV32RtT3QOt20gNsi\n\
visbW5b9+grZ6oW3ElKIzU4La5rRfLG5EO1gJEN+QjVYdohxxG/950UlsjhJcZMX\n\
gs9Fr3hPIqOW2E55/Iai/8WkPGUCy7eylAk8BIjESxdPTgzkF5jdBUsiFmGFrtc3\n\
VbAUxPfhUwKBgHAlPCKdKMLasTY1N7EacCUPPu8OEAxgaSiCpeFdNj3G8II9/nk+\n\
dupAizCcP6eEgbrZqH5XEvjOivBGuU3r1woRPIMT8T+WRDlK/wvv5a8qK68VvN87\n\
/2rj7Fwk/R1BmZaSBtz911YyetcmaHCIC0kgRimW+sQYNKeFj0l/5YMBAoGBAM1j\n\
ftD0onxAGtoNPrvvYJnErsYZLWtNx08QH9CZUQEFurQ9ivU5oN2MqAIaXDRZi4rh\n\
CD7aWAL71370nya9O38KNUGtvl//qUAfAoqW/Fxd0F8hzUhdtjyBtqm4o+tSNUU3\n\
H/duS7WIBJxDocA04eJ+/ZtajuTN2Jg4A0SItrtfAoGBALdps6g7nnC71gnoKatL\n\
q6HWiI8qj0D0+AifLT+S7VTzSCnlWYC2+qysKTM3iI7VpgourW64IiSLZhEMG3t+\n\
9Zx0paIFUZjfXImLOCaR1R0WquJbylSdwXMJtSxEQ8dyARItIYab7NEr4Esc7qNI\n\
Mlf9NLtFBiIANi+ilInHsPu4\n\
-----END PRIVATE KEY-----\n";

/// Signs `.info` `DSIG` lines in tests (TEST ONLY).
pub const TEST_INFO_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDbNYr6hBEK+fJv\n\
sQB2vjWyuMiGYijG4nqV5m4+i6xHF+wDiGH5jMMXKqoFlVptKSapJ2aJK9uyniaQ\n\
2uCarWnV/FHA8vDoWrvBaB1oLezqIKOhW7vTIzvba2tXymnfqk6hW/8RP0Y0CUAm\n\
EZeFH8kpVJgl5e1Db9G+wbdZfpgzkHVUDv8MY8GXibFgAc0h/BQJExJ9XiQcXlAs\n\
SOzJWbmupz77EzuzxcfXmvbqxRHp16is0tCXw0mM4sb2bKRIRaV+JyOYeYrJUheI\n\
9dXzyuDeNzon55cvgzIo0hBeWvjYZtfICaK4Q8GxPc5VkVwMMNmMn5yETZolzL70\n\
+MutbCxTAgMBAAECggEAMu0uBARRl0y5M5SaCHwpKoO+ZmYAljAAjbmyjApT9FJM\n\
7Qcux9SZcFTjmhd4Ihso1ayHKEANsuIGEKog+x5lk6aicaKfMEQAEa84Ab+FpmD9\n\
0ttmd+dcHR5IGmW2khVVXixqxh1+mFE723xDyNQ5HkZ+cHOJ2xxrzJbhm0OLZZLw\n\
MHvWjMWVK4f24sfQLp75rn1nqCZFm0824S+gt5YZd35+P3aJ/hNuh8bYPSWuUklt\n\
uSEwNJ9Z0nmY4NjXN0+3puoEeAhETKRhqbjDASUBZSLthtS7pR/KkqIG/gXP27G3\n\
ljm23Z17WbfJsEGX57Wr5Ny1d/a8eyFvpoisjV9HFQKBgQD+AaeI48iNKAZg2vOq\n\
O2ducadNHuThjjXJ7S6I0TwwBu4PidN/KLAjuccWfqOJr82we8hRiGxFI0IpRi2Q\n\
aRH34LHTDrkveBVJJ+as/DTc5sGGMJd2NVJ2nwLPtjHL+XHZMfzZKLqxeOgV4Ic6\n\
99qBKAipwiWsDABSCgjOWk1EpwKBgQDc7flp/e4siiCIxmHcnH73+MWhYML1muom\n\
atglN1SPcAUFNOQCT4XHktIi2q8Hr1yzvb/lVWkvgnIx/OwoqOK8mBMwzzbL8Dfi\n\
Co+3HQfHFMT2AbdomTefeimd45wTNnsBQrCjIqjZwaj3vEzvwDMCVr3d7FA5u1+C\n\
OtcNl2NUdQKBgHsRQCPyATRrJRP+YbqkB4waYu3ZvxmNtn/8e+RsRBYc9XDv3Vop\n\
05WrqEs81m2akTUl9DuUtqiU2bR3vRHP5pXL9zyEULMwIlgMjhZYKCCzaSZkGq56\n\
TVcN2eXbp6rlVATg1Fo/Ap2EMCaRX9PxTJvxUqk1WN1P/0PAet3IINHXAoGAfiAF\n\
cXMcE6VPaYYHvFBDVAFbogOBiYFFB2Wbu7NYvQJwe0Z0nLUVZJf3CxrZLYP5YkuD\n\
T8Nw50SLOOpxT80KlCwlWIoTeF3NKWhqH1mdZRQAVYkpUbeWv56YP6D/KyDBHDkc\n\
aiWRS695bOS872pENKOchSMxsaO8pLY+q22vsTkCgYBZpugs2l+WnGISmnR1NUey\n\
3qKw2x7MyXtmSdOfDX0bnwOFGS+6IUMp+/aG50Op4uCrWKkb0/iAtFK2uGuHeEr8\n\
Ciwqo29DQ9Inezqychfob3pFrfrilCDtApuVs9dspTEwG094AJq6iyNftWBJ14sA\n\
DWNHIa/nb2mkizwXqcB0LQ==\n\
-----END PRIVATE KEY-----\n";

/// Signs `.cdiff` patches in tests (TEST ONLY).
pub const TEST_CDIFF_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC6yxbz+xvD+OMr\n\
DS7x/JyZXhyISL1yOOmqk4xPWPuYaSx4b97/sO+M80tOCgR4W23vKDkOa6GAK2Q9\n\
o5NI9vsB270zwc56nF/RzQJhSZk9pISrvwNvqJBMvEhNt2UWN5pPCAPS7SkZwT+T\n\
EHt2sogAvuWNoQeTc9YmJh2LBUoiu84AMTAK8rF9oXHOpkWlcr+6lBd0i/UsOvZl\n\
xQA3w3jf05V/bv3VG3j0F9A8ilBuPVONE/8YZzhbsNeetIj8QFZdGwifInneOPiY\n\
ppZ5jAW4i1uweiZvDYlndHk38fw9X8Gs2rc07jdIC06MayqAb2OQFfIkkP//xzAE\n\
Z1pJVamdAgMBAAECggEAEyxbe8mvrOr0LmwZAH/Edz2gwiBtSbcrzPV+NnrUwG0z\n\
Ql2BT0+TFy218hm3Ib+Ixj6jtKY5mpVZobYTnS60zxkGD7T6A73fXAKmFuReFWS4\n\
tYRSzvhHb4j4BvonJyOn9CrHcbQkPt+GLgtIEQP8T89IcsQvqeP+/EV3TNjLJkth\n\
eaE6GSAvJ53j2YJHbLnx7NsHoDcRnYJwFKpK4p2NJ8+vrPK+gojs9cm2faJVVweQ\n\
+4zuAgTSm6KFwn554grObodV4h/QzOwGI1wVFZWj7NgTyCb+lMlwvKYOInArT8Xx\n\
uwHaCNCes5pK8CdTVQnrg+mLBCKe6O0YqIi85JHBZQKBgQD3lfHimrGKGnWwKbhD\n\
fS74WCiRMzg1CKCGKTwZRrSn5+0usn0ocdjR5D/V+zhT1HilYsus84nOmUmeQbSj\n\
2JzPgLaxdESrhdzZ/R5NTjilv8BnB0kpc9f5GUcAGqmUaOD97TBf5SFqXg8WGFdS\n\
FKZ/v5QD/CIfUw1AGtfUsBj1LwKBgQDBJDx/KerByVk3EZLUagx/UJLbCKLMaLXQ\n\
5M1rVy63MOAQ2M1SH5S4PGGTdCtSvqXRGIONXEfBMZjB5/g7RwEWZNSDQaKYKfoM\n\
ScfSX1HyiyePKGtzpZ8SagESCoKGqEPMH23ef3VxdTsbGHe5DKLZ7SlDc+lDQYYB\n\
0AKfsWpy8wKBgQC0mf5uLCWh9hcvP9+X63Md2UEOWeyAUyC1fNLIJVmWuYm8bJr7\n\
q8Bbq0IdlznJfM3c5qpoKOa3e/3FoWxhsJsCioO6AnQtImKt6QP3pD2SOsPg4+Gs\n\
iUJcBOJT4x8ckTy+PgzxhrTPYHlkxrC7wTCLM3aHSZ6idvTNdEdIcIRkJQKBgEJq\n\
O4Ne3qMUoeEV4e+5J+L/ygAX0COKPjs+8oRezmmgHOyuIKyEv5c67DLQV7V0aYCl\n\
dVc+zE3ayDSll+6KVA1nTsxz3X2Fsb5YAKaOsJc+0rOfqpNx+GlUmlmh05CKfAXN\n\
KPLB0ZjaPyDqIQE5HybhLrdLPIMsHPCynrRbRceRAoGAZmeZ98vP4Quc4r8XevvM\n\
BstSuBwrmxgu/aaBgaAA8aksiTXelvsbVpP4zIu4RCke2pSFGCsVdWL2ZEa5mZIG\n\
Veggnwyxq/cpd9jF+pMjvQXYBeS64Cdd1dL/q+VnwAHFQfM3JiYFsd3c3MLe797U\n\
n0ZgwbqDGbcRHUuXMDcugJs=\n\
-----END PRIVATE KEY-----\n";

fn key(pem: &str) -> SigningKey {
    match SigningKey::from_pkcs8_pem(pem) {
        Ok(k) => k,
        Err(e) => panic!("built-in test key does not parse: {e}"),
    }
}

/// The TEST-ONLY CVD signing key.
pub fn test_cvd_key() -> SigningKey {
    key(TEST_CVD_KEY_PEM)
}

/// The TEST-ONLY INFO signing key.
pub fn test_info_key() -> SigningKey {
    key(TEST_INFO_KEY_PEM)
}

/// The TEST-ONLY CDIFF signing key.
pub fn test_cdiff_key() -> SigningKey {
    key(TEST_CDIFF_KEY_PEM)
}

/// The TEST-ONLY keys that sign a `.cvd` (legacy signature + `.info`).
pub fn test_signing_keys() -> SigningKeys {
    SigningKeys::new(test_cvd_key(), test_info_key())
}

/// The trust set matching the TEST-ONLY keys (CVD, INFO and CDIFF).
pub fn test_key_set() -> KeySet {
    KeySet::new(
        test_cvd_key().public_key(),
        test_info_key().public_key(),
        test_cdiff_key().public_key(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_differ() {
        let set = test_key_set();
        assert_eq!(set.cvd.bits(), 2048);
        assert_ne!(set.cvd, set.info);
        assert_ne!(set.info, set.cdiff);
    }
}
