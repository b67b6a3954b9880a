//! Leader election on a Kubernetes `coordination.k8s.io/v1` Lease, with a fencing token.
//!
//! Livefarm runs exactly one active redeemer; the others stand by. [`KubeLease`] elects the
//! leader the way client-go's `leaderelection` package does, so `kubectl get lease` shows the
//! usual fields: `spec.holderIdentity`, `spec.leaseDurationSeconds` (the TTL rounded up to whole
//! seconds, at least 1), `spec.acquireTime` and `spec.renewTime` (microsecond timestamps) and
//! `spec.leaseTransitions`.
//!
//! - A lease is *held* while `holderIdentity` is set and `renewTime + leaseDurationSeconds` lies
//!   in the future by the local clock; otherwise it is free (released, expired or new).
//! - Every write carries the `metadata.resourceVersion` it read (or is a create when the Lease
//!   does not exist), so of two candidates racing for a free lease exactly one wins; the loser's
//!   409 Conflict / AlreadyExists is reported as "not acquired", not as an error.
//! - [`KubeLease::release`] clears `holderIdentity` and sets `leaseDurationSeconds` to 1, like
//!   client-go's `ReleaseOnCancel`, so a standby takes over at once instead of after the TTL.
//!
//! # Fencing token
//!
//! A lease alone cannot stop a leader that paused (GC, a stalled node, a partition) past its TTL
//! from writing after a standby took over. So each acquisition hands out a fencing token:
//! `token = spec.leaseTransitions + 1`. `leaseTransitions` is incremented every time the lease is
//! taken while free (released or expired) or held by another identity (a new Lease, created
//! here or pre-made empty, starts at 0: token 1), and kept when the
//! holder refreshes or renews its own live lease; a release keeps it too. The token is therefore
//! a `u64 > 0` that strictly increases every time leadership changes hands (also when one
//! identity re-takes its own expired or released lease), and stays the same while one leader
//! keeps renewing. The caller stores it as a fence next to the data it protects (the redeemer:
//! in Redis) and refuses writes that carry a lower token, so a deposed leader's late writes are
//! rejected.
//!
//! # RBAC
//!
//! When the Lease exists (the Helm chart renders it, with no holder: a Lease without a live
//! holder is free, and the first candidate to write it leads), the pod's service account needs
//! only `get` and `update` on that one Lease:
//!
//! ```yaml
//! apiVersion: rbac.authorization.k8s.io/v1
//! kind: Role
//! metadata: { name: livefarm-redeemer }
//! rules:
//!   - apiGroups: ["coordination.k8s.io"]
//!     resources: ["leases"]
//!     resourceNames: ["livefarm-redeemer"]
//!     verbs: ["get", "update"]
//! ```
//!
//! bound to the service account with a `RoleBinding`. Without a pre-made Lease, `acquire`
//! creates it, which needs `create` on `leases` (a verb `resourceNames` cannot restrict).
//!
//! # TLS
//!
//! kube is built with rustls on the workspace's `aws-lc-rs` provider (no `ring`).
//! [`KubeLease::infer`] installs that provider as the process default (if none is installed
//! yet) before it builds the https client; callers that build their own [`kube::Client`] for
//! [`KubeLease::new`] should call [`install_crypto_provider`] first.

mod error;
/// Test helpers: a client from a kubeconfig, and a fake API server for injected faults.
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tracing::debug;

pub use error::LeaseError;

/// True when running inside a Kubernetes pod (`KUBERNETES_SERVICE_HOST` set).
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|host| !host.is_empty())
}

/// Installs rustls' `aws-lc-rs` crypto provider as the process default, unless one is installed
/// already; kube's https client needs a default provider to build its TLS config.
pub fn install_crypto_provider() {
    // An error only means another provider was installed first, which serves as well.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A leader-election lease: one `coordination.k8s.io/v1` Lease object in one namespace.
#[derive(Clone)]
pub struct KubeLease {
    api: Api<Lease>,
    namespace: String,
    name: String,
}

impl fmt::Debug for KubeLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeLease")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a read of the Lease says about who holds it.
struct Observed {
    lease: Lease,
    spec: LeaseSpec,
    /// `spec.leaseTransitions`, negative values read as 0.
    transitions: i32,
    /// The live holder, `None` when free or expired.
    live_holder: Option<String>,
}

impl KubeLease {
    /// In-cluster / kubeconfig client via [`kube::Config::infer`]; namespace: `Some(ns)` or the
    /// client's default namespace (in cluster: the pod's namespace).
    pub async fn infer(namespace: Option<String>, name: &str) -> Result<KubeLease, LeaseError> {
        install_crypto_provider();
        let config = kube::Config::infer()
            .await
            .map_err(|source| LeaseError::Config {
                lease: namespace
                    .as_deref()
                    .map_or_else(|| name.to_owned(), |ns| format!("{ns}/{name}")),
                source,
            })?;
        let namespace = namespace.unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config).map_err(|source| LeaseError::Client {
            lease: format!("{namespace}/{name}"),
            source,
        })?;
        Ok(KubeLease::new(client, &namespace, name))
    }

    /// A lease named `name` in `namespace`, reached through `client`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> KubeLease {
        KubeLease {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The Lease object's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Lease object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the lease for `owner` (or refreshes it if `owner` already holds it); `Some(fencing
    /// token)` or `None` when another holder's lease has not expired (or another candidate won
    /// the race for it).
    pub async fn acquire(&self, owner: &str, ttl: Duration) -> Result<Option<u64>, LeaseError> {
        let now = Timestamp::now();
        let Some(observed) = self.observe(now).await? else {
            // No Lease yet: create it; AlreadyExists means another candidate created it first.
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(owner.to_owned()),
                    lease_duration_seconds: Some(ttl_seconds(ttl)),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    debug!(lease = %self, owner, token = 1, "created and took the lease");
                    Ok(Some(token_of(0)))
                }
                Err(error) if is_conflict(&error) => Ok(None),
                Err(error) => Err(self.error("create", error)),
            };
        };
        let Observed {
            lease,
            mut spec,
            transitions,
            live_holder,
        } = observed;
        match live_holder {
            Some(holder) if holder == owner => {
                // Our own live lease: refresh it, same token.
                spec.renew_time = Some(MicroTime(now));
                spec.lease_duration_seconds = Some(ttl_seconds(ttl));
                spec.lease_transitions = Some(transitions);
                Ok(self
                    .replace(lease, spec)
                    .await?
                    .then(|| token_of(transitions)))
            }
            Some(_) => Ok(None),
            None => {
                // Free, released or expired: take it over with the next token. A Lease nobody
                // ever held (made empty by the Helm chart) is taken as a new one is created:
                // token 1.
                let never_held = spec.acquire_time.is_none() && spec.lease_transitions.is_none();
                let transitions = if never_held {
                    0
                } else {
                    transitions
                        .checked_add(1)
                        .ok_or_else(|| LeaseError::TokensExhausted {
                            lease: self.to_string(),
                        })?
                };
                spec.holder_identity = Some(owner.to_owned());
                spec.lease_duration_seconds = Some(ttl_seconds(ttl));
                spec.acquire_time = Some(MicroTime(now));
                spec.renew_time = Some(MicroTime(now));
                spec.lease_transitions = Some(transitions);
                let won = self.replace(lease, spec).await?;
                if won {
                    debug!(lease = %self, owner, token = token_of(transitions), "took the lease");
                }
                Ok(won.then(|| token_of(transitions)))
            }
        }
    }

    /// Extends `owner`'s lease if it still holds it with `token`; false if it lost it (another
    /// holder, a newer token, expired, released, or a concurrent write won).
    pub async fn renew(&self, owner: &str, token: u64, ttl: Duration) -> Result<bool, LeaseError> {
        let now = Timestamp::now();
        let Some(observed) = self.held_by(owner, token, now).await? else {
            return Ok(false);
        };
        let mut spec = observed.spec;
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(ttl_seconds(ttl));
        self.replace(observed.lease, spec).await
    }

    /// Gives the lease up (so a standby can take it at once) if `owner` still holds it with
    /// `token`: clears `holderIdentity` and sets `leaseDurationSeconds` to 1, keeping
    /// `leaseTransitions` so the next holder's token is higher.
    pub async fn release(&self, owner: &str, token: u64) -> Result<bool, LeaseError> {
        let now = Timestamp::now();
        let Some(observed) = self.held_by(owner, token, now).await? else {
            return Ok(false);
        };
        let mut spec = observed.spec;
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(now));
        let released = self.replace(observed.lease, spec).await?;
        if released {
            debug!(lease = %self, owner, token, "released the lease");
        }
        Ok(released)
    }

    /// Current holder and token, `None` when free or expired.
    pub async fn holder(&self) -> Result<Option<(String, u64)>, LeaseError> {
        let observed = self.observe(Timestamp::now()).await?;
        Ok(observed.and_then(|o| {
            let token = token_of(o.transitions);
            o.live_holder.map(|holder| (holder, token))
        }))
    }

    /// Reads the Lease; `None` when it does not exist.
    async fn observe(&self, now: Timestamp) -> Result<Option<Observed>, LeaseError> {
        let Some(lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|error| self.error("get", error))?
        else {
            return Ok(None);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0).max(0);
        let live_holder = spec
            .holder_identity
            .as_deref()
            .filter(|holder| !holder.is_empty() && is_live(&spec, now))
            .map(str::to_owned);
        Ok(Some(Observed {
            lease,
            spec,
            transitions,
            live_holder,
        }))
    }

    /// The Lease when `owner` holds it live with `token`.
    async fn held_by(
        &self,
        owner: &str,
        token: u64,
        now: Timestamp,
    ) -> Result<Option<Observed>, LeaseError> {
        Ok(self.observe(now).await?.filter(|o| {
            o.live_holder.as_deref() == Some(owner) && token_of(o.transitions) == token
        }))
    }

    /// Writes `spec` over the Lease read as `lease` (its resourceVersion makes this a
    /// compare-and-swap); false when another writer got there first.
    async fn replace(&self, mut lease: Lease, spec: LeaseSpec) -> Result<bool, LeaseError> {
        lease.spec = Some(spec);
        // Fields the server manages; resourceVersion stays for optimistic concurrency.
        lease.metadata.managed_fields = None;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_conflict(&error) => Ok(false),
            Err(error) => Err(self.error("replace", error)),
        }
    }

    fn error(&self, op: &'static str, error: kube::Error) -> LeaseError {
        match error {
            kube::Error::Api(status) => LeaseError::Api {
                lease: self.to_string(),
                op,
                code: status.code,
                reason: status.reason,
                message: status.message,
            },
            source => LeaseError::Request {
                lease: self.to_string(),
                op,
                source,
            },
        }
    }
}

impl fmt::Display for KubeLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The fencing token for a `leaseTransitions` value (see the crate docs).
fn token_of(transitions: i32) -> u64 {
    u64::from(transitions.max(0).unsigned_abs()) + 1
}

/// `ttl` in whole seconds, rounded up, at least 1.
fn ttl_seconds(ttl: Duration) -> i32 {
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0))
        .max(1);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Whether the lease's last renewal (or acquisition) plus its duration is still ahead of `now`.
fn is_live(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(MicroTime(renewed)) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return false;
    };
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    renewed
        .checked_add(duration)
        .is_ok_and(|expiry| expiry > now)
}

/// A 409: AlreadyExists on create, Conflict (stale resourceVersion) on replace.
fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::from_secs(1)), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(ttl_seconds(Duration::from_secs(15)), 15);
        assert_eq!(ttl_seconds(Duration::from_secs(u64::MAX)), i32::MAX);
    }

    #[test]
    fn token_is_transitions_plus_one() {
        assert_eq!(token_of(0), 1);
        assert_eq!(token_of(41), 42);
        assert_eq!(token_of(-5), 1);
        assert_eq!(token_of(i32::MAX), 1 << 31);
    }

    #[test]
    fn liveness_follows_renew_time_and_duration() {
        let now = Timestamp::now();
        let spec = |renew_ago: i64, duration: Option<i32>| LeaseSpec {
            holder_identity: Some("a".into()),
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(renew_ago))),
            lease_duration_seconds: duration,
            ..LeaseSpec::default()
        };
        assert!(is_live(&spec(1, Some(10)), now));
        assert!(!is_live(&spec(10, Some(10)), now));
        assert!(!is_live(&spec(11, Some(10)), now));
        assert!(!is_live(&spec(0, None), now));
        assert!(!is_live(&LeaseSpec::default(), now));
    }
}
