//! The partner's shared items on a person's devices: `partner_items`, a synced
//! table of the *recipient*, written only here.
//!
//! Each item is stored under the recipient, at the recipient's versions, with
//! its text sealed for the recipient. So the recipient's own pull carries it by
//! the usual rule (a pull returns changes up to the newest committed version of
//! the puller, and every writer takes that version under the puller's
//! `sync_state` lock): an item shared while the partner pulls is in that pull or
//! the next. Whoever writes a partner's items first locks both people's rows in
//! the order of their ids ([`lock_pair`]), so two partners pushing at once never
//! deadlock; the partner's version moves only when an item of theirs changes.
//!
//! Only what the author marked shared leaves: the kind, a boundary's kind and
//! the text. Never a step, prompt, date, score or version of the author's; an
//! item's id is a hash, not the author's record id. Unsharing, deleting, an
//! inactive boundary, unlinking or deleting the account send it as deleted.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    SyncError, SyncService,
    sql::{self, ID_CHUNK, StoredRecord},
    tables::{self, Cell, PARTNER_ITEMS, SyncTable},
};
use crate::{
    crypto::Binding,
    entities::{
        boundary::{self, Entity as Boundary},
        journal_entry::{self, Entity as JournalEntry},
    },
};

/// Locks both people's sync rows, in the order of their ids (a row made here
/// starts at `now_ms`, as a pull would make it).
pub async fn lock_pair(
    conn: &impl ConnectionTrait,
    a: Uuid,
    b: Option<Uuid>,
    now_ms: i64,
) -> Result<(), sea_orm::DbErr> {
    let mut people = vec![a];
    people.extend(b);
    people.sort();
    people.dedup();
    for person in people {
        sql::lock_state(conn, person, now_ms).await?;
    }
    Ok(())
}

/// The recipient's id for an author's item: a hash, so nothing of the author's
/// own record ids reaches the other device.
fn item_id(kind: &str, record_id: &str) -> String {
    hex::encode(Sha256::digest(format!("{kind}:{record_id}").as_bytes()))[..40].to_owned()
}

fn items_table() -> &'static SyncTable {
    tables::partner_items()
}

/// An item as the author holds it: its recipient-side id and, when shared, its
/// cells in plaintext (`None`: not shared, or gone).
struct Candidate {
    id: String,
    shared: Option<(&'static str, Option<String>, String)>,
}

impl SyncService {
    /// Brings the recipient's copies of the author's `boundaries` and
    /// `journal_entries` among `touched` up to date, on `conn` (both rows
    /// locked by [`lock_pair`]). Returns how many items the recipient did not
    /// hold before (newly shared).
    pub async fn deliver_to_partner(
        &self,
        conn: &impl ConnectionTrait,
        author: Uuid,
        recipient: Uuid,
        touched: &[(&'static str, Vec<String>)],
    ) -> Result<usize, SyncError> {
        let mut candidates = Vec::new();
        for (table, ids) in touched {
            for chunk in ids.chunks(ID_CHUNK) {
                candidates.extend(self.candidates(conn, author, table, Some(chunk)).await?);
            }
        }
        self.apply(conn, recipient, candidates).await
    }

    /// Everything the author shares, to a new partner.
    pub async fn deliver_all_to_partner(
        &self,
        conn: &impl ConnectionTrait,
        author: Uuid,
        recipient: Uuid,
    ) -> Result<(), SyncError> {
        let mut candidates = self.candidates(conn, author, "boundaries", None).await?;
        candidates.extend(self.candidates(conn, author, "journal_entries", None).await?);
        self.apply(conn, recipient, candidates).await.map(|_| ())
    }

    /// Every partner item the person holds leaves their devices (unlinked).
    pub async fn withdraw_partner_items(
        &self,
        conn: &impl ConnectionTrait,
        recipient: Uuid,
    ) -> Result<(), sea_orm::DbErr> {
        sql::plan_for_values(conn).await?;
        let held = sql::all_ids(conn, items_table(), recipient).await?;
        if held.is_empty() {
            return Ok(());
        }
        let version = sql::next_version(conn, recipient, self.clock.now_ms()).await?;
        let ids: Vec<&str> = held.iter().map(String::as_str).collect();
        sql::delete(conn, items_table(), recipient, version, &ids).await?;
        Ok(())
    }

    async fn candidates(
        &self,
        conn: &impl ConnectionTrait,
        author: Uuid,
        table: &str,
        ids: Option<&[String]>,
    ) -> Result<Vec<Candidate>, SyncError> {
        let mut out = Vec::new();
        match table {
            "boundaries" => {
                let mut query = Boundary::find().filter(boundary::Column::UserId.eq(author));
                query = match ids {
                    Some(ids) => query.filter(boundary::Column::Id.is_in(ids.iter().cloned())),
                    None => query.filter(boundary::Column::SharedWithPartner.eq(true)),
                };
                let rows = query.all(conn).await?;
                for id in ids.into_iter().flatten() {
                    let row = rows.iter().find(|r| &r.id == id).filter(|r| r.shared_with_partner && r.active);
                    let shared = match row {
                        Some(row) => {
                            let text = self.open(author, "boundaries", "text", &row.id, &row.text)?;
                            Some(("boundary", Some(row.kind.clone()), text))
                        }
                        None => None,
                    };
                    out.push(Candidate { id: item_id("boundary", id), shared });
                }
                if ids.is_none() {
                    for row in rows.iter().filter(|r| r.active) {
                        let text = self.open(author, "boundaries", "text", &row.id, &row.text)?;
                        let shared = Some(("boundary", Some(row.kind.clone()), text));
                        out.push(Candidate { id: item_id("boundary", &row.id), shared });
                    }
                }
            }
            "journal_entries" => {
                let mut query = JournalEntry::find().filter(journal_entry::Column::UserId.eq(author));
                query = match ids {
                    Some(ids) => query.filter(journal_entry::Column::Id.is_in(ids.iter().cloned())),
                    None => query.filter(journal_entry::Column::SharedWithPartner.eq(true)),
                };
                let rows = query.all(conn).await?;
                let shared_row =
                    |id: &str| rows.iter().find(|r| r.id == id).filter(|r| r.shared_with_partner == Some(true));
                let listed: Vec<String> = match ids {
                    Some(ids) => ids.to_vec(),
                    None => rows.iter().map(|r| r.id.clone()).collect(),
                };
                for id in listed {
                    let shared = match shared_row(&id) {
                        Some(row) => {
                            let text = self.open(author, "journal_entries", "body", &row.id, &row.body)?;
                            Some(("journal_entry", None, text))
                        }
                        None => None,
                    };
                    out.push(Candidate { id: item_id("journal_entry", &id), shared });
                }
            }
            // Check-ins and anything else are never shared.
            _ => {}
        }
        Ok(out)
    }

    fn open(&self, author: Uuid, table: &str, column: &str, id: &str, stored: &str) -> Result<String, SyncError> {
        Ok(self.cipher.open(stored, &Binding { user_id: author, table, column, record_id: id })?)
    }

    /// Stores the shared candidates for the recipient and deletes the copies of
    /// the others that the recipient holds (only those: a deletion of something
    /// never shared would tell the partner that the author wrote something).
    /// Returns how many shared ones the recipient did not hold.
    async fn apply(
        &self,
        conn: &impl ConnectionTrait,
        recipient: Uuid,
        candidates: Vec<Candidate>,
    ) -> Result<usize, SyncError> {
        let table = items_table();
        let ids: Vec<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
        sql::plan_for_values(conn).await?;
        let held = sql::row_versions(conn, table, recipient, &ids).await?;
        let gone: Vec<&str> = candidates
            .iter()
            .filter(|c| c.shared.is_none() && held.contains_key(&c.id))
            .map(|c| c.id.as_str())
            .collect();
        let new = candidates.iter().filter(|c| c.shared.is_some() && !held.contains_key(&c.id)).count();
        let records: Vec<StoredRecord> = candidates
            .iter()
            .filter_map(|c| c.shared.as_ref().map(|shared| (c, shared)))
            .map(|(c, (kind, boundary_kind, text))| {
                let binding = Binding { user_id: recipient, table: PARTNER_ITEMS, column: "text", record_id: &c.id };
                let cells = vec![
                    Cell::Text((*kind).to_owned()),
                    boundary_kind.clone().map_or(Cell::Null, Cell::Text),
                    Cell::Text(self.cipher.seal(text, &binding)),
                ];
                StoredRecord { id: c.id.clone(), cells }
            })
            .collect();
        if records.is_empty() && gone.is_empty() {
            return Ok(0);
        }
        let version = sql::next_version(conn, recipient, self.clock.now_ms()).await?;
        sql::upsert(conn, table, recipient, version, &records).await?;
        let recreated: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        sql::forget_tombstones(conn, table, recipient, &recreated).await?;
        sql::delete(conn, table, recipient, version, &gone).await?;
        Ok(new)
    }
}
