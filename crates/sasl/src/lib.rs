//! # lithos-sasl
//!
//! SASL for XMPP streams (RFC 6120 §6): SCRAM-SHA-256 (RFC 7677), SCRAM-SHA-1 (RFC 5802) and
//! PLAIN (RFC 4616), both halves, over the RustCrypto primitives. No I/O: the server and the
//! client drive the exchanges.
//!
//! Servers store salted keys for both SCRAM hashes ([`Credentials`]); PLAIN is checked
//! against the SHA-256 keys, so no password is ever stored. Clients use
//! [`scram::ScramClient`] and [`plain_message`].

pub mod scram;

use precis_core::profile::PrecisFastInvocation;
use precis_profiles::OpaqueString;

pub use scram::{ClientFirst, ScramCredential, ScramHash, ServerFirst};

/// The iteration count new credentials get (RFC 7677 asks for at least 4096).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// A SASL failure condition (RFC 6120 §6.5), sent as `<failure><condition/></failure>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The client aborted.
    #[error("aborted")]
    Aborted,
    /// The account is disabled.
    #[error("account-disabled")]
    AccountDisabled,
    /// This mechanism needs TLS first.
    #[error("encryption-required")]
    EncryptionRequired,
    /// The data was not valid base64.
    #[error("incorrect-encoding")]
    IncorrectEncoding,
    /// The authorization identity is not allowed.
    #[error("invalid-authzid")]
    InvalidAuthzid,
    /// No such mechanism is offered.
    #[error("invalid-mechanism")]
    InvalidMechanism,
    /// The exchange did not follow the mechanism.
    #[error("malformed-request")]
    MalformedRequest,
    /// Wrong credentials (or an unknown user).
    #[error("not-authorized")]
    NotAuthorized,
    /// A server-side problem; try again later.
    #[error("temporary-auth-failure")]
    TemporaryAuthFailure,
}

impl SaslError {
    /// The element name of the condition.
    pub fn condition(self) -> &'static str {
        match self {
            SaslError::Aborted => "aborted",
            SaslError::AccountDisabled => "account-disabled",
            SaslError::EncryptionRequired => "encryption-required",
            SaslError::IncorrectEncoding => "incorrect-encoding",
            SaslError::InvalidAuthzid => "invalid-authzid",
            SaslError::InvalidMechanism => "invalid-mechanism",
            SaslError::MalformedRequest => "malformed-request",
            SaslError::NotAuthorized => "not-authorized",
            SaslError::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

/// A mechanism the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-1 (RFC 5802).
    ScramSha1,
    /// PLAIN (RFC 4616), only over TLS.
    Plain,
}

impl Mechanism {
    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }
    /// The mechanism with this name.
    pub fn from_name(s: &str) -> Option<Mechanism> {
        Some(match s {
            "SCRAM-SHA-256" => Mechanism::ScramSha256,
            "SCRAM-SHA-1" => Mechanism::ScramSha1,
            "PLAIN" => Mechanism::Plain,
            _ => return None,
        })
    }
    /// The SCRAM hash, for SCRAM mechanisms.
    pub fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            Mechanism::ScramSha1 => Some(ScramHash::Sha1),
            Mechanism::Plain => None,
        }
    }
}

/// Why a password cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Empty, or refused by the PRECIS OpaqueString profile.
    #[error("the password is empty or contains characters that are not allowed")]
    Invalid,
}

/// Prepares a password with the PRECIS OpaqueString profile (RFC 8265), as SCRAM asks.
pub fn prepare_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Invalid);
    }
    OpaqueString::enforce(password)
        .map(|p| p.into_owned())
        .map_err(|_| PasswordError::Invalid)
}

/// What an account stores to authenticate: salted keys for both SCRAM hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// For SCRAM-SHA-1.
    pub sha1: ScramCredential,
    /// For SCRAM-SHA-256 (and PLAIN).
    pub sha256: ScramCredential,
}

impl Credentials {
    /// Derives credentials for a password, with fresh random salts.
    pub fn new(password: &str, iterations: u32) -> Result<Credentials, PasswordError> {
        let prepared = prepare_password(password)?;
        let salt = || {
            let mut s = vec![0u8; 16];
            rand::fill(&mut s[..]);
            s
        };
        Ok(Credentials {
            sha1: ScramCredential::derive(ScramHash::Sha1, &prepared, salt(), iterations),
            sha256: ScramCredential::derive(ScramHash::Sha256, &prepared, salt(), iterations),
        })
    }
    /// The credential for one hash.
    pub fn for_hash(&self, h: ScramHash) -> &ScramCredential {
        match h {
            ScramHash::Sha1 => &self.sha1,
            ScramHash::Sha256 => &self.sha256,
        }
    }
    /// Checks a plain password.
    pub fn verify_password(&self, password: &str) -> bool {
        match prepare_password(password) {
            Ok(p) => self.sha256.verify_password(ScramHash::Sha256, &p),
            Err(_) => false,
        }
    }
}

/// A PLAIN message: `[authzid] NUL authcid NUL password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainMessage {
    /// Authorization identity, if given.
    pub authzid: Option<String>,
    /// The user name.
    pub authcid: String,
    /// The password.
    pub password: String,
}

/// Parses a PLAIN message.
pub fn parse_plain(msg: &[u8]) -> Result<PlainMessage, SaslError> {
    let s = std::str::from_utf8(msg).map_err(|_| SaslError::MalformedRequest)?;
    let mut parts = s.split('\0');
    let (Some(z), Some(c), Some(p), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedRequest);
    };
    if c.is_empty() || p.is_empty() {
        return Err(SaslError::MalformedRequest);
    }
    Ok(PlainMessage {
        authzid: (!z.is_empty()).then(|| z.to_string()),
        authcid: c.to_string(),
        password: p.to_string(),
    })
}

/// The PLAIN message (RFC 4616): `[authzid] NUL authcid NUL password`.
///
/// ```
/// assert_eq!(lithos_sasl::plain_message(None, "juliet", "r0m30"), b"\0juliet\0r0m30");
/// ```
pub fn plain_message(authzid: Option<&str>, authcid: &str, password: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(authcid.len() + password.len() + 2);
    if let Some(z) = authzid {
        m.extend_from_slice(z.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(authcid.as_bytes());
    m.push(0);
    m.extend_from_slice(password.as_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages() {
        assert_eq!(
            parse_plain(b"\0juliet\0r0m30"),
            Ok(PlainMessage {
                authzid: None,
                authcid: "juliet".into(),
                password: "r0m30".into()
            })
        );
        assert_eq!(
            parse_plain(b"a@b\0juliet\0pw").unwrap().authzid.as_deref(),
            Some("a@b")
        );
        for bad in [
            &b"juliet\0pw"[..],
            b"\0\0pw",
            b"\0u\0",
            b"\0u\0p\0x",
            b"\0u\0\xff",
        ] {
            assert_eq!(parse_plain(bad), Err(SaslError::MalformedRequest));
        }
    }

    #[test]
    fn credentials_check_passwords_without_storing_them() {
        let c = Credentials::new("correct horse", 4096).unwrap();
        assert!(c.verify_password("correct horse"));
        assert!(!c.verify_password("Correct horse"));
        assert_ne!(c.sha1.salt, c.sha256.salt);
        assert_eq!(Credentials::new("", 4096), Err(PasswordError::Invalid));
    }
}
