//! Members of consumer groups, coordinated in the process: the members of a group share its
//! partitions round-robin, and a change of members shows up at their next poll as assigned /
//! revoked partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pipeline::ports::log::{Delivered, LogConsumer, LogError, PartitionId, Polled};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{oneshot, watch};

use super::writer::{Job, Work};
use super::{SqliteLog, fatal, locked, open_reader, wait};

#[derive(Default)]
pub(super) struct GroupState {
    /// member id → subscribed topics
    pub(super) members: BTreeMap<u64, Vec<Arc<str>>>,
    pub(super) generation: u64,
}

/// A member of a consumer group of the embedded log.
pub struct SqliteConsumer {
    log: SqliteLog,
    group: Arc<str>,
    member: u64,
    reader: Option<Connection>,
    /// The next offset to read of each assigned partition.
    positions: BTreeMap<PartitionId, u64>,
    generation: u64,
    appended: watch::Receiver<u64>,
    /// Which topic a poll starts reading at, so every topic gets its turn.
    cursor: usize,
}

impl std::fmt::Debug for SqliteConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteConsumer").field("group", &self.group).field("member", &self.member).finish()
    }
}

impl Drop for SqliteConsumer {
    fn drop(&mut self) {
        if let Some(state) = locked(&self.log.inner.groups).get_mut(&self.group) {
            state.members.remove(&self.member);
            state.generation += 1;
        }
    }
}

impl SqliteConsumer {
    /// Join consumer group `group` on `topics` (`EventLog::consumer`).
    pub(super) fn join(log: &SqliteLog, group: &str, topics: &[Arc<str>]) -> Result<Self, LogError> {
        for topic in topics {
            if log.topic(topic).is_none() {
                return Err(LogError::Fatal(format!("unknown topic {topic}")));
            }
        }
        let member = log.inner.next_member.fetch_add(1, Ordering::Relaxed);
        let group: Arc<str> = Arc::from(group);
        {
            let mut groups = locked(&log.inner.groups);
            let state = groups.entry(group.clone()).or_default();
            state.members.insert(member, topics.to_vec());
            state.generation += 1;
        }
        Ok(Self {
            log: log.clone(),
            group,
            member,
            reader: Some(open_reader(&log.inner.path)?),
            positions: BTreeMap::new(),
            generation: 0,
            appended: log.inner.appended.subscribe(),
            cursor: 0,
        })
    }

    /// This member's share of the group's partitions: all partitions of the subscribed topics,
    /// in order, dealt round-robin to the members in id order.
    fn assignment(&self) -> Result<(u64, BTreeSet<PartitionId>), LogError> {
        let groups = locked(&self.log.inner.groups);
        let Some(state) = groups.get(&self.group) else {
            return Ok((0, BTreeSet::new()));
        };
        let topics = locked(&self.log.inner.topics);
        let members: Vec<u64> = state.members.keys().copied().collect();
        let Some(index) = members.iter().position(|member| *member == self.member) else {
            return Ok((state.generation, BTreeSet::new()));
        };
        let subscribed: BTreeSet<&Arc<str>> = state.members.values().flatten().collect();
        let mut all = Vec::new();
        for topic in subscribed {
            let partitions = topics.get(topic).map_or(0, |info| info.partitions);
            all.extend((0..partitions).map(|partition| PartitionId { topic: topic.clone(), partition }));
        }
        let mine = all
            .into_iter()
            .enumerate()
            .filter(|(position, partition)| {
                position % members.len() == index
                    && state.members.get(&self.member).is_some_and(|topics| topics.contains(&partition.topic))
            })
            .map(|(_, partition)| partition)
            .collect();
        Ok((state.generation, mine))
    }

    async fn rebalance(&mut self, polled: &mut Polled) -> Result<(), LogError> {
        let (generation, wanted) = self.assignment()?;
        if generation == self.generation {
            return Ok(());
        }
        self.generation = generation;
        let current: BTreeSet<PartitionId> = self.positions.keys().cloned().collect();
        polled.revoked = current.difference(&wanted).cloned().collect();
        polled.assigned = wanted.difference(&current).cloned().collect();
        for partition in &polled.revoked {
            self.positions.remove(partition);
        }
        let assigned = polled.assigned.clone();
        let committed = self.read(move |connection, log, group| committed(connection, log, group, &assigned)).await?;
        for (partition, next) in committed {
            self.positions.insert(partition, next);
        }
        Ok(())
    }

    /// Run a read on the consumer's own connection, off the async runtime.
    async fn read<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&Connection, &SqliteLog, &str) -> Result<T, LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let connection = match self.reader.take() {
            Some(connection) => connection,
            None => open_reader(&self.log.inner.path)?,
        };
        let log = self.log.clone();
        let group = self.group.clone();
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let result = work(&connection, &log, &group);
            (connection, result)
        })
        .await
        .map_err(fatal)?;
        self.reader = Some(connection);
        result
    }

    /// Read each topic from the lowest position among this member's partitions of it,
    /// keeping the records of those partitions at or after their positions. Everything read
    /// up to the last record examined has been seen, so every assigned partition's position
    /// moves past it.
    async fn fetch(&mut self, max_records: usize) -> Result<Vec<Delivered>, LogError> {
        let mut by_topic: BTreeMap<Arc<str>, BTreeMap<u32, u64>> = BTreeMap::new();
        for (partition, next) in &self.positions {
            by_topic.entry(partition.topic.clone()).or_default().insert(partition.partition, *next);
        }
        if by_topic.is_empty() {
            return Ok(Vec::new());
        }
        let mut order: Vec<(Arc<str>, BTreeMap<u32, u64>)> = by_topic.into_iter().collect();
        let start = self.cursor % order.len();
        order.rotate_left(start);
        self.cursor = self.cursor.wrapping_add(1);
        let (records, advanced) = self
            .read(move |connection, log, _| {
                let mut records = Vec::new();
                let mut advanced: Vec<(Arc<str>, u32, u64)> = Vec::new();
                for (topic_name, positions) in order {
                    let remaining = max_records - records.len();
                    if remaining == 0 {
                        break;
                    }
                    let Some(topic) = log.topic(&topic_name) else {
                        continue;
                    };
                    let from = positions.values().copied().min().unwrap_or(0);
                    // Other members' records are skipped here; bound how many are examined.
                    let examine = remaining.saturating_mul(4).max(256);
                    let mut statement = connection
                        .prepare_cached(&format!(
                            "SELECT offset, partition, key, payload FROM {} WHERE offset >= ?1 ORDER BY offset LIMIT ?2",
                            topic.table()
                        ))
                        .map_err(fatal)?;
                    let mut rows = statement.query(params![from as i64, examine as i64]).map_err(fatal)?;
                    let mut last_examined = None;
                    while let Some(row) = rows.next().map_err(fatal)? {
                        let offset = u64::try_from(row.get::<_, i64>(0).map_err(fatal)?).unwrap_or(0);
                        let partition: u32 = row.get(1).map_err(fatal)?;
                        last_examined = Some(offset);
                        if positions.get(&partition).is_some_and(|next| offset >= *next) {
                            records.push(Delivered {
                                topic: topic_name.clone(),
                                partition,
                                offset,
                                key: row.get(2).map_err(fatal)?,
                                payload: row.get(3).map_err(fatal)?,
                            });
                            if records.len() == max_records {
                                break;
                            }
                        }
                    }
                    if let Some(last) = last_examined {
                        for (partition, next) in &positions {
                            advanced.push((topic_name.clone(), *partition, (*next).max(last + 1)));
                        }
                    }
                }
                Ok((records, advanced))
            })
            .await?;
        for (topic, partition, next) in advanced {
            self.positions.insert(PartitionId { topic, partition }, next);
        }
        Ok(records)
    }
}

fn committed(
    connection: &Connection,
    log: &SqliteLog,
    group: &str,
    partitions: &[PartitionId],
) -> Result<Vec<(PartitionId, u64)>, LogError> {
    let mut statement = connection
        .prepare_cached("SELECT next_offset FROM group_offsets WHERE grp = ?1 AND topic = ?2 AND partition = ?3")
        .map_err(fatal)?;
    partitions
        .iter()
        .map(|partition| {
            let topic = log.topic(&partition.topic).map_or(-1, |topic| topic.id);
            let next: Option<i64> = statement
                .query_row(params![group, topic, partition.partition], |row| row.get(0))
                .optional()
                .map_err(fatal)?;
            Ok((partition.clone(), next.map_or(0, |next| u64::try_from(next).unwrap_or(0))))
        })
        .collect()
}

impl LogConsumer for SqliteConsumer {
    async fn poll(&mut self, max_records: usize, wait: Duration) -> Result<Polled, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut polled = Polled::default();
        loop {
            self.appended.borrow_and_update();
            self.rebalance(&mut polled).await?;
            polled.records = self.fetch(max_records.max(1)).await?;
            let changed = !polled.assigned.is_empty() || !polled.revoked.is_empty();
            if !polled.records.is_empty() || changed {
                return Ok(polled);
            }
            // Wake on the next commit, or now and then to notice group changes.
            let nap = deadline.saturating_duration_since(tokio::time::Instant::now()).min(Duration::from_millis(100));
            if nap.is_zero() {
                return Ok(polled);
            }
            let _ = tokio::time::timeout(nap, self.appended.changed()).await;
        }
    }

    async fn commit(&mut self, offsets: &[(PartitionId, u64)]) -> Result<(), LogError> {
        let (done, receiver) = oneshot::channel();
        self.log.submit(Job { work: Work::Commit { group: self.group.clone(), offsets: offsets.to_vec() }, done })?;
        wait(receiver).await
    }
}
