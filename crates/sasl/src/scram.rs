//! SCRAM (RFC 5802, RFC 7677) over the RustCrypto primitives: the server side
//! ([`ClientFirst`] → [`ServerFirst`]) and the client side ([`ScramClient`]).
//!
//! The server stores, per hash, only the salt, the iteration count, `StoredKey` and `ServerKey`
//! ([`ScramCredential`]); the password is never kept.
//!
//! A whole exchange, both halves:
//!
//! ```
//! use lithos_sasl::scram::{ClientFirst, ScramClient, ScramCredential, ScramHash};
//!
//! let h = ScramHash::Sha256;
//! let stored = ScramCredential::derive(h, "pencil", b"salt of the earth".to_vec(), 4096);
//! let decoy = stored.clone(); // what an unknown user would get
//! let client = ScramClient::new(h, "user", "pencil").unwrap();
//! let first = ClientFirst::parse(h, client.client_first().as_bytes()).unwrap();
//! let (server_first, server) = first.server_first(Some(stored), decoy, "server-nonce");
//! let fin = client.server_first(&server_first).unwrap();
//! let server_final = server.client_final(fin.message().as_bytes()).unwrap();
//! fin.verify_server_final(&server_final).unwrap();
//! ```

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha1::Digest;
use subtle::ConstantTimeEq;

use crate::SaslError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The hash a SCRAM variant uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-1.
    Sha1,
    /// SCRAM-SHA-256.
    Sha256,
}

impl ScramHash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut m = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key)
                    .expect("HMAC takes keys of any length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha256 => {
                let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
                    .expect("HMAC takes keys of any length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }
    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// What the server stores for one SCRAM hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// Random salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// Derives the credential from a prepared password.
    pub fn derive(hash: ScramHash, password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        ScramCredential {
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    /// Checks a plain password (SASL PLAIN) against the credential, in constant time.
    pub fn verify_password(&self, hash: ScramHash, password: &str) -> bool {
        let salted = hash.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        hash.hash(&client_key).ct_eq(&self.stored_key).into()
    }
}

/// Splits `k=v` attributes of a SCRAM message.
fn attrs(msg: &str) -> impl Iterator<Item = (char, &str)> {
    msg.split(',').filter_map(|p| {
        let mut c = p.chars();
        let k = c.next()?;
        p.get(1..)?.strip_prefix('=').map(|v| (k, v))
    })
}

/// A SCRAM username: `=2C` and `=3D` unescaped; any other `=` is malformed.
fn unescape_name(s: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::MalformedRequest),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The client's first message, parsed.
#[derive(Debug, Clone)]
pub struct ClientFirst {
    hash: ScramHash,
    gs2_header: String,
    bare: String,
    client_nonce: String,
    /// The username (authcid), unescaped but not prepared.
    pub username: String,
    /// The authorization identity, if the client gave one.
    pub authzid: Option<String>,
}

impl ClientFirst {
    /// Parses `gs2-header client-first-message-bare`. Channel binding is not offered, so a
    /// client that requires it (`p=`) is refused.
    pub fn parse(hash: ScramHash, msg: &[u8]) -> Result<ClientFirst, SaslError> {
        let msg = std::str::from_utf8(msg).map_err(|_| SaslError::MalformedRequest)?;
        let (flag, rest) = msg.split_once(',').ok_or(SaslError::MalformedRequest)?;
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(SaslError::MalformedRequest),
            _ => return Err(SaslError::MalformedRequest),
        }
        let (authzid, bare) = rest.split_once(',').ok_or(SaslError::MalformedRequest)?;
        let authzid = match authzid {
            "" => None,
            a => Some(unescape_name(
                a.strip_prefix("a=").ok_or(SaslError::MalformedRequest)?,
            )?),
        };
        let gs2_header = format!("{flag},{},", &rest[..rest.len() - bare.len() - 1]);
        if bare.starts_with("m=") {
            return Err(SaslError::MalformedRequest);
        }
        let mut username = None;
        let mut nonce = None;
        for (k, v) in attrs(bare) {
            match k {
                'n' if username.is_none() => username = Some(unescape_name(v)?),
                'r' if nonce.is_none() => nonce = Some(v.to_string()),
                _ => {}
            }
        }
        let (Some(username), Some(client_nonce)) = (username, nonce) else {
            return Err(SaslError::MalformedRequest);
        };
        if username.is_empty() || client_nonce.is_empty() || client_nonce.contains(',') {
            return Err(SaslError::MalformedRequest);
        }
        Ok(ClientFirst {
            hash,
            gs2_header,
            bare: bare.to_string(),
            client_nonce,
            username,
            authzid,
        })
    }

    /// Answers with the server's first message. `credential` is `None` for an unknown user:
    /// the exchange goes on with `decoy` (made from the user name, so it does not change between
    /// attempts) and fails at the end, so that unknown and known users look alike.
    pub fn server_first(
        self,
        credential: Option<ScramCredential>,
        decoy: ScramCredential,
        server_nonce: &str,
    ) -> (Vec<u8>, ServerFirst) {
        let known = credential.is_some();
        let cred = credential.unwrap_or(decoy);
        let nonce = format!("{}{}", self.client_nonce, server_nonce);
        let msg = format!(
            "r={nonce},s={},i={}",
            B64.encode(&cred.salt),
            cred.iterations
        );
        let state = ServerFirst {
            hash: self.hash,
            gs2_header: self.gs2_header,
            client_first_bare: self.bare,
            server_first: msg.clone(),
            nonce,
            cred,
            known,
        };
        (msg.into_bytes(), state)
    }
}

/// The server is waiting for the client's final message.
#[derive(Debug, Clone)]
pub struct ServerFirst {
    hash: ScramHash,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    cred: ScramCredential,
    known: bool,
}

impl ServerFirst {
    /// Checks the client's proof; on success returns the server's final message
    /// (`v=ServerSignature`).
    pub fn client_final(self, msg: &[u8]) -> Result<Vec<u8>, SaslError> {
        let msg = std::str::from_utf8(msg).map_err(|_| SaslError::MalformedRequest)?;
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(SaslError::MalformedRequest)?;
        let mut binding = None;
        let mut nonce = None;
        for (k, v) in attrs(without_proof) {
            match k {
                'c' if binding.is_none() => binding = Some(v),
                'r' if nonce.is_none() => nonce = Some(v),
                _ => {}
            }
        }
        let binding = B64
            .decode(binding.ok_or(SaslError::MalformedRequest)?)
            .map_err(|_| SaslError::IncorrectEncoding)?;
        if binding != self.gs2_header.as_bytes() || nonce != Some(self.nonce.as_str()) {
            return Err(SaslError::NotAuthorized);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| SaslError::IncorrectEncoding)?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let h = self.hash;
        let client_signature = h.hmac(&self.cred.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(SaslError::NotAuthorized);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let ok: bool = h.hash(&client_key).ct_eq(&self.cred.stored_key).into();
        if !(ok && self.known) {
            return Err(SaslError::NotAuthorized);
        }
        let server_signature = h.hmac(&self.cred.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// The client half of SCRAM: builds the first message, answers the server's, and checks the
/// server's signature.
#[derive(Clone)]
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    client_first_bare: String,
    nonce: String,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Starts an exchange for `username` with a random nonce. The password is prepared with
    /// the OpaqueString profile (RFC 8265), as the server prepares it.
    pub fn new(
        hash: ScramHash,
        username: &str,
        password: &str,
    ) -> Result<ScramClient, crate::PasswordError> {
        let mut raw = [0u8; 18];
        rand::fill(&mut raw[..]);
        Self::with_nonce(hash, username, password, &B64.encode(raw))
    }

    /// As [`new`](Self::new), with a given nonce (printable, without commas): for test
    /// vectors.
    pub fn with_nonce(
        hash: ScramHash,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> Result<ScramClient, crate::PasswordError> {
        let password = crate::prepare_password(password)?;
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Ok(ScramClient {
            hash,
            password,
            client_first_bare: format!("n={name},r={nonce}"),
            nonce: nonce.to_string(),
        })
    }

    /// The first message: no channel binding, no authorization identity.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Answers the server's first message. Refuses a server nonce that does not extend ours,
    /// and iteration counts under 4096 (RFC 7677 §4), which would make a stolen exchange
    /// cheap to attack.
    pub fn server_first(&self, msg: &[u8]) -> Result<ScramClientFinal, SaslError> {
        let server_first = std::str::from_utf8(msg).map_err(|_| SaslError::MalformedRequest)?;
        let (message, server_signature, nonce, iterations) = final_message(
            self.hash,
            &self.password,
            &self.client_first_bare,
            server_first,
        )?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(SaslError::MalformedRequest);
        }
        if iterations < crate::DEFAULT_ITERATIONS {
            return Err(SaslError::MalformedRequest);
        }
        Ok(ScramClientFinal {
            message,
            server_signature,
        })
    }
}

/// The client's final message, and what the server must prove.
#[derive(Debug, Clone)]
pub struct ScramClientFinal {
    message: String,
    server_signature: Vec<u8>,
}

impl ScramClientFinal {
    /// The message to send (`c=biws,r=...,p=...`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Checks the server's final message (`v=<signature>`), in constant time. A server that
    /// cannot prove it knows the credential is refused even if it says "success".
    pub fn verify_server_final(&self, msg: &[u8]) -> Result<(), SaslError> {
        let text = std::str::from_utf8(msg).map_err(|_| SaslError::MalformedRequest)?;
        let v = attrs(text)
            .find(|(k, _)| *k == 'v')
            .map(|(_, v)| v)
            .ok_or(SaslError::MalformedRequest)?;
        let sig = B64.decode(v).map_err(|_| SaslError::IncorrectEncoding)?;
        if bool::from(sig.ct_eq(&self.server_signature)) {
            Ok(())
        } else {
            Err(SaslError::NotAuthorized)
        }
    }
}

/// The client half of SCRAM as one function, for tests and tools (the load generator): from
/// the password and the messages so far, the client's final message and the server signature
/// to expect. No nonce or iteration checks: see [`ScramClient`] for a client.
///
/// `client_first_bare` is `n=<user>,r=<nonce>`; `server_first` is the server's first message.
pub fn client_final(
    hash: ScramHash,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> Result<(String, Vec<u8>), SaslError> {
    final_message(hash, password, client_first_bare, server_first).map(|(m, s, _, _)| (m, s))
}

/// The client's final message, the server signature, the combined nonce and the iteration
/// count.
fn final_message(
    hash: ScramHash,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> Result<(String, Vec<u8>, String, u32), SaslError> {
    let mut nonce = None;
    let mut salt = None;
    let mut iterations = None;
    for (k, v) in attrs(server_first) {
        match k {
            'r' => nonce = Some(v),
            's' => salt = Some(B64.decode(v).map_err(|_| SaslError::IncorrectEncoding)?),
            'i' => iterations = v.parse::<u32>().ok(),
            'm' => return Err(SaslError::MalformedRequest),
            _ => {}
        }
    }
    let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
        return Err(SaslError::MalformedRequest);
    };
    if iterations == 0 {
        return Err(SaslError::MalformedRequest);
    }
    let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.hash(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hash.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hash.hmac(&salted, b"Server Key");
    let server_signature = hash.hmac(&server_key, auth_message.as_bytes());
    Ok((
        format!("{without_proof},p={}", B64.encode(proof)),
        server_signature,
        nonce.to_string(),
        iterations,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_side_rfc_vectors() {
        // RFC 5802 §5 (SHA-1) and RFC 7677 §3 (SHA-256).
        for (h, nonce, server_first, fin, server_final) in [
            (
                ScramHash::Sha1,
                "fyko+d2lbbFgONRv9qkxdawL",
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            ),
            (
                ScramHash::Sha256,
                "rOprNGfwEbeRWgbNEkqO",
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            ),
        ] {
            let c = ScramClient::with_nonce(h, "user", "pencil", nonce).unwrap();
            assert_eq!(c.client_first(), format!("n,,n=user,r={nonce}"));
            let f = c.server_first(server_first.as_bytes()).unwrap();
            assert_eq!(f.message(), fin);
            f.verify_server_final(server_final.as_bytes()).unwrap();
            assert_eq!(
                f.verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                Err(SaslError::NotAuthorized)
            );
            assert_eq!(
                f.verify_server_final(b"e=other-error"),
                Err(SaslError::MalformedRequest)
            );
        }
    }

    #[test]
    fn client_refuses_bad_server_messages() {
        let c = ScramClient::with_nonce(ScramHash::Sha256, "a,b=c", "pw", "abc").unwrap();
        assert_eq!(c.client_first(), "n,,n=a=2Cb=3Dc,r=abc");
        for bad in [
            "r=xyz123,s=QSXCR+Q6sek8bf92,i=4096", // does not extend our nonce
            "r=abc,s=QSXCR+Q6sek8bf92,i=4096",    // adds nothing to it
            "r=abc1,s=QSXCR+Q6sek8bf92,i=1",      // too few iterations
            "r=abc1,s=QSXCR+Q6sek8bf92,i=0",
            "r=abc1,i=4096", // no salt
            "m=ext,r=abc1,s=QSXCR+Q6sek8bf92,i=4096",
        ] {
            assert!(c.server_first(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            c.server_first(b"r=abc1,s=!!!,i=4096").unwrap_err(),
            SaslError::IncorrectEncoding
        );
    }

    fn cred(hash: ScramHash, password: &str, salt_b64: &str) -> ScramCredential {
        ScramCredential::derive(hash, password, B64.decode(salt_b64).unwrap(), 4096)
    }

    fn exchange(
        hash: ScramHash,
        cred: ScramCredential,
        client_first: &str,
        server_nonce: &str,
        client_final: &str,
    ) -> (String, Result<Vec<u8>, SaslError>) {
        let cf = ClientFirst::parse(hash, client_first.as_bytes()).unwrap();
        assert_eq!(cf.username, "user");
        let decoy = cred.clone();
        let (first, state) = cf.server_first(Some(cred), decoy, server_nonce);
        (
            String::from_utf8(first).unwrap(),
            state.client_final(client_final.as_bytes()),
        )
    }

    #[test]
    fn rfc5802_sha1_vector() {
        let (first, fin) = exchange(
            ScramHash::Sha1,
            cred(ScramHash::Sha1, "pencil", "QSXCR+Q6sek8bf92"),
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(
            first,
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
        );
        assert_eq!(fin.unwrap(), b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    #[test]
    fn rfc7677_sha256_vector() {
        let (first, fin) = exchange(
            ScramHash::Sha256,
            cred(ScramHash::Sha256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ=="),
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(
            first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        assert_eq!(
            fin.unwrap(),
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn wrong_password_and_tampering() {
        let c = cred(ScramHash::Sha1, "wrong", "QSXCR+Q6sek8bf92");
        let (_, fin) = exchange(
            ScramHash::Sha1,
            c,
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(fin, Err(SaslError::NotAuthorized));
        let c = cred(ScramHash::Sha1, "pencil", "QSXCR+Q6sek8bf92");
        // A nonce that is not the combined one.
        let (_, fin) = exchange(
            ScramHash::Sha1,
            c.clone(),
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(fin, Err(SaslError::NotAuthorized));
        // A channel-binding header that differs from the first message's.
        let (_, fin) = exchange(
            ScramHash::Sha1,
            c,
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "c=eSws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(fin, Err(SaslError::NotAuthorized));
    }

    #[test]
    fn unknown_users_fail_only_at_the_end() {
        let decoy = cred(ScramHash::Sha1, "x", "AAAA");
        let cf = ClientFirst::parse(ScramHash::Sha1, b"n,,n=nobody,r=abc").unwrap();
        let (first, state) = cf.server_first(None, decoy, "def");
        assert!(
            String::from_utf8(first)
                .unwrap()
                .starts_with("r=abcdef,s=AAAA,i=4096")
        );
        assert_eq!(
            state.client_final(b"c=biws,r=abcdef,p=AAAA"),
            Err(SaslError::NotAuthorized)
        );
    }

    #[test]
    fn malformed_first_messages() {
        for m in [
            "",
            "n",
            "x,,n=u,r=a",
            "p=tls-unique,,n=u,r=a",
            "n,,r=a",
            "n,,n=u",
            "n,,n=u=,r=a",
            "n,,m=ext,n=u,r=a",
            "n,b,n=u,r=a",
        ] {
            assert_eq!(
                ClientFirst::parse(ScramHash::Sha1, m.as_bytes()).unwrap_err(),
                SaslError::MalformedRequest,
                "{m:?}"
            );
        }
        let cf = ClientFirst::parse(ScramHash::Sha1, b"n,a=ad=2Cmin,n=us=3Der,r=a").unwrap();
        assert_eq!(cf.username, "us=er");
        assert_eq!(cf.authzid.as_deref(), Some("ad,min"));
    }

    #[test]
    fn client_half_matches_the_rfc_vector() {
        let (fin, sig) = client_final(
            ScramHash::Sha1,
            "pencil",
            "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        )
        .unwrap();
        assert_eq!(
            fin,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        assert_eq!(B64.encode(sig), "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    #[test]
    fn plain_verification_uses_the_stored_keys() {
        let c = ScramCredential::derive(ScramHash::Sha256, "s3cret", vec![1, 2, 3], 4096);
        assert!(c.verify_password(ScramHash::Sha256, "s3cret"));
        assert!(!c.verify_password(ScramHash::Sha256, "s3cret "));
    }
}
