//! Static-token authentication (AWP1.md §3.2). The server keeps only a
//! salted PBKDF2-HMAC-SHA256 digest of the token and checks a presented
//! token with ring's constant-time verify; the token itself is dropped as
//! soon as the verifier is built and never logged.

use std::num::NonZeroU32;

use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

const ITERATIONS: u32 = 10_000;
const DIGEST_LEN: usize = 32;
static ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;

/// A token verifier holding only salt and digest.
#[derive(Clone)]
pub struct TokenVerifier {
    salt: [u8; 16],
    digest: [u8; DIGEST_LEN],
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier(***)")
    }
}

fn iterations() -> NonZeroU32 {
    NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN)
}

impl TokenVerifier {
    /// Hash `token` with a fresh random salt.
    pub fn new(token: &str) -> Result<TokenVerifier, String> {
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| "no system randomness available".to_owned())?;
        let mut digest = [0u8; DIGEST_LEN];
        pbkdf2::derive(
            ALGORITHM,
            iterations(),
            &salt,
            token.as_bytes(),
            &mut digest,
        );
        Ok(TokenVerifier { salt, digest })
    }

    /// Constant-time check of a presented token.
    pub fn verify(&self, presented: &str) -> bool {
        pbkdf2::verify(
            ALGORITHM,
            iterations(),
            &self.salt,
            presented.as_bytes(),
            &self.digest,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_token() {
        let v = TokenVerifier::new("s3cret").unwrap();
        assert!(v.verify("s3cret"));
        assert!(!v.verify("s3cre"));
        assert!(!v.verify(""));
        assert_eq!(format!("{v:?}"), "TokenVerifier(***)");
        // Salted: two verifiers of one token differ.
        let w = TokenVerifier::new("s3cret").unwrap();
        assert_ne!(v.salt, w.salt);
    }
}
