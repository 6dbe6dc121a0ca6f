//! Bundles: many records of one partition in one Kafka message.
//!
//! The pipeline's own topics (`orders`, `ledger`) are written a batch at a time, thousands of
//! records per append. A broker pays for every message it stores and serves; the test broker
//! (Tansu, one SQLite row per message) accepts about 12,000 messages a second on this machine,
//! so a stage that wrote one message per record could never keep up with a consumer reading
//! one message per event (docs/PERFORMANCE.md). The Kafka adapter therefore writes the records
//! of one append that share a partition as one message — a bundle — and its consumer hands
//! them out one by one again. Nothing above the adapter sees a bundle.
//!
//! A bundle is a message whose key is [`KEY`] (a NUL byte, which no key of the pipeline
//! contains, then `clickledger.bundle.2`, the format's version), with an explicit partition
//! (the one every record's key hashes to, [`partition_for`]). Its payload is the bundle's
//! uncompressed size as a little-endian `u32`, then a Zstandard frame (level 1) of the
//! uncompressed bytes, which are, for each record in order:
//!
//! ```text
//! u32 little-endian  key length     | key bytes (UTF-8)
//! u32 little-endian  payload length | payload bytes
//! ```
//!
//! Records compress at level 1 in under a millisecond per bundle: about twentyfold when they
//! were JSON (wire version 1), so the broker stored and served a twentieth of the bytes; the
//! stages' records are now MessagePack (wire version 2), a third smaller before compression. The first version of the
//! format ([`KEY_V1`], `clickledger.bundle.1`) had an LZ4 block in place of the Zstandard
//! frame, about eightfold (the attributor's million outputs: 46.0 MB on the broker, 18.7 MB
//! now); the consumer still reads it, so a topic written before an upgrade stays readable.
//!
//! **Positions.** The log port numbers records, not messages. The record `i` of `n` in the
//! message at Kafka offset `k` is at position `k << 16 | i`, except the last, which is at
//! `k << 16 | 0xFFFF`; a message that is not a bundle is one record at `k << 16 | 0xFFFF`. So
//! positions rise within a partition, the position after a message's last record is the next
//! message's first (`(k + 1) << 16`), and a partition's end is its high watermark shifted.
//! Committing position `p` commits Kafka offset `p >> 16`: at a message's end that is the next
//! message; in the middle of a bundle it is the bundle itself, which a new member reads again
//! from its first record (at-least-once; the stages skip what their state already reflects).
//!
//! The marker is the key rather than a Kafka header because the test broker keeps headers in
//! a table without an index and scans it for every record it serves: with a header on each
//! bundle, a plain consumer read the `events` topic in 41.7 s after a run of the attributor,
//! and in 24.2 s with the marker in the key (docs/PERFORMANCE.md, "Kafka producer and
//! bundles").
//!
//! [`partition_for`]: pipeline::ports::log::partition_for

use pipeline::ports::log::Record;

/// The key of a bundle message, with the version of the format written.
pub const KEY: &[u8] = b"\0clickledger.bundle.2";
/// The key of the first version (LZ4), still read.
pub const KEY_V1: &[u8] = b"\0clickledger.bundle.1";
/// The Zstandard level bundles are written at. On the pipeline's 512 KiB bundles of JSON,
/// level 1 made frames about 13% smaller than level 3, in half the time, and took about as
/// long as LZ4.
const LEVEL: i32 = 1;

/// Bits of a position below the Kafka offset.
const SHIFT: u32 = 16;
/// The low bits of a message's last record.
const LAST: u64 = (1 << SHIFT) - 1;
/// Records in one bundle at most (every record but the last needs its own low bits).
pub const MAX_RECORDS: usize = 4096;
/// Uncompressed bytes of one bundle at most (compressed, well under Kafka's default
/// `message.max.bytes`); a single larger record is a bundle of its own.
pub const MAX_BYTES: usize = 512 * 1024;
/// The largest uncompressed size a bundle may claim (one record can be larger than
/// [`MAX_BYTES`], but not this large); a bigger claim is malformed, not an allocation.
const MAX_UNCOMPRESSED: usize = 64 * 1024 * 1024;

const _: () = assert!(MAX_RECORDS as u64 <= LAST);

/// The position of record `index` of `count` in the message at Kafka offset `offset`.
pub fn position(offset: i64, index: usize, count: usize) -> u64 {
    let base = u64::try_from(offset).unwrap_or(0) << SHIFT;
    if index + 1 >= count { base | LAST } else { base | index as u64 }
}

/// The position after the last record of a partition whose high watermark is `watermark`.
pub fn end_position(watermark: i64) -> u64 {
    u64::try_from(watermark).unwrap_or(0) << SHIFT
}

/// The Kafka offset to commit so that reading resumes at or before position `next`.
pub fn commit_offset(next: u64) -> i64 {
    i64::try_from(next >> SHIFT).unwrap_or(i64::MAX)
}

/// How a message's payload is to be read, from its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A record of its own.
    Plain,
    /// A bundle, Zstandard (the format written).
    Zstd,
    /// A bundle of the first version, LZ4.
    Lz4,
}

impl Format {
    pub fn of(key: Option<&[u8]>) -> Self {
        match key {
            Some(KEY) => Self::Zstd,
            Some(KEY_V1) => Self::Lz4,
            _ => Self::Plain,
        }
    }
}

/// The bundle payload of uncompressed bundle bytes: their size, then a Zstandard frame.
fn compress(bytes: &[u8]) -> Vec<u8> {
    let frame = zstd::bulk::compress(bytes, LEVEL).unwrap_or_else(|error| {
        // Compressing bytes in memory fails only when zstd cannot allocate its context.
        panic!("zstd could not compress a bundle: {error}")
    });
    [(bytes.len() as u32).to_le_bytes().as_slice(), &frame].concat()
}

/// The records of one partition, in order, as bundle payloads within the size limits.
pub fn encode(records: &[&Record]) -> Vec<Vec<u8>> {
    let mut bundles = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut count = 0;
    for record in records {
        let size = 8 + record.key.len() + record.payload.len();
        if count > 0 && (count == MAX_RECORDS || current.len() + size > MAX_BYTES) {
            bundles.push(compress(&current));
            current.clear();
            count = 0;
        }
        current.reserve(size);
        for part in [record.key.as_bytes(), &record.payload] {
            current.extend_from_slice(&(part.len() as u32).to_le_bytes());
            current.extend_from_slice(part);
        }
        count += 1;
    }
    if count > 0 {
        bundles.push(compress(&current));
    }
    bundles
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed bundle at byte {at}")]
pub struct Malformed {
    pub at: usize,
}

/// The (key, payload) records of a bundle payload in `format` (not [`Format::Plain`]).
pub fn decode(format: Format, compressed: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Malformed> {
    let size = compressed.first_chunk::<4>().map(|size| u32::from_le_bytes(*size) as usize);
    let size = size.filter(|size| *size <= MAX_UNCOMPRESSED).ok_or(Malformed { at: 0 })?;
    let block = &compressed[4..];
    let bytes = match format {
        Format::Zstd => zstd::bulk::decompress(block, size).ok().filter(|bytes| bytes.len() == size),
        Format::Lz4 => lz4_flex::block::decompress(block, size).ok(),
        Format::Plain => None,
    };
    unframe(&bytes.ok_or(Malformed { at: 0 })?)
}

/// The records of uncompressed bundle bytes.
fn unframe(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Malformed> {
    /// One length-prefixed part at `*at`, moving `*at` past it.
    fn part<'a>(bytes: &'a [u8], at: &mut usize) -> Result<&'a [u8], Malformed> {
        let start = *at;
        let malformed = Malformed { at: start };
        let length = bytes.get(start..start + 4).ok_or(malformed)?;
        let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
        let part = bytes.get(start + 4..start + 4 + length).ok_or(Malformed { at: start })?;
        *at = start + 4 + length;
        Ok(part)
    }
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let key = std::str::from_utf8(part(bytes, &mut at)?).map_err(|_| Malformed { at: start })?;
        let payload = part(bytes, &mut at)?;
        records.push((key.to_string(), payload.to_vec()));
        if records.len() > MAX_RECORDS {
            return Err(Malformed { at: start });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn record(key: &str, payload: &str) -> Record {
        Record { topic: Arc::from("t"), key: key.into(), payload: payload.as_bytes().to_vec() }
    }

    #[test]
    fn records_come_back_in_order_with_their_keys() {
        let records = [record("order-1", "{\"a\":1}"), record("", ""), record("order-2", "x")];
        let bundles = encode(&records.iter().collect::<Vec<_>>());
        assert_eq!(bundles.len(), 1);
        assert_eq!(
            decode(Format::Zstd, &bundles[0]).unwrap(),
            vec![
                ("order-1".to_string(), b"{\"a\":1}".to_vec()),
                (String::new(), Vec::new()),
                ("order-2".to_string(), b"x".to_vec())
            ]
        );
        let size = u32::from_le_bytes(*bundles[0].first_chunk::<4>().unwrap()) as usize;
        let framed = zstd::bulk::decompress(&bundles[0][4..], size).unwrap();
        assert_eq!(size, 4 + 7 + 4 + 7 + 8 + 4 + 7 + 4 + 1, "the uncompressed size first");
        assert_eq!(&framed[..11], b"\x07\0\0\0order-1", "the documented layout: key length, key, ...");
    }

    #[test]
    fn bundles_split_at_the_record_and_byte_limits() {
        let many: Vec<Record> = (0..MAX_RECORDS + 1).map(|n| record(&format!("k{n}"), "p")).collect();
        let bundles = encode(&many.iter().collect::<Vec<_>>());
        assert_eq!(
            bundles.iter().map(|bundle| decode(Format::Zstd, bundle).unwrap().len()).collect::<Vec<_>>(),
            vec![MAX_RECORDS, 1]
        );

        let big = "x".repeat(MAX_BYTES / 2);
        let large = [record("a", &big), record("b", &big), record("c", &"y".repeat(MAX_BYTES * 2))];
        let bundles = encode(&large.iter().collect::<Vec<_>>());
        let keys: Vec<Vec<String>> = bundles
            .iter()
            .map(|bundle| decode(Format::Zstd, bundle).unwrap().into_iter().map(|(key, _)| key).collect())
            .collect();
        assert_eq!(keys, vec![vec!["a".to_string()], vec!["b".to_string()], vec!["c".to_string()]]);
    }

    #[test]
    fn a_truncated_or_garbled_bundle_is_refused() {
        let bundle = [3u32.to_le_bytes().as_slice(), b"key", &7u32.to_le_bytes(), b"payload"].concat();
        assert_eq!(decode(Format::Zstd, &compress(&bundle)), Ok(vec![("key".to_string(), b"payload".to_vec())]));
        assert_eq!(decode(Format::Zstd, &compress(&bundle[..bundle.len() - 1])), Err(Malformed { at: 7 }));
        assert_eq!(decode(Format::Zstd, &compress(&bundle[..2])), Err(Malformed { at: 0 }));
        let mut not_utf8 = bundle.clone();
        not_utf8[4] = 0xFF;
        assert_eq!(decode(Format::Zstd, &compress(&not_utf8)), Err(Malformed { at: 0 }));
        assert_eq!(decode(Format::Zstd, &compress(&[])), Ok(Vec::new()));

        let compressed = compress(&bundle);
        assert_eq!(decode(Format::Zstd, &compressed[..compressed.len() - 2]), Err(Malformed { at: 0 }), "a cut block");
        assert_eq!(decode(Format::Zstd, &[1, 2]), Err(Malformed { at: 0 }), "no size");
        let huge = [u32::MAX.to_le_bytes().as_slice(), &compressed[4..]].concat();
        assert_eq!(decode(Format::Zstd, &huge), Err(Malformed { at: 0 }), "a claimed size beyond the limit");
        let short = [8u32.to_le_bytes().as_slice(), &compressed[4..]].concat();
        assert_eq!(decode(Format::Zstd, &short), Err(Malformed { at: 0 }), "a claimed size below the frame's");
        let long = [(bundle.len() as u32 + 1).to_le_bytes().as_slice(), &compressed[4..]].concat();
        assert_eq!(decode(Format::Zstd, &long), Err(Malformed { at: 0 }), "a claimed size above the frame's");
    }

    #[test]
    fn the_key_says_how_to_read_a_message() {
        assert_eq!(Format::of(Some(KEY)), Format::Zstd);
        assert_eq!(Format::of(Some(KEY_V1)), Format::Lz4);
        assert_eq!(Format::of(Some(b"acme:order-1")), Format::Plain);
        assert_eq!(Format::of(Some(b"\0clickledger.bundle.3")), Format::Plain);
        assert_eq!(Format::of(None), Format::Plain);
    }

    #[test]
    fn a_first_version_bundle_is_still_read() {
        let bundle = [3u32.to_le_bytes().as_slice(), b"key", &7u32.to_le_bytes(), b"payload"].concat();
        let v1 = lz4_flex::block::compress_prepend_size(&bundle);
        assert_eq!(decode(Format::Lz4, &v1), Ok(vec![("key".to_string(), b"payload".to_vec())]));
        assert_eq!(decode(Format::Zstd, &v1), Err(Malformed { at: 0 }), "read as the other format");
        assert_eq!(decode(Format::Lz4, &v1[..v1.len() - 2]), Err(Malformed { at: 0 }));
        assert_eq!(decode(Format::Plain, &v1), Err(Malformed { at: 0 }));
    }

    #[test]
    fn json_records_compress() {
        let records: Vec<Record> = (0..1000)
            .map(|n| {
                record(
                    &format!("acme:order-{n}"),
                    &format!("{{\"type\":\"click\",\"id\":\"01JD{n:022}\",\"offer\":\"store\"}}"),
                )
            })
            .collect();
        let raw: usize = records.iter().map(|record| 8 + record.key.len() + record.payload.len()).sum();
        let bundles = encode(&records.iter().collect::<Vec<_>>());
        assert_eq!(bundles.len(), 1);
        assert!(bundles[0].len() * 3 < raw, "{} bytes for {raw}", bundles[0].len());
        assert_eq!(decode(Format::Zstd, &bundles[0]).unwrap().len(), 1000);
    }

    #[test]
    fn positions_rise_and_end_where_the_next_message_starts() {
        // A bundle of three at offset 5, a plain record at offset 6.
        let positions: Vec<u64> = (0..3).map(|i| position(5, i, 3)).chain([position(6, 0, 1)]).collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{positions:?}");
        assert_eq!(positions[2] + 1, position(6, 0, 1) - LAST, "after a bundle's last record: the next message");
        assert_eq!(positions[3] + 1, end_position(7), "after the partition's last record: its end");
        assert_eq!(commit_offset(positions[3] + 1), 7);
        assert_eq!(commit_offset(positions[2] + 1), 6, "a bundle read to its end is not read again");
        assert_eq!(commit_offset(positions[0] + 1), 5, "a bundle read halfway is read again");
        assert_eq!(commit_offset(end_position(0)), 0);
    }
}
