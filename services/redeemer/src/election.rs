//! Leader election behind one face: the store's Redis lock, or a Kubernetes Lease. Either
//! way the leader writes with a fencing token the store checks on every write: the lock's
//! own token, or a fresh one taken from the store each time the Lease is won, so a leader
//! that lost its Lease (paused, partitioned) cannot overwrite what its successor recorded.

use std::time::Duration;

use livefarm_lease::KubeLease;

use crate::config::{ElectionKind, RedeemerConfig};
use crate::error::RedeemerError;
use crate::store::Store;

/// How this instance competes for leadership.
#[derive(Clone, Debug)]
pub enum Election {
    /// The lock in the store's Redis.
    Redis(Store),
    /// A Kubernetes Lease; the fence comes from the store.
    Kubernetes {
        /// The Lease (boxed: it is much larger than the store handle).
        lease: Box<KubeLease>,
        /// Where fencing tokens come from.
        store: Store,
    },
}

/// Leadership held: the token that renews it and the token that fences writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// The lock's or the Lease's token.
    pub lease_token: u64,
    /// The store's fencing token for this term.
    pub fence: u64,
}

impl Election {
    /// The election `config.leader_election` names (`auto`: a Lease inside a pod).
    pub async fn from_config(
        config: &RedeemerConfig,
        store: Store,
    ) -> Result<Election, RedeemerError> {
        match config.election()? {
            ElectionKind::Redis => Ok(Election::Redis(store)),
            ElectionKind::Kubernetes => {
                let namespace =
                    Some(config.lease_namespace.clone()).filter(|namespace| !namespace.is_empty());
                let lease = KubeLease::infer(namespace, &config.lease_name).await?;
                Ok(Election::Kubernetes {
                    lease: Box::new(lease),
                    store,
                })
            }
        }
    }

    /// What it is, for logs.
    pub fn describe(&self) -> String {
        match self {
            Election::Redis(_) => "redis lock".to_owned(),
            Election::Kubernetes { lease, .. } => format!("kubernetes lease {lease}"),
        }
    }

    /// Becomes the leader (or stays it) for `ttl`; `None` while another instance leads.
    pub async fn acquire(
        &self,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Leadership>, RedeemerError> {
        match self {
            Election::Redis(store) => {
                Ok(store.acquire(owner, ttl).await?.map(|token| Leadership {
                    lease_token: token,
                    fence: token,
                }))
            }
            Election::Kubernetes { lease, store } => match lease.acquire(owner, ttl).await? {
                Some(lease_token) => Ok(Some(Leadership {
                    lease_token,
                    fence: store.new_fence().await?,
                })),
                None => Ok(None),
            },
        }
    }

    /// Extends the leadership; false when it was lost.
    pub async fn renew(
        &self,
        owner: &str,
        held: Leadership,
        ttl: Duration,
    ) -> Result<bool, RedeemerError> {
        match self {
            Election::Redis(store) => store.renew(owner, held.lease_token, ttl).await,
            Election::Kubernetes { lease, .. } => {
                Ok(lease.renew(owner, held.lease_token, ttl).await?)
            }
        }
    }

    /// Gives the leadership up so that a standby takes over at once.
    pub async fn release(&self, owner: &str, held: Leadership) -> Result<bool, RedeemerError> {
        match self {
            Election::Redis(store) => store.release(owner, held.lease_token).await,
            Election::Kubernetes { lease, .. } => {
                Ok(lease.release(owner, held.lease_token).await?)
            }
        }
    }
}
