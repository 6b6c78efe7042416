//! A room's configuration and its `muc#roomconfig` data form (XEP-0045 §10.2).

use lithos_xdata::{Field, Form, FormType};

use crate::NS_ROOMCONFIG;

/// Who sees occupants' real addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whois {
    /// Moderators only (semi-anonymous).
    Moderators,
    /// Every occupant (non-anonymous).
    Anyone,
}

/// A room's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    /// A human-readable name.
    pub name: String,
    /// A description.
    pub description: String,
    /// Kept (with its affiliations and subject) when empty and across restarts.
    pub persistent: bool,
    /// Listed in the service's disco#items.
    pub public: bool,
    /// Only members (and admins and owners) enter.
    pub members_only: bool,
    /// Only participants and moderators speak; newcomers without affiliation are visitors.
    pub moderated: bool,
    /// The password to enter, if any.
    pub password: Option<String>,
    /// Who sees real addresses.
    pub whois: Whois,
    /// Participants may change the subject (otherwise moderators only).
    pub change_subject: bool,
    /// Occupants may invite (otherwise, in a members-only room, admins and owners only).
    pub allow_invites: bool,
    /// Occupants at most.
    pub max_users: usize,
    /// Groupchat messages are archived (XEP-0313; while the server's `mam` module runs).
    pub archiving: bool,
}

impl RoomConfig {
    /// The defaults of a new room, with the service's bound on occupants.
    pub fn new(max_users: usize) -> RoomConfig {
        RoomConfig {
            name: String::new(),
            description: String::new(),
            persistent: false,
            public: true,
            members_only: false,
            moderated: false,
            password: None,
            whois: Whois::Moderators,
            change_subject: false,
            allow_invites: true,
            max_users,
            archiving: true,
        }
    }

    /// The configuration form (`type='form'`), filled in with the current values.
    pub fn to_form(&self) -> Form {
        let flag = |var: &str, label: &str, v: bool| {
            field(
                var,
                "boolean",
                label,
                vec![if v { "1" } else { "0" }.into()],
            )
        };
        let whois = match self.whois {
            Whois::Moderators => "moderators",
            Whois::Anyone => "anyone",
        };
        Form::new(FormType::Form, NS_ROOMCONFIG)
            .with(field(
                "muc#roomconfig_roomname",
                "text-single",
                "Name",
                vec![self.name.clone()],
            ))
            .with(field(
                "muc#roomconfig_roomdesc",
                "text-single",
                "Description",
                vec![self.description.clone()],
            ))
            .with(flag(
                "muc#roomconfig_persistentroom",
                "Keep the room when empty",
                self.persistent,
            ))
            .with(flag(
                "muc#roomconfig_publicroom",
                "List the room publicly",
                self.public,
            ))
            .with(flag(
                "muc#roomconfig_membersonly",
                "Members only",
                self.members_only,
            ))
            .with(flag(
                "muc#roomconfig_moderatedroom",
                "Moderated",
                self.moderated,
            ))
            .with(flag(
                "muc#roomconfig_passwordprotectedroom",
                "Password required",
                self.password.is_some(),
            ))
            .with(field(
                "muc#roomconfig_roomsecret",
                "text-private",
                "Password",
                self.password.iter().cloned().collect(),
            ))
            .with(
                field(
                    "muc#roomconfig_whois",
                    "list-single",
                    "Who may see real addresses",
                    vec![whois.into()],
                )
                .with_options(&[("Moderators only", "moderators"), ("Anyone", "anyone")]),
            )
            .with(flag(
                "muc#roomconfig_changesubject",
                "Occupants may change the subject",
                self.change_subject,
            ))
            .with(flag(
                "muc#roomconfig_allowinvites",
                "Occupants may invite",
                self.allow_invites,
            ))
            .with(field(
                "muc#roomconfig_maxusers",
                "text-single",
                "Occupants at most",
                vec![self.max_users.to_string()],
            ))
            .with(flag(
                "muc#roomconfig_enablearchiving",
                "Archive the messages (XEP-0313)",
                self.archiving,
            ))
    }

    /// Applies a submitted form: fields it leaves out keep their values; `max_users` is
    /// capped by `service_max`. An unknown field or a bad value is an error (its text says
    /// which).
    pub fn apply(&mut self, form: &Form, service_max: usize) -> Result<(), String> {
        let mut next = self.clone();
        let (mut protected, mut secret): (Option<bool>, Option<String>) = (None, None);
        for f in &form.fields {
            let Some(var) = f.var.as_deref() else {
                continue;
            };
            let v = f.first().unwrap_or_default();
            let flag = || match v {
                "1" | "true" => Ok(true),
                "0" | "false" | "" => Ok(false),
                _ => Err(format!("{var}: {v:?} is not a boolean")),
            };
            match var {
                "FORM_TYPE" => {}
                "muc#roomconfig_roomname" => next.name = v.to_string(),
                "muc#roomconfig_roomdesc" => next.description = v.to_string(),
                "muc#roomconfig_persistentroom" => next.persistent = flag()?,
                "muc#roomconfig_publicroom" => next.public = flag()?,
                "muc#roomconfig_membersonly" => next.members_only = flag()?,
                "muc#roomconfig_moderatedroom" => next.moderated = flag()?,
                // Both read after the loop: the flag wins over a secret echoed back.
                "muc#roomconfig_passwordprotectedroom" => protected = Some(flag()?),
                "muc#roomconfig_roomsecret" => secret = Some(v.to_string()),
                "muc#roomconfig_whois" => {
                    next.whois = match v {
                        "moderators" => Whois::Moderators,
                        "anyone" => Whois::Anyone,
                        _ => return Err(format!("{var}: {v:?} is neither moderators nor anyone")),
                    }
                }
                "muc#roomconfig_changesubject" => next.change_subject = flag()?,
                "muc#roomconfig_allowinvites" => next.allow_invites = flag()?,
                "muc#roomconfig_enablearchiving" => next.archiving = flag()?,
                "muc#roomconfig_maxusers" => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| format!("{var}: {v:?} is not a number"))?;
                    next.max_users = n.clamp(1, service_max);
                }
                // Fields other services offer, that this one does not act on: accepted and
                // ignored, as a client may send back a whole form it got elsewhere.
                _ => {}
            }
        }
        if let Some(s) = secret {
            next.password = (!s.is_empty()).then_some(s);
        }
        match protected {
            Some(false) => next.password = None,
            Some(true) if next.password.is_none() => {
                return Err("a password-protected room needs muc#roomconfig_roomsecret".into());
            }
            _ => {}
        }
        *self = next;
        Ok(())
    }
}

/// A field of the form, labelled.
fn field(var: &str, kind: &str, label: &str, values: Vec<String>) -> Field {
    Field {
        label: Some(label.into()),
        ..Field::new(var, Some(kind), values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Payload;

    fn submit(fields: &[(&str, &str)]) -> Form {
        let mut f = Form::new(FormType::Submit, NS_ROOMCONFIG);
        for (var, value) in fields {
            f = f.with(Field::new(var, None, vec![value.to_string()]));
        }
        f
    }

    #[test]
    fn a_submitted_form_changes_what_it_names() {
        let mut c = RoomConfig::new(200);
        c.apply(
            &submit(&[
                ("muc#roomconfig_roomname", "Council"),
                ("muc#roomconfig_persistentroom", "1"),
                ("muc#roomconfig_membersonly", "true"),
                ("muc#roomconfig_roomsecret", "s3cret"),
                ("muc#roomconfig_passwordprotectedroom", "1"),
                ("muc#roomconfig_whois", "anyone"),
                ("muc#roomconfig_maxusers", "5000"),
                ("muc#roomconfig_enablelogging", "1"),
            ]),
            200,
        )
        .unwrap();
        assert_eq!(c.name, "Council");
        assert!(c.persistent && c.members_only && !c.moderated);
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert_eq!(c.whois, Whois::Anyone);
        assert_eq!(c.max_users, 200, "capped by the service");
        // The form reads back the same.
        let mut again = RoomConfig::new(200);
        let form = Form::from_element(c.to_form().to_element()).unwrap();
        let mut submitted = form.clone();
        submitted.type_ = FormType::Submit;
        again.apply(&submitted, 200).unwrap();
        assert_eq!(again, c);
        // Errors change nothing.
        let before = c.clone();
        assert!(
            c.apply(&submit(&[("muc#roomconfig_persistentroom", "maybe")]), 200)
                .is_err()
        );
        assert!(
            c.apply(&submit(&[("color", "red")]), 200).is_ok(),
            "fields of other services are ignored"
        );
        assert_eq!(c, before);
        // Unticking the flag wins over the secret the form echoes back.
        c.apply(
            &submit(&[
                ("muc#roomconfig_passwordprotectedroom", "0"),
                ("muc#roomconfig_roomsecret", "s3cret"),
            ]),
            200,
        )
        .unwrap();
        assert_eq!(c.password, None);
        c = before.clone();
        assert!(
            c.apply(&submit(&[("muc#roomconfig_roomsecret", "")]), 200)
                .is_ok(),
            "an empty secret removes the password"
        );
        assert_eq!(c.password, None);
        assert_ne!(c, before);
        assert!(
            RoomConfig::new(10)
                .apply(
                    &submit(&[("muc#roomconfig_passwordprotectedroom", "1")]),
                    10
                )
                .is_err(),
            "protected without a secret"
        );
    }
}
