//! Bearer-token check for the mutating RPCs (Train, TrainStream, ActivateModel).

use tonic::metadata::MetadataMap;

use super::errors::ServiceError;

/// The configured training token, if any.
#[derive(Clone)]
pub struct TrainAuth {
    token: Option<String>,
}

impl std::fmt::Debug for TrainAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainAuth")
            .field("configured", &self.token.is_some())
            .finish()
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TrainAuth {
    /// A check against `token` (`None`: mutating RPCs are disabled).
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
        }
    }

    /// Whether a token is configured (the mutating RPCs are enabled).
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Accepts the call when its metadata carries `authorization: Bearer <token>`.
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), ServiceError> {
        let Some(expected) = &self.token else {
            return Err(ServiceError::Precondition(
                "training is disabled on this server: start it with TOPICD_TRAIN_TOKEN=<secret> or --train-token-file FILE, then send 'authorization: Bearer <secret>'".into(),
            ));
        };
        let Some(value) = metadata.get("authorization") else {
            return Err(ServiceError::Unauthenticated(
                "missing credentials: send the header 'authorization: Bearer <token>'".into(),
            ));
        };
        // The scheme is case-insensitive (RFC 9110); the token is compared exactly.
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
        if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(ServiceError::Unauthenticated(
                "invalid token: send 'authorization: Bearer <token>' with the server's training token".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        let auth = TrainAuth::new(Some("s3cret".into()));
        let mut md = MetadataMap::new();
        assert!(matches!(
            auth.check(&md),
            Err(ServiceError::Unauthenticated(_))
        ));
        md.insert("authorization", "Bearer wrong".parse().expect("ascii"));
        assert!(matches!(
            auth.check(&md),
            Err(ServiceError::Unauthenticated(_))
        ));
        md.insert("authorization", "Bearers3cret".parse().expect("ascii"));
        assert!(auth.check(&md).is_err());
        md.insert("authorization", "bearer s3cret".parse().expect("ascii"));
        assert!(auth.check(&md).is_ok());
        md.insert("authorization", "Bearer s3cret".parse().expect("ascii"));
        assert!(auth.check(&md).is_ok());
        assert!(matches!(
            TrainAuth::new(None).check(&md),
            Err(ServiceError::Precondition(_))
        ));
    }
}
