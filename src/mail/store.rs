//! The outbox's durable state in one sled tree, as JSON values under key prefixes:
//! `q/<u64 big-endian>` holds a pending notification with its retry state (the counter,
//! stored under `n/next_id` and never reused, makes iteration follow enqueue order),
//! `i/<key>` maps a pending idempotency key to its `q/` entry, and `s/<key>` remembers keys
//! already delivered or dropped so that a re-enqueue does not mail twice.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Error, Notification};

const QUEUE: &[u8] = b"q/";
const INDEX: &[u8] = b"i/";
const SETTLED: &[u8] = b"s/";
const NEXT_ID: &[u8] = b"n/next_id";

/// A pending notification and how its delivery went so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    /// What to send.
    pub notification: Notification,
    /// When it was enqueued.
    pub enqueued_unix_ms: u64,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// Not to be tried before this time.
    pub next_attempt_unix_ms: u64,
    /// Why the last attempt failed, for whoever inspects the database.
    pub last_error: Option<String>,
}

/// Why a key left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Settlement {
    /// The server accepted it.
    Sent,
    /// The server rejected it for good, or it could not be built.
    Dropped,
}

#[derive(Debug, Serialize, Deserialize)]
struct SettledMark {
    how: Settlement,
    at_unix_ms: u64,
}

/// Position of a record in the queue.
pub(super) type QueueId = u64;

/// The outbox tree.
#[derive(Debug)]
pub(super) struct Store {
    tree: sled::Tree,
}

impl Store {
    /// Opens the store; a tree without a counter yet continues after its newest record.
    pub fn open(tree: sled::Tree) -> Result<Self, Error> {
        if tree.get(NEXT_ID)?.is_none() {
            let next_id = match tree.scan_prefix(QUEUE).next_back().transpose()? {
                Some((key, _)) => queue_id(&key).map_or(0, |id| id + 1),
                None => 0,
            };
            // Only if still absent, in case another handle initialised it meanwhile.
            let _ = tree.compare_and_swap(NEXT_ID, None::<&[u8]>, Some(&next_id.to_be_bytes()))?;
        }
        Ok(Self { tree })
    }

    /// Stores `n` unless its key is pending or settled; returns whether it was stored.
    pub fn insert_new(&self, n: &Notification, now_unix_ms: u64) -> Result<bool, Error> {
        let record = Record {
            notification: n.clone(),
            enqueued_unix_ms: now_unix_ms,
            attempts: 0,
            next_attempt_unix_ms: now_unix_ms,
            last_error: None,
        };
        let value = to_json(&n.key, &record)?;
        let index_key = prefixed(INDEX, &n.key);
        let settled_key = prefixed(SETTLED, &n.key);
        // A transaction, so two concurrent enqueues of one key cannot both win and the
        // counter is never handed out twice.
        let stored = self.tree.transaction(|tx| {
            if tx.get(&settled_key)?.is_some() {
                return Ok(false);
            }
            if let Some(id) = tx.get(&index_key)? {
                // An index entry whose record is gone (removed as unreadable) is stale;
                // ids are never reused, so a present record is this key's.
                let pending = match <[u8; 8]>::try_from(id.as_ref()) {
                    Ok(id) => tx.get(queue_key(u64::from_be_bytes(id)))?.is_some(),
                    Err(_) => false,
                };
                if pending {
                    return Ok(false);
                }
            }
            let id = tx
                .get(NEXT_ID)?
                .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                .map_or(0, u64::from_be_bytes);
            tx.insert(NEXT_ID, &(id + 1).to_be_bytes())?;
            tx.insert(index_key.as_slice(), &id.to_be_bytes())?;
            tx.insert(queue_key(id), value.as_slice())?;
            Ok::<_, ConflictableTransactionError<()>>(true)
        });
        match stored {
            Ok(stored) => Ok(stored),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            // Nothing above aborts.
            Err(TransactionError::Abort(())) => Ok(false),
        }
    }

    /// All pending records, oldest first. Unreadable ones are logged and removed, so that
    /// one corrupt entry cannot stall the queue forever.
    pub fn records(&self) -> Result<Vec<(QueueId, Record)>, Error> {
        let mut records = Vec::new();
        for entry in self.tree.scan_prefix(QUEUE) {
            let (key, value) = entry?;
            let parsed = queue_id(&key).ok_or_else(|| Error::Record {
                key: String::from_utf8_lossy(&key).into_owned(),
                source: serde::de::Error::custom("the key is not q/ and 8 bytes"),
            });
            match parsed.and_then(|id| Ok((id, from_json::<Record>(&key, &value)?))) {
                Ok(record) => records.push(record),
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        value = %String::from_utf8_lossy(&value),
                        "dropping an unreadable mail outbox record"
                    );
                    self.tree.remove(&key)?;
                }
            }
        }
        Ok(records)
    }

    /// When the earliest pending record is due, if any.
    pub fn next_due_unix_ms(&self) -> Result<Option<u64>, Error> {
        Ok(self
            .records()?
            .iter()
            .map(|(_, r)| r.next_attempt_unix_ms)
            .min())
    }

    /// Stores the new retry state of a record.
    pub fn reschedule(&self, id: QueueId, record: &Record) -> Result<(), Error> {
        let value = to_json(&record.notification.key, record)?;
        self.tree.insert(queue_key(id), value)?;
        Ok(())
    }

    /// Removes a record from the queue and remembers its key as settled.
    pub fn settle(
        &self,
        id: QueueId,
        key: &str,
        how: Settlement,
        now_unix_ms: u64,
    ) -> Result<(), Error> {
        let mark = SettledMark {
            how,
            at_unix_ms: now_unix_ms,
        };
        let mut batch = sled::Batch::default();
        batch.remove(queue_key(id));
        batch.remove(prefixed(INDEX, key));
        batch.insert(prefixed(SETTLED, key), to_json(key, &mark)?);
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Forgets settled keys older than `before_unix_ms`; returns how many.
    pub fn prune_settled(&self, before_unix_ms: u64) -> Result<usize, Error> {
        let mut batch = sled::Batch::default();
        let mut pruned = 0;
        for entry in self.tree.scan_prefix(SETTLED) {
            let (key, value) = entry?;
            // An unreadable mark is useless; forget it too.
            let old = serde_json::from_slice::<SettledMark>(&value)
                .map_or(true, |m| m.at_unix_ms < before_unix_ms);
            if old {
                batch.remove(key);
                pruned += 1;
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(pruned)
    }

    /// Pending notifications.
    pub fn pending(&self) -> Result<usize, Error> {
        let mut count = 0;
        for entry in self.tree.scan_prefix(QUEUE) {
            entry?;
            count += 1;
        }
        Ok(count)
    }

    /// Makes everything written so far durable, without blocking the runtime.
    pub async fn flush(&self) -> Result<(), Error> {
        self.tree.flush_async().await?;
        Ok(())
    }
}

fn queue_key(id: QueueId) -> Vec<u8> {
    let mut key = QUEUE.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn queue_id(key: &[u8]) -> Option<QueueId> {
    let bytes: [u8; 8] = key.strip_prefix(QUEUE)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

fn prefixed(prefix: &[u8], key: &str) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(key.as_bytes());
    out
}

fn to_json<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|source| Error::Record {
        key: key.to_owned(),
        source,
    })
}

fn from_json<T: for<'de> Deserialize<'de>>(key: &[u8], value: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(value).map_err(|source| Error::Record {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::Outcome;

    fn notification(key: &str) -> Notification {
        Notification {
            key: key.into(),
            to: vec!["ann@example.org".into()],
            job_id: "job-000001".into(),
            job_name: "clip".into(),
            outcome: Outcome::Failed {
                failed_dir: "/srv/failed/clip".into(),
                error: "boom".into(),
                how_to_fix: None,
                attempts: 1,
            },
            poster_png: None,
        }
    }

    #[test]
    fn order_dedupe_settle_and_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("open db");
        let store = Store::open(db.open_tree("mail").expect("tree")).expect("store");
        // More than 255 so a little-endian or text counter would sort wrongly.
        for i in 0..300 {
            assert!(
                store
                    .insert_new(&notification(&format!("k{i}")), 5)
                    .expect("insert")
            );
        }
        assert!(!store.insert_new(&notification("k7"), 6).expect("insert"));
        let records = store.records().expect("records");
        let keys: Vec<_> = records
            .iter()
            .map(|(_, r)| r.notification.key.clone())
            .collect();
        let expected: Vec<_> = (0..300).map(|i| format!("k{i}")).collect();
        assert_eq!(keys, expected);

        let (id, record) = &records[0];
        store
            .settle(*id, &record.notification.key, Settlement::Sent, 10)
            .expect("settle");
        assert!(!store.insert_new(&notification("k0"), 11).expect("insert"));
        assert_eq!(store.pending().expect("pending"), 299);

        drop(store);
        let store = Store::open(db.open_tree("mail").expect("tree")).expect("store");
        assert!(store.insert_new(&notification("last"), 12).expect("insert"));
        let records = store.records().expect("records");
        assert_eq!(
            records.last().map(|(_, r)| r.notification.key.as_str()),
            Some("last")
        );

        assert_eq!(store.prune_settled(11).expect("prune"), 1);
        assert!(store.insert_new(&notification("k0"), 13).expect("insert"));
    }

    #[test]
    fn an_unreadable_record_is_removed_and_its_key_usable_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("open db");
        let store = Store::open(db.open_tree("mail").expect("tree")).expect("store");
        assert!(store.insert_new(&notification("a"), 1).expect("insert"));
        assert!(store.insert_new(&notification("b"), 1).expect("insert"));
        let (id, _) = store.records().expect("records")[0].clone();
        store
            .tree
            .insert(queue_key(id), b"{not json".as_slice())
            .expect("corrupt");

        let keys: Vec<_> = store
            .records()
            .expect("records")
            .into_iter()
            .map(|(_, r)| r.notification.key)
            .collect();
        assert_eq!(keys, ["b"]);
        assert_eq!(store.pending().expect("pending"), 1);
        assert!(store.insert_new(&notification("a"), 2).expect("insert"));
        assert_eq!(store.pending().expect("pending"), 2);
    }
}
