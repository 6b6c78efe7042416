//! Random identifiers: stream ids, generated resources, resumption and archive ids.

/// `BYTES` random bytes, in lowercase hex (twice as many characters).
pub fn random_hex<const BYTES: usize>() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; BYTES];
    rand::fill(&mut b[..]);
    let mut s = String::with_capacity(BYTES * 2);
    for x in b {
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn lengths_and_alphabet() {
        let a = super::random_hex::<16>();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, super::random_hex::<16>());
    }
}
