//! Persistent rooms in the server's database: their configuration (as the submitted form),
//! subject and affiliations. Temporary rooms are never written.

use lithos_core::{Element, Payload};
use lithos_server::params;
use lithos_server::storage::{Database, ModuleSchema, StorageResult};
use lithos_xdata::{Form, FormType};

use crate::Affiliation;
use crate::config::RoomConfig;
use crate::room::Subject;

/// The tables.
pub const SCHEMA: ModuleSchema = ModuleSchema {
    module: "muc",
    migrations: &[
        // 1
        "CREATE TABLE muc_rooms (
            name TEXT PRIMARY KEY, config TEXT NOT NULL,
            subject TEXT NOT NULL, subject_by TEXT NOT NULL
         );
         CREATE TABLE muc_affiliations (
            room TEXT NOT NULL, jid TEXT NOT NULL, affiliation TEXT NOT NULL,
            PRIMARY KEY (room, jid)
         );
         CREATE INDEX muc_affiliations_by_jid ON muc_affiliations (jid);",
    ],
    postgres: Some(&["CREATE TABLE muc_rooms (
            name TEXT PRIMARY KEY, config TEXT NOT NULL,
            subject TEXT NOT NULL, subject_by TEXT NOT NULL
         );
         CREATE TABLE muc_affiliations (
            room TEXT NOT NULL, jid TEXT NOT NULL, affiliation TEXT NOT NULL,
            PRIMARY KEY (room, jid)
         );
         CREATE INDEX muc_affiliations_by_jid ON muc_affiliations (jid);"]),
    // A deleted account loses its affiliations (rooms it owned alone keep no owner; the
    // server's admins can take them over by configuration).
    account_deleted: &["DELETE FROM muc_affiliations WHERE jid = ?2"],
};

/// What is kept of a persistent room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The room's local part.
    pub name: String,
    /// Its configuration.
    pub config: RoomConfig,
    /// Its subject.
    pub subject: Subject,
    /// Its affiliations other than `none`, by bare JID.
    pub affiliations: Vec<(String, Affiliation)>,
}

fn config_xml(config: &RoomConfig) -> String {
    let mut form = config.to_form();
    form.type_ = FormType::Submit;
    form.to_element().to_xml()
}

/// Writes a persistent room (replacing what was kept of it).
pub async fn save(db: &Database, room: Saved) -> StorageResult<()> {
    db.run(move |c| {
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO muc_rooms (name, config, subject, subject_by) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET config = ?2, subject = ?3, subject_by = ?4",
            params![
                room.name,
                config_xml(&room.config),
                room.subject.text,
                room.subject.by
            ],
        )?;
        tx.execute(
            "DELETE FROM muc_affiliations WHERE room = ?1",
            params![room.name],
        )?;
        for (jid, a) in &room.affiliations {
            tx.execute(
                "INSERT INTO muc_affiliations (room, jid, affiliation) VALUES (?1, ?2, ?3)",
                params![room.name, jid, a.as_str()],
            )?;
        }
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Forgets a room (destroyed, or no longer persistent).
pub async fn delete(db: &Database, name: &str) -> StorageResult<()> {
    let name = name.to_string();
    db.run(move |c| {
        let mut tx = c.transaction()?;
        tx.execute("DELETE FROM muc_rooms WHERE name = ?1", params![name])?;
        tx.execute(
            "DELETE FROM muc_affiliations WHERE room = ?1",
            params![name],
        )?;
        tx.commit()?;
        Ok(())
    })
    .await
}

/// Every persistent room, with `max_users` as the service's bound.
pub async fn load(db: &Database, max_users: usize) -> StorageResult<Vec<Saved>> {
    let rows = db
        .run(|c| {
            let rooms = c.query_map(
                "SELECT name, config, subject, subject_by FROM muc_rooms",
                params![],
                |r| {
                    Ok((
                        r.get::<String>(0)?,
                        r.get::<String>(1)?,
                        r.get::<String>(2)?,
                        r.get::<String>(3)?,
                    ))
                },
            )?;
            let affs = c.query_map(
                "SELECT room, jid, affiliation FROM muc_affiliations",
                params![],
                |r| {
                    Ok((
                        r.get::<String>(0)?,
                        r.get::<String>(1)?,
                        r.get::<String>(2)?,
                    ))
                },
            )?;
            Ok((rooms, affs))
        })
        .await?;
    let (rooms, affs) = rows;
    let mut out = Vec::with_capacity(rooms.len());
    for (name, config, subject, by) in rooms {
        // A room whose row cannot be read is left out (and said so), not every room.
        let form = Element::parse(&config)
            .ok()
            .and_then(|e| Form::from_element(e).ok());
        let mut c = RoomConfig::new(max_users);
        let applied = form.map(|f| c.apply(&f, max_users));
        if !matches!(applied, Some(Ok(()))) {
            tracing::error!(room = %name, "a persistent room's configuration is unreadable; the room is not loaded");
            continue;
        }
        let affiliations = affs
            .iter()
            .filter(|(room, _, _)| *room == name)
            .filter_map(|(_, jid, a)| Affiliation::parse(a).map(|a| (jid.clone(), a)))
            .collect();
        out.push(Saved {
            name,
            config: c,
            subject: Subject { text: subject, by },
            affiliations,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rooms_are_kept_and_forgotten() {
        for db in lithos_testkit::databases("rooms_are_kept_and_forgotten").await {
            let on = db.dialect();
            let mut config = RoomConfig::new(50);
            config.name = "Council".into();
            config.persistent = true;
            config.password = Some("pw".into());
            let room = Saved {
                name: "council".into(),
                config,
                subject: Subject {
                    text: "Verona".into(),
                    by: "juliet".into(),
                },
                affiliations: vec![
                    ("juliet@localhost".into(), Affiliation::Owner),
                    ("tybalt@localhost".into(), Affiliation::Outcast),
                ],
            };
            save(&db, room.clone()).await.unwrap();
            save(&db, room.clone()).await.unwrap();
            assert_eq!(load(&db, 50).await.unwrap(), vec![room], "{on:?}");
            delete(&db, "council").await.unwrap();
            assert!(load(&db, 50).await.unwrap().is_empty(), "{on:?}");
        }
    }
}
