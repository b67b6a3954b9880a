//! The Redis Streams bus.
//!
//! Every command runs on the lean connections of [`crate::resp`], each call on a connection
//! of its own; a blocking `XREADGROUP` simply holds its connection until data arrives. The
//! hot commands (XADD, XREADGROUP, XREAD, XACK) are encoded and their replies read in place
//! here, once; the rest are built as [`redis::Cmd`]s and read back as [`redis::Value`]s.

use std::time::Duration;

use redis::{Cmd, Value};

use crate::redis_connect::{RedisUrl, RESPONSE_TIMEOUT};
use crate::resp;
use crate::{
    dlq_stream, BusError, BusFuture, BusOptions, Delivery, GroupStats, Headers, KvStore, Message,
    MessageId, StreamBus, DLQ_DELIVERY_COUNT_HEADER, DLQ_GROUP_HEADER, DLQ_ORIGINAL_ID_HEADER,
    DLQ_REASON_HEADER, HEADER_FIELD_PREFIX, PAYLOAD_FIELD,
};

/// Extra time a blocking read may take beyond its `BLOCK` before we give up on it.
const BLOCK_GRACE: Duration = Duration::from_secs(5);

/// Claims pending entries idle long enough, dead-letters those delivered too often and
/// returns the rest with their delivery counts, atomically. XAUTOCLAIM does not report
/// delivery counts, hence the XPENDING per claimed entry.
const RECLAIM_SCRIPT: &str = r#"
local stream, dlq = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local min_idle, max = ARGV[3], tonumber(ARGV[4])
local max_deliveries, maxlen = tonumber(ARGV[5]), tonumber(ARGV[6])
local out, dead = {}, {}
local cursor = '0-0'
for _ = 1, 1000 do
  local r = redis.pcall('XAUTOCLAIM', stream, group, consumer, min_idle, cursor, 'COUNT', max - #out)
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'NOGROUP', 1, true) then return {out, dead} end
    return r
  end
  cursor = r[1]
  for _, e in ipairs(r[2]) do
    local id, fields = e[1], e[2]
    local p = redis.call('XPENDING', stream, group, id, id, 1)
    local count = p[1][4]
    if count > max_deliveries then
      local args = {dlq}
      if maxlen > 0 then
        table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, ARGV[6])
      end
      table.insert(args, '*')
      for _, f in ipairs(fields) do table.insert(args, f) end
      local reason = string.format('delivered %d times, more than max_deliveries %d', count, max_deliveries)
      for _, f in ipairs({ARGV[7], id, ARGV[8], reason, ARGV[9], group, ARGV[10], string.format('%d', count)}) do
        table.insert(args, f)
      end
      redis.call('XADD', unpack(args))
      redis.call('XACK', stream, group, id)
      table.insert(dead, {id, count})
    else
      table.insert(out, {id, fields, count})
    end
  end
  if cursor == '0-0' or #out >= max then break end
end
return {out, dead}
"#;

/// Claim: take a free key, or refresh our own claim.
const CLAIM_SCRIPT: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

const RENEW_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

const RELEASE_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// Entries after a group's last delivered id, when XINFO cannot tell the lag.
const LAG_SCRIPT: &str = r#"
return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')
"#;

/// A [`JobBus`](crate::JobBus) on Redis Streams (Redis 7 or newer).
pub struct RedisBus {
    pool: resp::Pool,
    options: BusOptions,
    display_url: String,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("url", &self.display_url)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisBus {
    /// Connects to `url` (`redis[s]://host:port[/db]`, see [`crate::redis_connect`]) and
    /// checks that the server answers.
    pub async fn connect(url: &str, options: BusOptions) -> Result<Self, BusError> {
        let url = RedisUrl::parse(url)?;
        let bus = Self {
            pool: resp::Pool::new(resp::Endpoint::of(&url)?),
            options,
            display_url: url.display().to_owned(),
        };
        bus.ping().await?;
        Ok(bus)
    }

    async fn query(&self, cmd: &Cmd) -> Result<Value, BusError> {
        self.pool.query(cmd, RESPONSE_TIMEOUT).await
    }

    /// Appends the `XADD` of one message to `out`, trimming as the options say.
    fn encode_xadd(&self, out: &mut Vec<u8>, stream: &str, payload: &[u8], headers: &Headers) {
        let trim = if self.options.maxlen.is_some() { 3 } else { 0 };
        resp::begin(out, 5 + trim + 2 * headers.len());
        resp::push_arg(out, b"XADD");
        resp::push_arg(out, stream.as_bytes());
        if let Some(maxlen) = self.options.maxlen {
            resp::push_arg(out, b"MAXLEN");
            resp::push_arg(out, b"~");
            resp::push_u64_arg(out, maxlen);
        }
        resp::push_arg(out, b"*");
        resp::push_arg(out, PAYLOAD_FIELD.as_bytes());
        resp::push_arg(out, payload);
        for (name, value) in headers {
            let mut field = Vec::with_capacity(HEADER_FIELD_PREFIX.len() + name.len());
            field.extend_from_slice(HEADER_FIELD_PREFIX.as_bytes());
            field.extend_from_slice(name.as_bytes());
            resp::push_arg(out, &field);
            resp::push_arg(out, value.as_bytes());
        }
    }

    /// How many arguments [`Self::push_count_block`] writes.
    fn count_block_args(block: Duration) -> usize {
        if block.is_zero() {
            2
        } else {
            4
        }
    }

    /// `COUNT max [BLOCK ms]` of a stream read: no `BLOCK` when `block` is zero.
    fn push_count_block(out: &mut Vec<u8>, max: usize, block: Duration) {
        resp::push_arg(out, b"COUNT");
        resp::push_u64_arg(out, max.max(1) as u64);
        if !block.is_zero() {
            resp::push_arg(out, b"BLOCK");
            resp::push_u64_arg(out, millis(block).max(1));
        }
    }

    /// `XREADGROUP` of up to `max` new entries, waiting up to `block` (not at all if zero).
    fn encode_xreadgroup(
        out: &mut Vec<u8>,
        stream: &str,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) {
        resp::begin(out, 7 + Self::count_block_args(block));
        resp::push_arg(out, b"XREADGROUP");
        resp::push_arg(out, b"GROUP");
        resp::push_arg(out, group.as_bytes());
        resp::push_arg(out, consumer.as_bytes());
        Self::push_count_block(out, max, block);
        resp::push_arg(out, b"STREAMS");
        resp::push_arg(out, stream.as_bytes());
        resp::push_arg(out, b">");
    }

    /// `XREAD` of up to `max` entries after `after`, waiting up to `block` (not at all if
    /// zero).
    fn encode_xread(
        out: &mut Vec<u8>,
        stream: &str,
        after: MessageId,
        max: usize,
        block: Duration,
    ) {
        resp::begin(out, 4 + Self::count_block_args(block));
        resp::push_arg(out, b"XREAD");
        Self::push_count_block(out, max, block);
        resp::push_arg(out, b"STREAMS");
        resp::push_arg(out, stream.as_bytes());
        resp::push_id_arg(out, after);
    }

    /// `XREAD` without a group, on a lean connection of its own (a blocking read holds it
    /// until data arrives).
    async fn read_after_inner(
        &self,
        stream: &str,
        after: MessageId,
        max: usize,
        block: Duration,
    ) -> Result<Vec<Message>, BusError> {
        let mut out = Vec::with_capacity(96 + stream.len());
        Self::encode_xread(&mut out, stream, after, max, block);
        let limit = if block.is_zero() {
            RESPONSE_TIMEOUT
        } else {
            block.saturating_add(BLOCK_GRACE)
        };
        let deliveries = self.pool.call_with(&out, 1, limit, read_deliveries).await?;
        Ok(deliveries
            .into_iter()
            .map(|d| Message {
                id: d.id,
                payload: d.payload,
                headers: d.headers,
            })
            .collect())
    }

    /// `last-generated-id` from `XINFO STREAM`: unlike the newest entry still there, it
    /// survives trimming and deletion.
    async fn last_id_inner(&self, stream: &str) -> Result<Option<MessageId>, BusError> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("STREAM").arg(stream);
        let info = match self.query(&cmd).await {
            Ok(reply) => into_pairs(reply)?,
            Err(BusError::Backend(message)) if message.contains("no such key") => return Ok(None),
            Err(error) => return Err(error),
        };
        let id = info
            .iter()
            .find(|(k, _)| as_bytes(k) == Some(b"last-generated-id".as_slice()))
            .map(|(_, v)| parse_id(v))
            .transpose()?
            .ok_or_else(|| {
                BusError::Protocol("XINFO STREAM reply without last-generated-id".to_owned())
            })?;
        Ok((id != MessageId::default()).then_some(id))
    }

    /// Appends `XACK` of `ids` (at least one) to `out`.
    fn encode_xack(out: &mut Vec<u8>, stream: &str, group: &str, ids: &[MessageId]) {
        resp::begin(out, 3 + ids.len());
        resp::push_arg(out, b"XACK");
        resp::push_arg(out, stream.as_bytes());
        resp::push_arg(out, group.as_bytes());
        for id in ids {
            resp::push_id_arg(out, *id);
        }
    }

    /// A read on the lean connections, after acknowledging `ack` in the same write: whatever
    /// is there already, else a blocking read. Trying without blocking first keeps a busy
    /// consumer off the blocking path, where Redis wakes it for every single job that lands.
    /// Returns how many of `ack` were pending and the outcome of the read.
    async fn read_group(
        pool: &resp::Pool,
        ack: &[MessageId],
        read: Read<'_>,
    ) -> Result<(u64, Result<Vec<Delivery>, BusError>), BusError> {
        let mut out = Vec::with_capacity(128 + 24 * ack.len());
        let acking = !ack.is_empty();
        if acking {
            Self::encode_xack(&mut out, read.stream, read.group, ack);
        }
        Self::encode_xreadgroup(
            &mut out,
            read.stream,
            read.group,
            read.consumer,
            read.max,
            Duration::ZERO,
        );
        let replies = 1 + usize::from(acking);
        let (acked, got) = pool
            .call_with(&out, replies, RESPONSE_TIMEOUT, |replies| {
                let acked = if acking { count(replies.int()?)? } else { 0 };
                Ok((acked, read_deliveries(replies)))
            })
            .await?;
        match got {
            Ok(deliveries) if deliveries.is_empty() && !read.block.is_zero() => {}
            got => return Ok((acked, got)),
        }
        out.clear();
        Self::encode_xreadgroup(
            &mut out,
            read.stream,
            read.group,
            read.consumer,
            read.max,
            read.block,
        );
        let limit = read.block.saturating_add(BLOCK_GRACE);
        let got = pool
            .call_with(&out, 1, limit, |replies| Ok(read_deliveries(replies)))
            .await?;
        Ok((acked, got))
    }

    /// `XACK` of `ids`; returns how many were pending.
    async fn ack_ids(
        pool: &resp::Pool,
        stream: &str,
        group: &str,
        ids: &[MessageId],
    ) -> Result<u64, BusError> {
        let mut out = Vec::with_capacity(64 + 24 * ids.len());
        Self::encode_xack(&mut out, stream, group, ids);
        pool.call_with(&out, 1, RESPONSE_TIMEOUT, |replies| count(replies.int()?))
            .await
    }

    fn eval(script: &str, keys: &[&str]) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len()).arg(keys);
        cmd
    }

    async fn consume_inner(
        &self,
        ack: &[MessageId],
        read: Read<'_>,
    ) -> Result<(u64, Vec<Delivery>), BusError> {
        let Read { stream, group, .. } = read;
        let mut acked = 0;
        let mut ack = ack;
        let mut created = false;
        loop {
            let (n, got) = Self::read_group(&self.pool, ack, read).await?;
            acked += n;
            // Acknowledged now; a second read must not acknowledge again.
            ack = &[];
            match got {
                Ok(deliveries) => return Ok((acked, deliveries)),
                // The group (or the whole stream, after a restart without persistence) is
                // missing: create it once and read again.
                Err(BusError::Backend(message)) if message.contains("NOGROUP") && !created => {
                    self.ensure_group_inner(stream, group).await?;
                    created = true;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn ensure_group_inner(&self, stream: &str, group: &str) -> Result<(), BusError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(stream)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM");
        match self.query(&cmd).await {
            Ok(_) => Ok(()),
            Err(BusError::Backend(message)) if message.contains("BUSYGROUP") => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn reclaim_inner(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>, BusError> {
        let dlq = dlq_stream(stream);
        let mut cmd = Self::eval(RECLAIM_SCRIPT, &[stream, &dlq]);
        cmd.arg(group)
            .arg(consumer)
            .arg(millis(min_idle))
            .arg(max.max(1))
            .arg(self.options.max_deliveries)
            .arg(self.options.maxlen.unwrap_or(0))
            .arg(format!("{HEADER_FIELD_PREFIX}{DLQ_ORIGINAL_ID_HEADER}"))
            .arg(format!("{HEADER_FIELD_PREFIX}{DLQ_REASON_HEADER}"))
            .arg(format!("{HEADER_FIELD_PREFIX}{DLQ_GROUP_HEADER}"))
            .arg(format!("{HEADER_FIELD_PREFIX}{DLQ_DELIVERY_COUNT_HEADER}"));
        let (claimed, dead) = self
            .pool
            .call_with(
                &cmd.get_packed_command(),
                1,
                RESPONSE_TIMEOUT,
                read_reclaimed,
            )
            .await?;
        for (id, count) in dead {
            tracing::warn!(stream, group, %id, count, "job moved to dead-letter stream");
        }
        Ok(claimed)
    }

    async fn group_stats_inner(&self, stream: &str, group: &str) -> Result<GroupStats, BusError> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("GROUPS").arg(stream);
        let groups = match self.query(&cmd).await {
            Ok(reply) => into_array(reply)?,
            Err(BusError::Backend(message)) if message.contains("no such key") => {
                return Ok(GroupStats::default())
            }
            Err(error) => return Err(error),
        };
        for info in groups {
            let info = into_pairs(info)?;
            let field = |name: &str| {
                info.iter()
                    .find(|(k, _)| as_bytes(k) == Some(name.as_bytes()))
                    .map(|(_, v)| v)
            };
            if field("name").and_then(as_bytes) != Some(group.as_bytes()) {
                continue;
            }
            let pending = field("pending").map(as_u64).transpose()?.unwrap_or(0);
            let lag = match field("lag") {
                Some(Value::Nil) | None => {
                    // Redis cannot tell after deletions in the middle of the stream: count.
                    let last = field("last-delivered-id")
                        .map(parse_id)
                        .transpose()?
                        .unwrap_or_default();
                    let mut cmd = Self::eval(LAG_SCRIPT, &[stream]);
                    cmd.arg(last.to_string());
                    as_u64(&self.query(&cmd).await?)?
                }
                Some(lag) => as_u64(lag)?,
            };
            return Ok(GroupStats { pending, lag });
        }
        Ok(GroupStats {
            pending: 0,
            lag: self.stream_len_inner(stream).await?,
        })
    }

    async fn stream_len_inner(&self, stream: &str) -> Result<u64, BusError> {
        as_u64(&self.query(redis::cmd("XLEN").arg(stream)).await?)
    }

    async fn scan_prefix_inner(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, BusError> {
        let pattern = format!("{}*", escape_glob(prefix));
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let reply = into_array(self.query(&cmd).await?)?;
            let [next, batch] = <[Value; 2]>::try_from(reply)
                .map_err(|_| BusError::Protocol("scan reply is not a pair".to_owned()))?;
            cursor = as_u64(&next)?;
            for key in into_array(batch)? {
                keys.push(
                    as_bytes(&key)
                        .ok_or_else(|| BusError::Protocol("scan key is not a string".to_owned()))?
                        .to_vec(),
                );
            }
            if cursor == 0 {
                break;
            }
        }
        // SCAN may return a key twice.
        keys.sort();
        keys.dedup();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let mut cmd = redis::cmd("MGET");
            for key in chunk {
                cmd.arg(key.as_slice());
            }
            let values = into_array(self.query(&cmd).await?)?;
            for (key, value) in chunk.iter().zip(values) {
                // Expired between SCAN and MGET.
                if let Some(value) = as_bytes(&value) {
                    out.push((String::from_utf8_lossy(key).into_owned(), value.to_vec()));
                }
            }
        }
        Ok(out)
    }

    async fn script_bool(
        &self,
        script: &str,
        key: &str,
        args: &[String],
    ) -> Result<bool, BusError> {
        let mut cmd = Self::eval(script, &[key]);
        cmd.arg(args);
        Ok(as_u64(&self.query(&cmd).await?)? == 1)
    }
}

fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Result<u64, BusError> {
    match v {
        Value::Int(n) => {
            u64::try_from(*n).map_err(|_| BusError::Protocol(format!("negative count {n}")))
        }
        other => as_bytes(other)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| BusError::Protocol(format!("expected a number, got {other:?}"))),
    }
}

fn parse_id(v: &Value) -> Result<MessageId, BusError> {
    let bytes =
        as_bytes(v).ok_or_else(|| BusError::Protocol(format!("expected an id, got {v:?}")))?;
    id_from_bytes(bytes)
}

/// `<ms>-<seq>` straight from reply bytes, without an intermediate string.
fn id_from_bytes(bytes: &[u8]) -> Result<MessageId, BusError> {
    fn number(digits: &[u8]) -> Option<u64> {
        if digits.is_empty() {
            return None;
        }
        digits.iter().try_fold(0u64, |n, &d| {
            d.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?
        })
    }
    let bad = || BusError::InvalidMessageId(String::from_utf8_lossy(bytes).into_owned());
    let dash = bytes.iter().position(|&b| b == b'-').ok_or_else(bad)?;
    let ms = number(&bytes[..dash]).ok_or_else(bad)?;
    let seq = number(&bytes[dash + 1..]).ok_or_else(bad)?;
    Ok(MessageId::new(ms, seq))
}

/// A count reply as `u64`.
fn count(n: i64) -> Result<u64, BusError> {
    u64::try_from(n).map_err(|_| BusError::Protocol(format!("negative count {n}")))
}

/// One consumer's read: what `XREADGROUP` asks for.
#[derive(Debug, Clone, Copy)]
struct Read<'a> {
    stream: &'a str,
    group: &'a str,
    consumer: &'a str,
    max: usize,
    block: Duration,
}

fn shape(what: &str) -> BusError {
    BusError::Protocol(format!("unexpected reply shape: {what}"))
}

/// A RESP2 `XREADGROUP` or `XREAD` reply read in place into deliveries: nil when nothing
/// came, else `[[stream, [entry, ...]]]` (see [`read_entry`]).
fn read_deliveries(replies: &mut resp::Replies<'_>) -> Result<Vec<Delivery>, BusError> {
    let Some(streams) = replies.array()? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for _ in 0..streams {
        if replies.array()? != Some(2) {
            return Err(shape("stream is not a pair"));
        }
        replies.bulk()?;
        let entries = replies.array()?.unwrap_or(0);
        out.reserve(entries);
        for _ in 0..entries {
            let Message {
                id,
                payload,
                headers,
            } = read_entry(replies)?;
            out.push(Delivery {
                id,
                payload,
                headers,
                delivery_count: 1,
            });
        }
    }
    Ok(out)
}

/// An `XRANGE` reply: `[entry, ...]`.
fn read_entries(replies: &mut resp::Replies<'_>) -> Result<Vec<Message>, BusError> {
    let entries = replies.array()?.unwrap_or(0);
    (0..entries).map(|_| read_entry(replies)).collect()
}

/// One stream entry, `[id, [field, value, ...]]`, read in place.
fn read_entry(replies: &mut resp::Replies<'_>) -> Result<Message, BusError> {
    if replies.array()? != Some(2) {
        return Err(shape("entry is not a pair"));
    }
    let id = id_from_bytes(replies.bulk()?.ok_or_else(|| shape("nil id"))?)?;
    let (payload, headers) = read_fields(replies)?;
    Ok(Message {
        id,
        payload,
        headers,
    })
}

/// An entry's `[field, value, ...]` back into payload and headers: only the payload is copied
/// out, and headers are built only for entries that carry some. Unknown fields are skipped.
fn read_fields(replies: &mut resp::Replies<'_>) -> Result<(Vec<u8>, Headers), BusError> {
    let fields = replies.array()?.unwrap_or(0);
    let mut payload = Vec::new();
    let mut headers = Headers::new();
    for _ in 0..fields / 2 {
        let (name, value) = (replies.bulk()?, replies.bulk()?);
        let (Some(name), Some(value)) = (name, value) else {
            continue;
        };
        if name == PAYLOAD_FIELD.as_bytes() {
            payload = value.to_vec();
        } else if let Some(name) = name.strip_prefix(HEADER_FIELD_PREFIX.as_bytes()) {
            headers.insert(
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            );
        }
    }
    if fields % 2 == 1 {
        replies.bulk()?;
    }
    Ok((payload, headers))
}

/// Entries the reclaim script dead-lettered, with their delivery counts.
type DeadLetters = Vec<(MessageId, u64)>;

/// What the reclaim script answers: `[[[id, fields, delivery count], ...], [[id, delivery
/// count], ...]]`, the claimed entries and the dead-lettered ones.
fn read_reclaimed(
    replies: &mut resp::Replies<'_>,
) -> Result<(Vec<Delivery>, DeadLetters), BusError> {
    if replies.array()? != Some(2) {
        return Err(shape("reclaim reply is not a pair"));
    }
    let claimed = replies.array()?.unwrap_or(0);
    let mut out = Vec::with_capacity(claimed);
    for _ in 0..claimed {
        if replies.array()? != Some(3) {
            return Err(shape("reclaimed entry is not a triple"));
        }
        let id = id_from_bytes(replies.bulk()?.ok_or_else(|| shape("nil id"))?)?;
        let (payload, headers) = read_fields(replies)?;
        out.push(Delivery {
            id,
            payload,
            headers,
            delivery_count: count(replies.int()?)?,
        });
    }
    let dead = replies.array()?.unwrap_or(0);
    let mut dead_ids = Vec::with_capacity(dead);
    for _ in 0..dead {
        if replies.array()? != Some(2) {
            return Err(shape("dead letter is not a pair"));
        }
        let id = id_from_bytes(replies.bulk()?.ok_or_else(|| shape("nil id"))?)?;
        dead_ids.push((id, count(replies.int()?)?));
    }
    Ok((out, dead_ids))
}

fn into_array(v: Value) -> Result<Vec<Value>, BusError> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(BusError::Protocol(format!(
            "expected an array, got {other:?}"
        ))),
    }
}

/// A RESP2 flat `[k, v, k, v]` array or a RESP3 map as pairs.
fn into_pairs(v: Value) -> Result<Vec<(Value, Value)>, BusError> {
    match v {
        Value::Map(pairs) => Ok(pairs),
        other => {
            let items = into_array(other)?;
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            Ok(pairs)
        }
    }
}

impl StreamBus for RedisBus {
    fn options(&self) -> &BusOptions {
        &self.options
    }

    fn ping(&self) -> BusFuture<'_, ()> {
        Box::pin(async move {
            self.query(&redis::cmd("PING")).await?;
            Ok(())
        })
    }

    fn publish<'a>(
        &'a self,
        stream: &'a str,
        payload: &'a [u8],
        headers: &'a Headers,
    ) -> BusFuture<'a, MessageId> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(128 + payload.len());
            self.encode_xadd(&mut out, stream, payload, headers);
            self.pool
                .call_with(&out, 1, RESPONSE_TIMEOUT, |replies| {
                    id_from_bytes(replies.bulk()?.unwrap_or_default())
                })
                .await
        })
    }

    fn publish_batch<'a>(
        &'a self,
        stream: &'a str,
        messages: &'a [(&'a [u8], &'a Headers)],
    ) -> BusFuture<'a, Vec<MessageId>> {
        Box::pin(async move {
            if messages.is_empty() {
                return Ok(Vec::new());
            }
            // MULTI/EXEC rather than a bare pipeline: the batch lands whole (or not at all),
            // and consumers blocked on the stream wake once for it, not once per job.
            let mut out = Vec::with_capacity(messages.len() * 160 + 32);
            resp::encode(&mut out, &[b"MULTI"]);
            for (payload, headers) in messages {
                self.encode_xadd(&mut out, stream, payload, headers);
            }
            resp::encode(&mut out, &[b"EXEC"]);
            let n = messages.len();
            self.pool
                .call_with(&out, n + 2, RESPONSE_TIMEOUT, |replies| {
                    // A command refused while queueing fails the EXEC with EXECABORT;
                    // report the refusal itself.
                    let mut refused = None;
                    for _ in 0..=n {
                        if let Err(error) = replies.bulk() {
                            refused.get_or_insert(error);
                        }
                    }
                    let len = match replies.array() {
                        Ok(len) => len.unwrap_or(0),
                        Err(error) => return Err(refused.unwrap_or(error)),
                    };
                    if len != n {
                        return Err(BusError::Protocol(format!(
                            "{len} replies to a batch of {n} XADDs"
                        )));
                    }
                    (0..n)
                        .map(|_| id_from_bytes(replies.bulk()?.unwrap_or_default()))
                        .collect()
                })
                .await
        })
    }

    fn ack_batch<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        ids: &'a [MessageId],
    ) -> BusFuture<'a, u64> {
        Box::pin(async move {
            // XACK needs at least one id.
            if ids.is_empty() {
                return Ok(0);
            }
            Self::ack_ids(&self.pool, stream, group, ids).await
        })
    }

    fn ensure_group<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, ()> {
        Box::pin(self.ensure_group_inner(stream, group))
    }

    fn consume<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Delivery>> {
        Box::pin(async move {
            let read = Read {
                stream,
                group,
                consumer,
                max,
                block,
            };
            Ok(self.consume_inner(&[], read).await?.1)
        })
    }

    fn ack_and_consume<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        ack: &'a [MessageId],
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, (u64, Vec<Delivery>)> {
        Box::pin(async move {
            let read = Read {
                stream,
                group,
                consumer,
                max,
                block,
            };
            self.consume_inner(ack, read).await
        })
    }

    fn ack<'a>(&'a self, stream: &'a str, group: &'a str, id: MessageId) -> BusFuture<'a, bool> {
        Box::pin(async move { Ok(Self::ack_ids(&self.pool, stream, group, &[id]).await? > 0) })
    }

    fn reclaim<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        min_idle: Duration,
        max: usize,
    ) -> BusFuture<'a, Vec<Delivery>> {
        Box::pin(self.reclaim_inner(stream, group, consumer, min_idle, max))
    }

    fn group_stats<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, GroupStats> {
        Box::pin(self.group_stats_inner(stream, group))
    }

    fn stream_len<'a>(&'a self, stream: &'a str) -> BusFuture<'a, u64> {
        Box::pin(self.stream_len_inner(stream))
    }

    fn range<'a>(
        &'a self,
        stream: &'a str,
        after: Option<MessageId>,
        count: usize,
    ) -> BusFuture<'a, Vec<Message>> {
        Box::pin(async move {
            if count == 0 {
                return Ok(Vec::new());
            }
            let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(stream).arg(start).arg("+").arg("COUNT").arg(count);
            self.pool
                .call_with(&cmd.get_packed_command(), 1, RESPONSE_TIMEOUT, read_entries)
                .await
        })
    }

    fn read_after<'a>(
        &'a self,
        stream: &'a str,
        after: MessageId,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Message>> {
        Box::pin(self.read_after_inner(stream, after, max, block))
    }

    fn last_id<'a>(&'a self, stream: &'a str) -> BusFuture<'a, Option<MessageId>> {
        Box::pin(self.last_id_inner(stream))
    }

    fn delete_stream<'a>(&'a self, stream: &'a str) -> BusFuture<'a, bool> {
        Box::pin(async move { Ok(as_u64(&self.query(redis::cmd("DEL").arg(stream)).await?)? > 0) })
    }
}

impl KvStore for RedisBus {
    fn set_with_ttl<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BusFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value).arg("PX").arg(millis(ttl).max(1));
            self.query(&cmd).await?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BusFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let reply = self.query(redis::cmd("GET").arg(key)).await?;
            Ok(as_bytes(&reply).map(<[u8]>::to_vec))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BusFuture<'a, bool> {
        Box::pin(async move { Ok(as_u64(&self.query(redis::cmd("DEL").arg(key)).await?)? > 0) })
    }

    fn scan_prefix<'a>(&'a self, prefix: &'a str) -> BusFuture<'a, Vec<(String, Vec<u8>)>> {
        Box::pin(self.scan_prefix_inner(prefix))
    }

    fn claim_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool> {
        Box::pin(async move {
            let args = [owner.to_owned(), millis(ttl).max(1).to_string()];
            self.script_bool(CLAIM_SCRIPT, key, &args).await
        })
    }

    fn renew_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool> {
        Box::pin(async move {
            let args = [owner.to_owned(), millis(ttl).max(1).to_string()];
            self.script_bool(RENEW_SCRIPT, key, &args).await
        })
    }

    fn release_affinity<'a>(&'a self, key: &'a str, owner: &'a str) -> BusFuture<'a, bool> {
        Box::pin(async move {
            self.script_bool(RELEASE_SCRIPT, key, &[owner.to_owned()])
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(escape_glob("worker:*[a]?"), "worker:\\*\\[a\\]\\?");
    }

    #[test]
    fn ids_parse_from_bytes() {
        assert_eq!(
            id_from_bytes(b"1700000000123-45").expect("id"),
            MessageId::new(1_700_000_000_123, 45)
        );
        for bad in [
            &b""[..],
            b"12",
            b"-1",
            b"1-",
            b"1-2-3",
            b"a-1",
            b"99999999999999999999-0",
        ] {
            assert!(id_from_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn read_deliveries_parse_in_place() {
        // One stream, two entries: one with a header and an unknown field, one with an odd
        // trailing field; then the nil of an empty read.
        let mut buf = Vec::new();
        resp::begin(&mut buf, 1);
        resp::begin(&mut buf, 2);
        resp::push_arg(&mut buf, b"jobs");
        resp::begin(&mut buf, 2);
        resp::begin(&mut buf, 2);
        resp::push_arg(&mut buf, b"5-1");
        resp::encode(
            &mut buf,
            &[b"payload", b"abc", b"h:k", b"v", b"other", b"x"],
        );
        resp::begin(&mut buf, 2);
        resp::push_arg(&mut buf, b"6-0");
        resp::encode(&mut buf, &[b"payload", b"", b"dangling"]);
        buf.extend_from_slice(b"*-1\r\n");
        let mut replies = resp::Replies::for_tests(&buf);
        let out = read_deliveries(&mut replies).expect("valid reply");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].id, MessageId::new(5, 1));
        assert_eq!(out[0].payload, b"abc");
        assert_eq!(out[0].headers.get("k").map(String::as_str), Some("v"));
        assert_eq!(out[0].headers.len(), 1);
        assert_eq!(out[1].id, MessageId::new(6, 0));
        assert!(out[1].payload.is_empty() && out[1].headers.is_empty());
        assert!(read_deliveries(&mut replies).expect("nil").is_empty());
        let mut error = resp::Replies::for_tests(b"-NOGROUP no such group\r\n");
        assert!(matches!(
            read_deliveries(&mut error),
            Err(BusError::Backend(_))
        ));
    }

    /// A broadcast reader: from the start of a missing stream, then woken by a publish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_after_and_last_id_follow_a_stream() {
        let server = crate::server::RedisServer::start()
            .unwrap_or_else(|error| panic!("this test needs redis-server: {error}"));
        let bus = RedisBus::connect(&server.url(), BusOptions::default())
            .await
            .expect("connect");
        let bus = std::sync::Arc::new(bus);
        assert_eq!(bus.last_id("s").await.expect("missing"), None);
        let none = bus
            .read_after("s", MessageId::default(), 10, Duration::from_millis(100))
            .await
            .expect("blocking read of a missing stream");
        assert!(none.is_empty());

        let mut headers = Headers::new();
        headers.insert("k".to_owned(), "v".to_owned());
        let first = bus.publish("s", b"one", &headers).await.expect("publish");
        assert_eq!(bus.last_id("s").await.expect("last id"), Some(first));
        let got = bus
            .read_after("s", MessageId::default(), 10, Duration::ZERO)
            .await
            .expect("read");
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].id, got[0].payload.as_slice()), (first, &b"one"[..]));
        assert_eq!(got[0].headers, headers);

        let reader = {
            let bus = std::sync::Arc::clone(&bus);
            tokio::spawn(async move {
                bus.read_after("s", first, 10, Duration::from_secs(20))
                    .await
                    .expect("blocking read")
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let second = bus
            .publish("s", b"two", &Headers::new())
            .await
            .expect("publish");
        let woke = reader.await.expect("reader task");
        assert_eq!(woke.iter().map(|m| m.id).collect::<Vec<_>>(), vec![second]);
    }
}
