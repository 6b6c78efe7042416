//! Finding the server through DNS SRV records (RFC 6120 §3.2.1; XEP-0368 for direct TLS):
//! `_xmpp-client._tcp.<domain>` or `_xmpps-client._tcp.<domain>`, tried by priority, then
//! by weight. With no records, the caller falls back to the domain itself.

use hickory_resolver::TokioResolver;

/// The targets (`host`, `port`) for `domain`, in the order to try them; empty when there
/// are no records or DNS fails. `Err` when the records say the service is not offered
/// (a single target `.`).
pub(crate) async fn targets(domain: &str, direct_tls: bool) -> Result<Vec<(String, u16)>, ()> {
    let service = if direct_tls {
        "_xmpps-client._tcp"
    } else {
        "_xmpp-client._tcp"
    };
    let Ok(builder) = TokioResolver::builder_tokio() else {
        return Ok(Vec::new());
    };
    let resolver = builder.build();
    let Ok(lookup) = resolver.srv_lookup(format!("{service}.{domain}.")).await else {
        return Ok(Vec::new());
    };
    let mut records: Vec<(u16, u16, String, u16)> = lookup
        .iter()
        .map(|r| {
            let host = r.target().to_utf8();
            (
                r.priority(),
                r.weight(),
                host.trim_end_matches('.').to_string(),
                r.port(),
            )
        })
        .collect();
    if records.len() == 1 && records[0].2.is_empty() {
        return Err(());
    }
    order(&mut records);
    Ok(records.into_iter().map(|(_, _, h, p)| (h, p)).collect())
}

/// Lowest priority first; within a priority, heavier weights first (a deterministic stand-in
/// for RFC 2782's weighted random choice, which matters for load spreading, not for a
/// single client).
fn order(records: &mut [(u16, u16, String, u16)]) {
    records.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
}

#[cfg(test)]
mod tests {
    #[test]
    fn priority_then_weight() {
        let mut r = vec![
            (20, 0, "c".to_string(), 5222),
            (10, 5, "b".to_string(), 5222),
            (10, 60, "a".to_string(), 5222),
        ];
        super::order(&mut r);
        let hosts: Vec<&str> = r.iter().map(|x| x.2.as_str()).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
    }
}
