//! A cluster for tests (in the style of quickwit's `ClusterSandbox`): services started each by
//! its own `run` function in the test's process, or as their binaries in child processes, on
//! one bus and one storage, on free loopback ports, and stopped together when the sandbox is
//! dropped.

use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use livefarm_bus::JobBus;
use livefarm_runtime::Shutdown;
use livefarm_storage::Storage;
use livefarm_store::{Store, StoreOptions};
use livefarm_testkit::{free_addr, RedisServer, RedisServerConfig, ServiceProcess};
use livefarm_transcoder::TranscoderConfig;

/// Which bus the sandbox's services share.
enum BusKind {
    /// A memory bus private to the sandbox (services in one process only).
    Memory,
    /// A private `redis-server`; `persistent`: with an append-only file, so that its data
    /// survives [`Sandbox::restart_redis`].
    Redis { persistent: bool },
}

/// Builds a [`Sandbox`].
pub struct SandboxBuilder {
    name: String,
    bus: BusKind,
}

impl SandboxBuilder {
    /// The services share a private `redis-server` instead of a memory bus.
    pub fn redis(mut self) -> Self {
        self.bus = BusKind::Redis { persistent: false };
        self
    }

    /// Like [`Self::redis`], persisting every write (append-only file), so that the data
    /// survives a crash and [`Sandbox::restart_redis`].
    pub fn persistent_redis(mut self) -> Self {
        self.bus = BusKind::Redis { persistent: true };
        self
    }

    /// Starts the bus and makes the storage directory; services are added with
    /// [`Sandbox::spawn`] and the helpers beside it.
    pub async fn start(self) -> Sandbox {
        let dir = tempfile::tempdir().expect("sandbox tempdir");
        let objects = dir.path().join("storage");
        std::fs::create_dir_all(&objects).expect("storage dir");
        let storage_url = format!("file://{}", objects.display());
        let (redis, bus_url) = match self.bus {
            BusKind::Memory => (
                None,
                format!("memory://sandbox-{}-{}", self.name, std::process::id()),
            ),
            BusKind::Redis { persistent } => {
                let aof_dir = dir.path().join("redis");
                std::fs::create_dir_all(&aof_dir).expect("redis dir");
                let redis = RedisServer::start_with(RedisServerConfig {
                    aof_dir: persistent.then_some(aof_dir),
                    ..RedisServerConfig::default()
                })
                .unwrap_or_else(|error| panic!("this test needs redis-server: {error}"));
                let url = redis.url();
                (Some(redis), url)
            }
        };
        let bus = livefarm_bus::connect(&bus_url)
            .await
            .unwrap_or_else(|error| panic!("sandbox bus {bus_url}: {error}"));
        let storage = Storage::from_url(&storage_url)
            .await
            .unwrap_or_else(|error| panic!("sandbox storage {storage_url}: {error}"));
        let database_url = format!("sqlite://{}", dir.path().join("livefarm.db").display());
        Sandbox {
            bus_url,
            storage_url,
            database_url,
            bus,
            storage,
            shutdown: Shutdown::new(),
            redis,
            dir,
        }
    }
}

/// Services of one test on one bus and one storage; dropping it stops them all.
pub struct Sandbox {
    /// The bus every service is given (`memory://...` or `redis://...`).
    pub bus_url: String,
    /// `file://` storage in [`Sandbox::dir`].
    pub storage_url: String,
    /// The control-plane database every service of the sandbox shares: a SQLite file in
    /// [`Sandbox::dir`] (made, with its schema, by [`Sandbox::store`] or the first api).
    pub database_url: String,
    /// A connection to the bus, for the test.
    pub bus: Arc<dyn JobBus>,
    /// The storage, for the test.
    pub storage: Storage,
    /// Triggered on drop: every service started here stops.
    pub shutdown: Shutdown,
    redis: Option<RedisServer>,
    /// Scratch space (storage, keys, logs); removed on drop.
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A sandbox named `name` (the memory bus's name; tests running in parallel in one
    /// process get separate buses).
    pub fn builder(name: &str) -> SandboxBuilder {
        SandboxBuilder {
            name: name.to_owned(),
            bus: BusKind::Memory,
        }
    }

    /// The `redis://` URL of the sandbox's own Redis.
    ///
    /// # Panics
    /// If the sandbox runs on a memory bus.
    pub fn redis_url(&self) -> String {
        self.redis
            .as_ref()
            .map(RedisServer::url)
            .expect("a sandbox built with .redis()")
    }

    /// The sandbox's database, migrated.
    pub async fn store(&self) -> Store {
        Store::open(&self.database_url, &StoreOptions::default())
            .await
            .unwrap_or_else(|error| panic!("sandbox database {}: {error}", self.database_url))
    }

    /// A new tenant named `tenant` and an API key of it: (tenant id, the key's secret), for
    /// `Authorization: Bearer <key>` on the api.
    pub async fn api_key(&self, tenant: &str) -> (String, String) {
        let store = self.store().await;
        let tenant = store.create_tenant(tenant).await.expect("sandbox tenant");
        let key = store
            .create_api_key(&tenant.id, "sandbox")
            .await
            .expect("sandbox api key");
        store.close().await;
        (tenant.id, key.secret)
    }

    /// An api's configuration on the sandbox's bus, storage and database, on free ports.
    pub fn api_config(&self) -> livefarm_api::ApiConfig {
        livefarm_api::ApiConfig {
            listen: free_addr(),
            admin_listen: free_addr(),
            bus_url: self.bus_url.clone(),
            storage_url: self.storage_url.clone(),
            database_url: self.database_url.clone(),
            poll_interval_ms: 50,
            ..livefarm_api::ApiConfig::default()
        }
    }

    /// Kills the sandbox's Redis (SIGKILL) and starts it again on the same port.
    ///
    /// # Panics
    /// If the sandbox runs on a memory bus or Redis does not come back.
    pub fn restart_redis(&mut self) {
        self.redis
            .as_mut()
            .expect("a sandbox built with .redis()")
            .restart()
            .unwrap_or_else(|error| panic!("redis-server did not restart: {error}"));
    }

    /// Starts the service binary `bin` as a child process with `--set` flags `sets`, logging
    /// to `<dir>/<name>.log`; it is killed when the returned handle drops.
    pub fn process(
        &self,
        name: &str,
        bin: &Path,
        sets: &[String],
        rust_log: &str,
    ) -> ServiceProcess {
        ServiceProcess::spawn(name, bin, sets, self.dir.path(), rust_log)
    }

    /// Runs a service's `run(config, shutdown)` as a task until the sandbox drops; a service
    /// that fails panics its task with `name` and the error (the test then sees it stop).
    pub fn spawn<F, Fut, E>(&self, name: &'static str, run: F)
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let service = run(self.shutdown.clone());
        tokio::spawn(async move {
            if let Err(error) = service.await {
                panic!("{name} failed: {error:#}");
            }
        });
    }

    /// A transcoder worker's configuration on the sandbox's bus and storage, on free ports,
    /// with the fastest x264 preset.
    pub fn transcoder_config(&self, worker_id: &str) -> TranscoderConfig {
        TranscoderConfig {
            bus_url: self.bus_url.clone(),
            storage_url: self.storage_url.clone(),
            worker_id: worker_id.to_owned(),
            x264_preset: "ultrafast".to_owned(),
            grpc_listen: free_addr(),
            admin_listen: free_addr(),
            ..TranscoderConfig::default()
        }
    }

    /// Starts a transcoder worker of [`Self::transcoder_config`].
    pub fn transcoder(&self, worker_id: &str) {
        let config = self.transcoder_config(worker_id);
        self.spawn("transcoder worker", |stop| {
            livefarm_transcoder::run(config, stop)
        });
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
