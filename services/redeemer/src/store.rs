//! Durable ticket records and the leader lock, in Redis.
//!
//! Keys under the configured prefix `P`:
//! - `P:ticket:<hash>`: one JSON [`TicketRecord`] per ticket, keyed by the ticket hash;
//! - `P:open`: the set of hashes not yet in a final state (pending or submitted);
//! - `P:lock`: `<instance>:<token>` of the active redeemer, with a TTL;
//! - `P:fence`: the last fencing token handed out.
//!
//! Every record write runs as one Lua script that first checks that the writer's fencing token
//! is still the latest: a redeemer that lost its lock (paused, partitioned) cannot overwrite
//! what its successor wrote, and since a transaction is recorded before it is broadcast, it
//! cannot submit one either.

use std::time::Duration;

use livefarm_pm::WinningTicket;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::error::RedeemerError;

/// Milliseconds since the Unix epoch (the clock of every `*_ms` timestamp).
pub use livefarm_jobs::now_ms;

/// One signed redemption transaction, kept so a restart can look it up or send it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentTx {
    /// Transaction hash, `0x`-hex.
    pub hash: String,
    /// The signed EIP-2718 bytes, `0x`-hex: broadcasting them again is not a second submission.
    pub raw: String,
    /// Account nonce (replacements reuse it).
    pub nonce: u64,
    /// EIP-1559 fee cap, wei.
    #[serde(with = "u128_string")]
    pub max_fee_per_gas: u128,
    /// EIP-1559 tip, wei.
    #[serde(with = "u128_string")]
    pub max_priority_fee_per_gas: u128,
    /// When it was signed and recorded.
    pub sent_at_ms: u64,
}

/// u128 as a decimal string: serde's buffering of internally tagged enums has no u128.
mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Where a ticket stands. Everything but `Pending` and `Submitted` is final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TicketState {
    /// Queued, waiting for its params to expire.
    Pending,
    /// A transaction was signed and recorded (then broadcast); the last one is the newest
    /// replacement. All share one nonce, so at most one of them is mined.
    Submitted {
        /// The original transaction and its replacements.
        txs: Vec<SentTx>,
    },
    /// Redeemed by our transaction.
    Redeemed {
        /// The mined transaction.
        tx: String,
        /// Its block.
        block: u64,
    },
    /// `usedTickets` already marks it: redeemed by someone else, never submitted by us.
    AlreadyUsed,
    /// Past `creationRound + ticketValidityPeriod`, never submitted.
    Expired,
    /// The sender could not cover it until it expired: reserve allocation plus deposit (less
    /// pending redemptions) did not exceed the transaction cost (§11.1, §11.2).
    InsufficientFunds {
        /// `reserveAlloc + deposit − pending`, wei.
        available: String,
        /// Estimated transaction cost, wei.
        tx_cost: String,
    },
    /// Until it expired, the transaction would have cost at least the face value.
    Unprofitable {
        /// Face value, wei.
        face_value: String,
        /// Estimated transaction cost, wei.
        tx_cost: String,
    },
    /// The contract refused it or the transaction reverted.
    Failed {
        /// Revert reason or why it was given up.
        reason: String,
        /// The mined transaction, if one was.
        tx: Option<String>,
    },
}

impl TicketState {
    /// Whether no further work is due.
    pub fn is_final(&self) -> bool {
        !matches!(self, TicketState::Pending | TicketState::Submitted { .. })
    }

    /// A short name: `pending`, `submitted`, `redeemed`, ...
    pub fn name(&self) -> &'static str {
        match self {
            TicketState::Pending => "pending",
            TicketState::Submitted { .. } => "submitted",
            TicketState::Redeemed { .. } => "redeemed",
            TicketState::AlreadyUsed => "already_used",
            TicketState::Expired => "expired",
            TicketState::InsufficientFunds { .. } => "insufficient_funds",
            TicketState::Unprofitable { .. } => "unprofitable",
            TicketState::Failed { .. } => "failed",
        }
    }
}

/// The durable record of one winning ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    /// The ticket as queued.
    pub ticket: WinningTicket,
    /// Where it stands.
    #[serde(flatten)]
    pub state: TicketState,
    /// Fencing token of the redeemer that wrote this version.
    pub fence: u64,
    /// When it was first recorded.
    pub queued_at_ms: u64,
    /// When the redeemer first saw its params expired.
    pub params_expired_at_ms: Option<u64>,
    /// When it reached a final state.
    pub finished_at_ms: Option<u64>,
    /// Why a pending ticket was last put off (`InsufficientFunds` or `Unprofitable`): it is
    /// tried again on later blocks (a sender may top up, gas may fall) and, if it expires
    /// first, this becomes its final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<TicketState>,
    /// Redemption transactions of this ticket that were mined and reverted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reverted_txs: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TicketRecord {
    /// A new pending record.
    pub fn pending(ticket: WinningTicket, fence: u64) -> TicketRecord {
        TicketRecord {
            ticket,
            state: TicketState::Pending,
            fence,
            queued_at_ms: now_ms(),
            params_expired_at_ms: None,
            finished_at_ms: None,
            deferred: None,
            reverted_txs: 0,
        }
    }

    /// The ticket hash, `0x`-hex.
    pub fn hash_hex(&self) -> String {
        hash_hex(&self.ticket.ticket_hash)
    }
}

/// A ticket hash as `0x`-hex.
pub fn hash_hex(hash: &[u8; 32]) -> String {
    let mut s = String::with_capacity(66);
    s.push_str("0x");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Takes the lock, or refreshes it for its holder. Returns the holder's token, 0 if another
/// instance holds it. The token increments on every new acquisition.
const ACQUIRE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, token = string.match(cur, '^(.*):(%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'NX', 'PX', ARGV[2])
return token
"#;

/// Extends the lock if `ARGV[1]` (`owner:token`) still holds it.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// Drops the lock if `ARGV[1]` still holds it.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Writes a record if the token is the latest: -1 fenced, 0 exists (create only), 1 written.
const WRITE: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if ARGV[5] == 'create' and redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[3], ARGV[3])
else
  redis.call('SREM', KEYS[3], ARGV[3])
end
return 1
"#;

/// Ticket records and the leader lock.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// What a fenced write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The record was stored.
    Stored,
    /// A create found a record already there (a ticket queued twice).
    Exists,
}

impl Store {
    /// Connects to Redis at `url` (see [`livefarm_bus::redis_connect`]); keys start with
    /// `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Store, RedeemerError> {
        let conn = livefarm_bus::redis_connect::connect(url)
            .await
            .map_err(|error| RedeemerError::Store(error.to_string()))?;
        Ok(Store {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    fn ticket_key(&self, hash: &str) -> String {
        self.key(&format!("ticket:{hash}"))
    }

    async fn eval(
        &self,
        script: &str,
        keys: &[&str],
        args: &[String],
    ) -> Result<i64, RedeemerError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len());
        for k in keys {
            cmd.arg(*k);
        }
        for a in args {
            cmd.arg(a);
        }
        let mut conn = self.conn.clone();
        Ok(cmd.query_async(&mut conn).await?)
    }

    /// Takes the leader lock for `owner` (or refreshes it); the fencing token, or `None` when
    /// another instance holds it.
    pub async fn acquire(&self, owner: &str, ttl: Duration) -> Result<Option<u64>, RedeemerError> {
        let token = self
            .eval(
                ACQUIRE,
                &[&self.key("lock"), &self.key("fence")],
                &[owner.to_owned(), ttl.as_millis().to_string()],
            )
            .await?;
        Ok(u64::try_from(token).ok().filter(|t| *t > 0))
    }

    /// A new fencing token for a leader chosen elsewhere (a Kubernetes Lease): from now on
    /// only writes carrying it are accepted, so an old leader's late writes are refused.
    pub async fn new_fence(&self) -> Result<u64, RedeemerError> {
        let mut conn = self.conn.clone();
        let token: u64 = redis::cmd("INCR")
            .arg(self.key("fence"))
            .query_async(&mut conn)
            .await?;
        Ok(token)
    }

    /// Extends `owner`'s lock with `token`; false if it lost it.
    pub async fn renew(
        &self,
        owner: &str,
        token: u64,
        ttl: Duration,
    ) -> Result<bool, RedeemerError> {
        let held = self
            .eval(
                RENEW,
                &[&self.key("lock")],
                &[format!("{owner}:{token}"), ttl.as_millis().to_string()],
            )
            .await?;
        Ok(held == 1)
    }

    /// Drops `owner`'s lock with `token`, if it still holds it.
    pub async fn release(&self, owner: &str, token: u64) -> Result<bool, RedeemerError> {
        let held = self
            .eval(RELEASE, &[&self.key("lock")], &[format!("{owner}:{token}")])
            .await?;
        Ok(held == 1)
    }

    /// The current holder and token of the lock.
    pub async fn lock_holder(&self) -> Result<Option<(String, u64)>, RedeemerError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = redis::cmd("GET")
            .arg(self.key("lock"))
            .query_async(&mut conn)
            .await?;
        Ok(value.and_then(|v| {
            let (owner, token) = v.rsplit_once(':')?;
            Some((owner.to_owned(), token.parse().ok()?))
        }))
    }

    async fn write(&self, record: &TicketRecord, create: bool) -> Result<Written, RedeemerError> {
        let hash = record.hash_hex();
        let json = serde_json::to_string(record).map_err(|e| RedeemerError::Corrupt {
            key: self.ticket_key(&hash),
            reason: e.to_string(),
        })?;
        let open = if record.state.is_final() { "0" } else { "1" };
        let mode = if create { "create" } else { "set" };
        let done = self
            .eval(
                WRITE,
                &[
                    &self.key("fence"),
                    &self.ticket_key(&hash),
                    &self.key("open"),
                ],
                &[
                    record.fence.to_string(),
                    json,
                    hash,
                    open.to_owned(),
                    mode.to_owned(),
                ],
            )
            .await?;
        match done {
            1 => Ok(Written::Stored),
            0 => Ok(Written::Exists),
            _ => Err(RedeemerError::Fenced {
                token: record.fence,
            }),
        }
    }

    /// Records a new ticket unless one with its hash exists (fenced by `record.fence`).
    pub async fn create(&self, record: &TicketRecord) -> Result<Written, RedeemerError> {
        self.write(record, true).await
    }

    /// Overwrites a ticket's record (fenced by `record.fence`).
    pub async fn update(&self, record: &TicketRecord) -> Result<(), RedeemerError> {
        self.write(record, false).await.map(|_| ())
    }

    /// The record of the ticket with `hash` (`0x`-hex).
    pub async fn get(&self, hash: &str) -> Result<Option<TicketRecord>, RedeemerError> {
        let key = self.ticket_key(hash);
        let mut conn = self.conn.clone();
        let json: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| RedeemerError::Corrupt {
                key,
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    /// Records not yet final, oldest first.
    pub async fn open(&self) -> Result<Vec<TicketRecord>, RedeemerError> {
        let mut conn = self.conn.clone();
        let hashes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.key("open"))
            .query_async(&mut conn)
            .await?;
        let mut out = Vec::with_capacity(hashes.len());
        for hash in hashes {
            if let Some(record) = self.get(&hash).await? {
                out.push(record);
            }
        }
        out.sort_by_key(|r| (r.queued_at_ms, r.ticket.sender_nonce));
        Ok(out)
    }

    /// Every record, in no particular order (tests, benchmarks, operators).
    pub async fn all(&self) -> Result<Vec<TicketRecord>, RedeemerError> {
        let mut conn = self.conn.clone();
        let pattern = self.ticket_key("*");
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let prefix = self.ticket_key("");
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(hash) = key.strip_prefix(&prefix) {
                if let Some(record) = self.get(hash).await? {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }
}
