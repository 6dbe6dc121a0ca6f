//! The writer thread: every write of the log — appends, topic creation, offset commits — in
//! one transaction per batch of waiting requests (group commit), each answered only after the
//! commit returned.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use pipeline::ports::log::{LogError, PartitionId, Record, TopicSpec, partition_for};
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::{Inner, SAVE_ENDS_EVERY, TopicInfo, fatal, locked, now_millis};

/// One request to the writer thread and where its answer goes.
pub(super) struct Job {
    pub(super) work: Work,
    pub(super) done: oneshot::Sender<Result<(), LogError>>,
}

pub(super) enum Work {
    Append(Vec<Record>),
    CreateTopics(Vec<TopicSpec>),
    Commit { group: Arc<str>, offsets: Vec<(PartitionId, u64)> },
    Flush,
}

impl Job {
    pub(super) fn record_count(&self) -> usize {
        match &self.work {
            Work::Append(records) => records.len(),
            _ => 1,
        }
    }
}

pub(super) struct Writer {
    pub(super) connection: Connection,
    pub(super) max_batch: usize,
    pub(super) inner: std::sync::Weak<Inner>,
}

/// Partition ends not yet saved, and when they were last saved.
struct UnsavedEnds {
    ends: HashMap<(i64, u32), u64>,
    saved_at: std::time::Instant,
}

impl Writer {
    pub(super) fn run(mut self, receiver: Receiver<Job>) {
        // The next offset of each topic: its rowid sequence.
        let mut next_offsets: HashMap<i64, u64> = HashMap::new();
        let mut unsaved = UnsavedEnds { ends: HashMap::new(), saved_at: std::time::Instant::now() };
        while let Ok(first) = receiver.recv() {
            let mut jobs = vec![first];
            let mut records = jobs[0].record_count();
            while records < self.max_batch {
                match receiver.try_recv() {
                    Ok(job) => {
                        records += job.record_count();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let Some(inner) = self.inner.upgrade() else {
                break;
            };
            self.write(&inner, jobs, records, &mut next_offsets, &mut unsaved);
            inner.appended.send_modify(|generation| *generation += 1);
        }
        if let Some(inner) = self.inner.upgrade() {
            inner.writer_alive.store(false, Ordering::Relaxed);
        }
    }

    /// Write every job in one transaction, then answer each. A job that cannot be written
    /// (unknown topic) fails alone; a failed transaction fails every job in it and forgets the
    /// offsets it would have used. Every job gets an answer.
    fn write(
        &mut self,
        inner: &Inner,
        jobs: Vec<Job>,
        records: usize,
        next_offsets: &mut HashMap<i64, u64>,
        unsaved: &mut UnsavedEnds,
    ) {
        let topics = locked(&inner.topics).clone();
        let (works, replies): (Vec<Work>, Vec<oneshot::Sender<Result<(), LogError>>>) =
            jobs.into_iter().map(|job| (job.work, job.done)).unzip();
        let mut answers: Vec<Result<(), LogError>> = vec![Ok(()); works.len()];
        let mut ends: HashMap<(Arc<str>, u32), (i64, u64)> = HashMap::new();
        let mut created: Vec<(Arc<str>, TopicInfo)> = Vec::new();
        let result = (|| -> Result<(), LogError> {
            let transaction = self.connection.transaction().map_err(fatal)?;
            let now = now_millis();
            for (work, answer) in works.iter().zip(answers.iter_mut()) {
                match work {
                    Work::Append(records) => {
                        if let Some(record) = records.iter().find(|record| !topics.contains_key(&record.topic)) {
                            *answer = Err(LogError::Fatal(format!("unknown topic {}", record.topic)));
                            continue;
                        }
                        for record in records {
                            let topic = topics[&record.topic];
                            let partition = partition_for(&record.key, topic.partitions);
                            let offset = match next_offsets.get(&topic.id) {
                                Some(next) => *next,
                                None => next_offset(&transaction, &topic)?,
                            };
                            let mut insert = transaction
                                .prepare_cached(&format!(
                                    "INSERT INTO {} (offset, partition, key, payload, appended_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                                    topic.table()
                                ))
                                .map_err(fatal)?;
                            insert
                                .execute(params![offset as i64, partition, record.key, record.payload, now])
                                .map_err(fatal)?;
                            next_offsets.insert(topic.id, offset + 1);
                            ends.insert((record.topic.clone(), partition), (topic.id, offset + 1));
                        }
                    }
                    Work::CreateTopics(specs) => {
                        for spec in specs {
                            if topics.contains_key(&spec.name) || created.iter().any(|(name, _)| name == &spec.name) {
                                continue;
                            }
                            transaction
                                .execute(
                                    "INSERT INTO topics (name, partitions, compacted) VALUES (?1, ?2, ?3)",
                                    params![spec.name.as_ref(), spec.partitions.max(1), spec.compacted],
                                )
                                .map_err(fatal)?;
                            let info =
                                TopicInfo { id: transaction.last_insert_rowid(), partitions: spec.partitions.max(1) };
                            transaction
                                .execute_batch(&format!(
                                    "CREATE TABLE {} (
                                         offset INTEGER PRIMARY KEY,
                                         partition INTEGER NOT NULL,
                                         key TEXT NOT NULL,
                                         payload BLOB NOT NULL,
                                         appended_at INTEGER NOT NULL)",
                                    info.table()
                                ))
                                .map_err(fatal)?;
                            created.push((spec.name.clone(), info));
                        }
                    }
                    Work::Commit { group, offsets: commits } => {
                        for (partition, next) in commits {
                            let Some(topic) = topics.get(&partition.topic) else {
                                continue;
                            };
                            transaction
                                .prepare_cached(
                                    "INSERT INTO group_offsets (grp, topic, partition, next_offset) VALUES (?1, ?2, ?3, ?4)
                                     ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                                )
                                .and_then(|mut upsert| {
                                    upsert.execute(params![group.as_ref(), topic.id, partition.partition, *next as i64])
                                })
                                .map_err(fatal)?;
                        }
                    }
                    Work::Flush => {}
                }
            }
            for ((_, partition), (topic_id, next)) in &ends {
                unsaved.ends.insert((*topic_id, *partition), *next);
            }
            let save =
                unsaved.saved_at.elapsed() >= SAVE_ENDS_EVERY || works.iter().any(|work| matches!(work, Work::Flush));
            if save {
                for ((topic_id, partition), next) in &unsaved.ends {
                    transaction
                        .prepare_cached(
                            "INSERT INTO partition_ends (topic, partition, next_offset) VALUES (?1, ?2, ?3)
                             ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                        )
                        .and_then(|mut upsert| upsert.execute(params![topic_id, partition, *next as i64]))
                        .map_err(fatal)?;
                }
            }
            transaction.commit().map_err(fatal)?;
            if save {
                unsaved.ends.clear();
                unsaved.saved_at = std::time::Instant::now();
            }
            Ok(())
        })();
        inner.queued_records.fetch_sub(records, Ordering::Relaxed);
        match result {
            Ok(()) => {
                inner.transactions.fetch_add(1, Ordering::Relaxed);
                locked(&inner.topics).extend(created);
                let mut partition_ends = locked(&inner.partition_ends);
                for (key, (_, next)) in ends {
                    partition_ends.insert(key, next);
                }
                drop(partition_ends);
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(error) => {
                tracing::error!(%error, "embedded log commit failed");
                next_offsets.clear();
                for reply in replies {
                    let _ = reply.send(Err(LogError::Unavailable(error.to_string())));
                }
            }
        }
    }
}

fn next_offset(connection: &Connection, topic: &TopicInfo) -> Result<u64, LogError> {
    let max: Option<i64> = connection
        .query_row(&format!("SELECT MAX(offset) FROM {}", topic.table()), [], |row| row.get(0))
        .map_err(fatal)?;
    Ok(max.map_or(0, |max| u64::try_from(max + 1).unwrap_or(0)))
}
