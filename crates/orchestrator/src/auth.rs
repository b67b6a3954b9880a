//! Auth tokens (§3.2; GL core/orchestrator.go `AuthToken`): GetOrchestrator issues one per
//! session, B echoes it on every segment and on EndTranscodingSession.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use livefarm_pm::num::min_be_bytes_u64;
use livefarm_pm::recipient::random_bytes32;
use livefarm_proto::livepeer::net;
use sha2::Sha256;

use crate::error::OrchestratorError;

/// How long a token stays valid (`authTokenValidPeriod`).
pub const AUTH_TOKEN_VALIDITY: Duration = Duration::from_secs(30 * 60);

type HmacSha256 = Hmac<Sha256>;

/// Seconds since the Unix epoch, as the token's `expiration` counts them.
pub fn unix_now() -> i64 {
    i64::try_from(livefarm_jobs::now_ms() / 1000).unwrap_or(i64::MAX)
}

/// `core.RandomManifestID()`: 4 random bytes as 8 lowercase hex characters.
pub fn random_session_id() -> Result<String, OrchestratorError> {
    let bytes = random_bytes32()?;
    Ok(bytes[..4].iter().map(|b| format!("{b:02x}")).collect())
}

/// Issues and verifies tokens with a node secret. Tokens die with the process unless the
/// secret is shared (replicas behind one service URI need the same secret).
pub struct AuthTokens {
    secret: [u8; 32],
}

impl std::fmt::Debug for AuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("AuthTokens").finish_non_exhaustive()
    }
}

impl AuthTokens {
    /// Tokens under a fresh random secret.
    pub fn new() -> Result<AuthTokens, OrchestratorError> {
        Ok(AuthTokens::with_secret(random_bytes32()?))
    }

    /// Tokens under a chosen secret.
    pub fn with_secret(secret: [u8; 32]) -> AuthTokens {
        AuthTokens { secret }
    }

    fn mac(&self, session_id: &str, expiration: i64) -> Option<HmacSha256> {
        // Go's big.Int.Bytes() of a negative number would drop the sign; no token we issue
        // has one, so such a token is simply not ours.
        let expiration = u64::try_from(expiration).ok()?;
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("hmac accepts keys of any length");
        mac.update(session_id.as_bytes());
        mac.update(&min_be_bytes_u64(expiration));
        Some(mac)
    }

    /// `HMAC-SHA256(secret, utf8(session_id) || bigEndianMinimal(expiration))`.
    pub fn token_bytes(&self, session_id: &str, expiration: i64) -> Vec<u8> {
        self.mac(session_id, expiration)
            .map(|m| m.finalize().into_bytes().to_vec())
            .unwrap_or_default()
    }

    /// A token for `session_id` expiring at `expiration` (Unix seconds).
    pub fn issue_for(&self, session_id: &str, expiration: i64) -> net::AuthToken {
        net::AuthToken {
            token: self.token_bytes(session_id, expiration),
            session_id: session_id.to_string(),
            expiration,
        }
    }

    /// A token for a new random session, valid for [`AUTH_TOKEN_VALIDITY`] from `now`.
    pub fn issue(&self, now: i64) -> Result<net::AuthToken, OrchestratorError> {
        let validity = i64::try_from(AUTH_TOKEN_VALIDITY.as_secs()).expect("30 minutes fit");
        Ok(self.issue_for(&random_session_id()?, now.saturating_add(validity)))
    }

    /// Checks the HMAC only (EndTranscodingSession does no expiry check).
    pub fn verify_hmac(&self, token: &net::AuthToken) -> Result<(), OrchestratorError> {
        // verify_slice compares in constant time.
        let genuine = self
            .mac(&token.session_id, token.expiration)
            .is_some_and(|mac| mac.verify_slice(&token.token).is_ok());
        if genuine {
            Ok(())
        } else {
            Err(OrchestratorError::InvalidAuthToken)
        }
    }

    /// The `/segment` check: present, genuine, and `now ≤ expiration`.
    pub fn verify(
        &self,
        token: Option<&net::AuthToken>,
        now: i64,
    ) -> Result<(), OrchestratorError> {
        let token = token.ok_or(OrchestratorError::MissingAuthToken)?;
        self.verify_hmac(token)?;
        if now > token.expiration {
            return Err(OrchestratorError::ExpiredAuthToken);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_token_verifies_and_lasts_thirty_minutes() {
        let tokens = AuthTokens::with_secret([7; 32]);
        let now = 1_700_000_000;
        let t = tokens.issue(now).expect("rng");
        assert_eq!(t.expiration, now + 1800);
        assert_eq!(t.session_id.len(), 8);
        assert!(t
            .session_id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(t.token.len(), 32);
        assert_eq!(tokens.verify(Some(&t), now), Ok(()));
        assert_eq!(tokens.verify(Some(&t), now + 1800), Ok(()));
    }

    #[test]
    fn token_is_hmac_over_session_id_and_minimal_expiration() {
        let secret = [9u8; 32];
        let tokens = AuthTokens::with_secret(secret);
        let mut mac = HmacSha256::new_from_slice(&secret).expect("any key");
        // 0x010000 needs three bytes, with no leading zeros.
        mac.update(b"abcd0123\x01\x00\x00");
        let expected = mac.finalize().into_bytes().to_vec();
        assert_eq!(tokens.token_bytes("abcd0123", 0x01_0000), expected);
    }

    #[test]
    fn expired_forged_foreign_and_missing_tokens_are_refused() {
        let tokens = AuthTokens::with_secret([7; 32]);
        let t = tokens.issue_for("deadbeef", 1000);
        assert_eq!(
            tokens.verify(Some(&t), 1001),
            Err(OrchestratorError::ExpiredAuthToken)
        );
        assert_eq!(
            OrchestratorError::ExpiredAuthToken.to_string(),
            "expired auth token"
        );
        // EndTranscodingSession accepts an expired but genuine token.
        assert_eq!(tokens.verify_hmac(&t), Ok(()));

        let mut forged = t.clone();
        forged.token[0] ^= 1;
        assert_eq!(
            tokens.verify(Some(&forged), 0),
            Err(OrchestratorError::InvalidAuthToken)
        );
        let mut extended = t.clone();
        extended.expiration += 3600;
        assert_eq!(
            tokens.verify_hmac(&extended),
            Err(OrchestratorError::InvalidAuthToken)
        );
        let mut other_session = t.clone();
        other_session.session_id = "deadbeee".into();
        assert_eq!(
            tokens.verify_hmac(&other_session),
            Err(OrchestratorError::InvalidAuthToken)
        );
        let foreign = AuthTokens::with_secret([8; 32]);
        assert_eq!(
            foreign.verify_hmac(&t),
            Err(OrchestratorError::InvalidAuthToken)
        );
        assert_eq!(
            tokens.verify(None, 0),
            Err(OrchestratorError::MissingAuthToken)
        );
        assert_eq!(
            OrchestratorError::InvalidAuthToken.to_string(),
            "invalid auth token"
        );
    }

    #[test]
    fn session_ids_differ() {
        let a = random_session_id().expect("rng");
        let b = random_session_id().expect("rng");
        assert_ne!(a, b);
    }
}
