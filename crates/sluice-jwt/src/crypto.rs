//! jsonwebtoken's signatures, made and checked by ring: the crypto library rustls already uses
//! here, so JWT validation adds no second crypto stack (jsonwebtoken's own backends are aws-lc-rs,
//! which needs a C toolchain, and RustCrypto). Installed once per process as jsonwebtoken's
//! provider.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature as sig;

/// Installs the ring provider as jsonwebtoken's (once; a provider already installed stays).
pub fn install() {
    let _ = PROVIDER.install_default();
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key,
        ed_pub_components_from_private_key,
        compute_digest,
    },
};

fn invalid() -> Error {
    ErrorKind::InvalidKeyFormat.into()
}

/// The family an algorithm's key must be of: a key of another family is never tried (the
/// classic algorithm confusion, an RSA public key used as an HMAC secret).
fn check_family(algorithm: Algorithm, family: AlgorithmFamily) -> Result<(), Error> {
    if algorithm.family() == family {
        Ok(())
    } else {
        Err(invalid())
    }
}

struct RingSigner {
    algorithm: Algorithm,
    key: EncodingKey,
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        sign(self.algorithm, self.key.as_bytes(), message).ok_or_else(signature::Error::new)
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn sign(algorithm: Algorithm, key: &[u8], message: &[u8]) -> Option<Vec<u8>> {
    let rng = ring::rand::SystemRandom::new();
    let rsa = |padding: &'static dyn sig::RsaEncoding| {
        let pair = sig::RsaKeyPair::from_der(key)
            .or_else(|_| sig::RsaKeyPair::from_pkcs8(key))
            .ok()?;
        let mut out = vec![0; pair.public().modulus_len()];
        pair.sign(padding, &rng, message, &mut out).ok()?;
        Some(out)
    };
    let ecdsa = |alg: &'static sig::EcdsaSigningAlgorithm| {
        let pair = sig::EcdsaKeyPair::from_pkcs8(alg, key, &rng).ok()?;
        Some(pair.sign(&rng, message).ok()?.as_ref().to_vec())
    };
    let hmac = |alg: ring::hmac::Algorithm| {
        Some(
            ring::hmac::sign(&ring::hmac::Key::new(alg, key), message)
                .as_ref()
                .to_vec(),
        )
    };
    match algorithm {
        Algorithm::HS256 => hmac(ring::hmac::HMAC_SHA256),
        Algorithm::HS384 => hmac(ring::hmac::HMAC_SHA384),
        Algorithm::HS512 => hmac(ring::hmac::HMAC_SHA512),
        Algorithm::ES256 => ecdsa(&sig::ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::ES384 => ecdsa(&sig::ECDSA_P384_SHA384_FIXED_SIGNING),
        Algorithm::RS256 => rsa(&sig::RSA_PKCS1_SHA256),
        Algorithm::RS384 => rsa(&sig::RSA_PKCS1_SHA384),
        Algorithm::RS512 => rsa(&sig::RSA_PKCS1_SHA512),
        Algorithm::PS256 => rsa(&sig::RSA_PSS_SHA256),
        Algorithm::PS384 => rsa(&sig::RSA_PSS_SHA384),
        Algorithm::PS512 => rsa(&sig::RSA_PSS_SHA512),
        Algorithm::EdDSA => Some(
            sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(key)
                .ok()?
                .sign(message)
                .as_ref()
                .to_vec(),
        ),
        _ => None,
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    check_family(*algorithm, key.family())?;
    Ok(Box::new(RingSigner {
        algorithm: *algorithm,
        key: key.clone(),
    }))
}

struct RingVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        if verify(self.algorithm, &self.key, message, signature) {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn verify(algorithm: Algorithm, key: &DecodingKey, message: &[u8], signature: &[u8]) -> bool {
    let rsa = |params: &'static sig::RsaParameters| match key.kind() {
        DecodingKeyKind::RsaModulusExponent { n, e } => sig::RsaPublicKeyComponents { n, e }
            .verify(params, message, signature)
            .is_ok(),
        DecodingKeyKind::SecretOrDer(der) => sig::UnparsedPublicKey::new(params, der)
            .verify(message, signature)
            .is_ok(),
    };
    let raw = |alg: &'static dyn sig::VerificationAlgorithm| {
        key.try_get_as_bytes().is_ok_and(|bytes| {
            sig::UnparsedPublicKey::new(alg, bytes)
                .verify(message, signature)
                .is_ok()
        })
    };
    let hmac = |alg: ring::hmac::Algorithm| {
        key.try_get_as_bytes().is_ok_and(|secret| {
            // Constant time: ring compares the tags itself.
            ring::hmac::verify(&ring::hmac::Key::new(alg, secret), message, signature).is_ok()
        })
    };
    match algorithm {
        Algorithm::HS256 => hmac(ring::hmac::HMAC_SHA256),
        Algorithm::HS384 => hmac(ring::hmac::HMAC_SHA384),
        Algorithm::HS512 => hmac(ring::hmac::HMAC_SHA512),
        Algorithm::ES256 => raw(&sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => raw(&sig::ECDSA_P384_SHA384_FIXED),
        Algorithm::RS256 => rsa(&sig::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => rsa(&sig::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => rsa(&sig::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => rsa(&sig::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => rsa(&sig::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => rsa(&sig::RSA_PSS_2048_8192_SHA512),
        Algorithm::EdDSA => raw(&sig::ED25519),
        _ => false,
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    check_family(*algorithm, key.family())?;
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        key: key.clone(),
    }))
}

// The key utilities serve jsonwebtoken's JWK helpers, which Sluice does not call (it reads JWK
// sets itself, tolerating keys it cannot use); the two it could need are provided.

fn rsa_pub_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let pair = sig::RsaKeyPair::from_der(der)
        .or_else(|_| sig::RsaKeyPair::from_pkcs8(der))
        .map_err(|_| invalid())?;
    let components: sig::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
    Ok((components.n, components.e))
}

fn rsa_pub_components_from_public_key(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    Err(invalid())
}

fn ec_pub_components_from_private_key(
    _der: &[u8],
    _algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>), Error> {
    Err(invalid())
}

fn ed_pub_components_from_private_key(der: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>, Error> {
    match curve {
        EllipticCurve::Ed25519 => {
            use ring::signature::KeyPair as _;
            Ok(sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| invalid())?
                .public_key()
                .as_ref()
                .to_vec())
        }
        _ => Err(invalid()),
    }
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>, Error> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(invalid()),
    };
    Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
}
