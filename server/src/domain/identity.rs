//! The signature of instance identity documents: ECDSA P-256 with SHA-256 (ring can make
//! such keys; AWS signs with RSA under its own certificates), so that whoever is handed a
//! document can check that rolecall vouched for it with the public key.

use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair},
};

use super::{Error, Result};

/// DER of SubjectPublicKeyInfo for an uncompressed P-256 point, up to the point itself.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

pub struct IdentitySigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for IdentitySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySigner").field("key", &"<redacted>").finish()
    }
}

impl IdentitySigner {
    /// A new key pair, as PKCS#8 (what the store keeps, sealed).
    pub fn generate_pkcs8() -> Result<Vec<u8>> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| Error::service_failure("cannot make the identity signing key"))
    }

    /// The signer of a PKCS#8 key pair.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
            .map_err(|_| Error::service_failure("cannot load the identity signing key"))?;
        Ok(Self { key, rng })
    }

    /// A new key pair, kept only in memory.
    pub fn generate() -> Result<Self> {
        Self::from_pkcs8(&Self::generate_pkcs8()?)
    }

    /// The base64 (DER, ASN.1) signature of `document`.
    pub fn sign(&self, document: &[u8]) -> Result<String> {
        let signature = self
            .key
            .sign(&self.rng, document)
            .map_err(|_| Error::service_failure("cannot sign the identity document"))?;
        Ok(data_encoding::BASE64.encode(signature.as_ref()))
    }

    /// The public key as PEM (SubjectPublicKeyInfo), what `openssl dgst -verify` takes.
    pub fn public_key_pem(&self) -> String {
        let der = [P256_SPKI_PREFIX, self.key.public_key().as_ref()].concat();
        let body = data_encoding::BASE64.encode(&der);
        let lines: Vec<&str> =
            body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

    use super::*;

    #[test]
    fn signatures_verify_with_the_published_key_and_only_for_their_document() {
        let signer = IdentitySigner::generate().unwrap();
        let signature = data_encoding::BASE64.decode(signer.sign(b"{\"a\":1}").unwrap().as_bytes()).unwrap();
        let pem = signer.public_key_pem();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = data_encoding::BASE64.decode(body.as_bytes()).unwrap();
        assert_eq!(&der[..P256_SPKI_PREFIX.len()], P256_SPKI_PREFIX);
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &der[P256_SPKI_PREFIX.len()..]);
        assert!(key.verify(b"{\"a\":1}", &signature).is_ok());
        assert!(key.verify(b"{\"a\":2}", &signature).is_err());
        assert!(!format!("{signer:?}").contains("key: ["));
    }
}
