//! The accept loop: connection limit, header timeout, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use otavan_protocol::Version;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::authenticity::ReportAuth;
use crate::halt_file::{HaltFile, HaltFileError};
use crate::index::IndexError;
use crate::manifest_cache::DEFAULT_BUDGET;
use crate::metrics::{ConnTap, TappedStream};
use crate::pace::{Pace, PacedStream};
use crate::service::{ConnInfo, handle_tapped};
use crate::slots::{DEFAULT_PER_IP, EVICT_AFTER, EVICT_BLOCKED_AFTER, Slots};
use crate::state::{IndexSettings, Release, Shared};
use otavan_store::postgres::{BadUrl, PgStore, describe, parse_url};
use otavan_store::reports::{ReportStore, StoreError};
use otavan_store::{ReportBackend, SqliteBackend, StoreLocation, VanId};

/// How often a full server looks again for a connection to close when
/// none had stalled long enough.
const RECHECK: Duration = Duration::from_millis(250);

/// Most bytes queued for one connection's socket (and the longest request
/// head accepted).
const WRITE_BUFFER: usize = 32 * 1024;

/// How often the fleet database's `halts` table is read again.
pub const HALTS_REFRESH: Duration = Duration::from_secs(5);

/// Everything `otavan serve` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The release root (version folders and `firmware_VERSION.bin`).
    pub root: PathBuf,
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Fixed target version; `None` means the highest version folder.
    pub target: Option<Version>,
    /// Where reports go; a SQLite file is never indexed or served.
    pub store: StoreLocation,
    /// This van's name, stored with every report.
    pub van_id: VanId,
    /// Most connections served at once; when all are taken the stalest is
    /// closed (see [`crate::slots`]) or further clients wait in the
    /// kernel's accept queue.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, including
    /// the wait for the first byte; idle connections are closed after it.
    pub header_timeout: Duration,
    /// How long in-flight requests may run after a shutdown signal.
    pub drain_timeout: Duration,
    /// Bytes of release content kept in memory (see [`crate::preload`]).
    pub preload_bytes: u64,
    /// Where firmware patches are cached (see [`crate::patches`]); `None`
    /// serves full images only.
    pub patch_cache: Option<PathBuf>,
    /// Bytes of rendered manifests kept (see [`crate::manifest_cache`]).
    pub manifest_cache_bytes: usize,
    /// Most connections from one address at once; 0 for no cap.
    pub max_connections_per_ip: usize,
    /// How fast a response must be taken (see [`crate::pace`]).
    pub pace: Pace,
    /// The fleet's report secret and whether only verified reports count
    /// (see [`crate::authenticity`]).
    pub report_auth: ReportAuth,
    /// gpsd's HOST:PORT: the van's position for each report and its trace
    /// (see [`crate::gpsd`]); `None` stores reports without position.
    pub gpsd: Option<String>,
    /// The campaign drawn on the dashboard's crew map (`--plan`); `None`
    /// shows no map.
    pub crew_plan: Option<Arc<crate::crew_map::CrewPlan>>,
    /// The halt file (`--halt-file`, `--halt-key`): its campaign's target
    /// is never offered, manifests answer `null`; read at start (a refused
    /// file stops it) and again on every SIGHUP ([`Reloader::reread_halt`]).
    pub halt_file: Option<HaltFile>,
}

impl ServerConfig {
    /// The defaults of `otavan serve` for a release root.
    pub fn new(root: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            root: root.into(),
            addr: SocketAddr::from(([0, 0, 0, 0], 8000)),
            target: None,
            store: StoreLocation::Sqlite(PathBuf::from("otavan.db")),
            van_id: VanId::from_hostname().unwrap_or_else(|_| VanId::new("van").expect("valid")),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            preload_bytes: 32 * 1024 * 1024,
            patch_cache: Some(PathBuf::from("otavan-patches")),
            manifest_cache_bytes: DEFAULT_BUDGET,
            max_connections_per_ip: DEFAULT_PER_IP,
            pace: Pace::default(),
            report_auth: ReportAuth::default(),
            gpsd: None,
            crew_plan: None,
            halt_file: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The release could not be indexed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The report database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The `postgres://` address is not valid.
    #[error(transparent)]
    BadUrl(#[from] BadUrl),
    /// The fleet database could not be reached or prepared.
    #[error("cannot use the fleet database {db}: {error}")]
    Fleet {
        /// The address, without its password.
        db: String,
        /// Why not.
        error: StoreError,
    },
    /// The `--gpsd` address does not resolve.
    #[error(transparent)]
    Gpsd(#[from] crate::gpsd::BadGpsd),
    /// The halt file is unreadable or not a halt a trusted key signed.
    #[error(transparent)]
    Halt(#[from] HaltFileError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why not.
        error: std::io::Error,
    },
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    config: ServerConfig,
}

/// Triggers re-indexing of a running server's release.
#[derive(Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
}

impl Reloader {
    /// Re-indexes the release and swaps it in; requests are served from the
    /// old release meanwhile, and keep being served from it if this fails.
    pub async fn reload(&self) -> Result<(), IndexError> {
        self.shared.reload().await
    }

    /// Reads the halt file again (no-op without one); a refused or
    /// missing file leaves the halt read before in force.
    pub fn reread_halt(&self) {
        self.shared.reread_halt();
    }
}

impl Server {
    /// Indexes the release, opens the report store and binds the address.
    pub async fn bind(config: ServerConfig) -> Result<Server, StartError> {
        // On the heap: the start's future is large, and a caller that
        // starts several servers in one task would hold each on its stack.
        Box::pin(Server::start(config)).await
    }

    async fn start(config: ServerConfig) -> Result<Server, StartError> {
        // Before the long work: a refused halt file stops the start.
        let halt = config.halt_file.as_ref().map(HaltFile::read).transpose()?;
        let settings = IndexSettings {
            root: config.root.clone(),
            target: config.target.clone(),
            exclude: database_files(&config.store),
            preload_bytes: config.preload_bytes,
            patch_cache: config.patch_cache.clone(),
            manifest_cache_bytes: config.manifest_cache_bytes,
        };
        let loaded = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || Release::load(&settings))
                .await
                .expect("index task does not panic")?
        };
        if let Some(gpsd) = &config.gpsd {
            crate::gpsd::check_address(gpsd).await?;
        }
        let reports = open_store(&config).await?;
        info!(store = %reports.describe(), van_id = %config.van_id, "reports stored");
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|error| StartError::Bind {
                addr: config.addr,
                error,
            })?;
        let mut shared =
            Shared::new(loaded, reports, settings).with_report_auth(config.report_auth.clone());
        if let (Some(file), Some(halt)) = (&config.halt_file, halt) {
            shared = shared.with_halt_file(file.clone(), halt);
        }
        shared.crew_plan = config.crew_plan.clone();
        let shared = Arc::new(shared);
        shared.refresh_halts().await;
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HALTS_REFRESH).await;
                match weak.upgrade() {
                    Some(shared) => shared.refresh_halts().await,
                    None => break,
                }
            }
        });
        Ok(Server {
            listener,
            shared,
            config,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// A handle that re-indexes the release while the server runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves until `shutdown` completes, then stops accepting, lets
    /// requests in flight finish (up to the drain timeout) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            shared,
            config,
        } = self;
        info!(addr = %listener.local_addr().expect("bound"), "serving");
        let gpsd = config.gpsd.clone().map(|addr| {
            let position = Arc::clone(&shared.position);
            tokio::spawn(crate::gpsd::follow(
                addr,
                position,
                Arc::clone(&shared.reports),
            ))
        });
        let slots = Slots::new(config.max_connections, config.max_connections_per_ip);
        let graceful = GracefulShutdown::new();
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_timeout)
            .auto_date_header(false)
            // hyper pulls body chunks until this much is queued for a slow
            // socket; the default (~400 KiB) times 500 streaming meters
            // would be 200 MiB. Also the longest accepted request head.
            .max_buf_size(WRITE_BUFFER);
        tokio::pin!(shutdown);
        loop {
            if slots.full() {
                // Make room by closing the stalest connection, or wait for
                // one to end (and look again: one may stall meanwhile).
                let evicted = slots.evict_stalest(EVICT_AFTER, EVICT_BLOCKED_AFTER);
                if evicted {
                    shared.metrics.connections_evicted.inc();
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = slots.freed() => {}
                    () = tokio::time::sleep(RECHECK), if !evicted => {}
                }
                continue;
            }
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Some(conn) = conn_info(&stream, peer) else {
                continue;
            };
            let Some(slot) = slots.admit(peer.ip()) else {
                shared.metrics.connections_refused.inc();
                debug!(peer = %peer, "connection refused: this address has its share");
                continue;
            };
            let state = Arc::clone(slot.state());
            // Counts the bytes each download on this connection writes.
            let tap = Arc::new(ConnTap::default());
            let downloads = Arc::clone(&shared.metrics.downloads);
            let stream = TappedStream::new(stream, Arc::clone(&tap), downloads);
            let stream = PacedStream::new(stream, config.pace, Arc::clone(&state));
            let shared = Arc::clone(&shared);
            let service = service_fn(move |request| {
                let shared = Arc::clone(&shared);
                let tap = Some(Arc::clone(&tap));
                async move {
                    let response = handle_tapped(shared, conn, tap, request).await;
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                tokio::select! {
                    ended = connection => if let Err(error) = ended {
                        debug!(%error, peer = %conn.peer, "connection ended with an error");
                    },
                    () = state.evicted() => {
                        debug!(peer = %conn.peer, "connection closed to make room");
                    }
                }
                drop(slot);
            });
        }
        drop(listener);
        if let Some(gpsd) = gpsd {
            gpsd.abort();
        }
        info!(
            connections = graceful.count(),
            "shutting down; draining requests in flight"
        );
        if tokio::time::timeout(config.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            warn!("drain timeout: closing the remaining connections");
        }
    }
}

fn conn_info(stream: &TcpStream, peer: SocketAddr) -> Option<ConnInfo> {
    // Small responses (manifests, headers) must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok()?;
    Some(ConnInfo { peer, local })
}

/// The report store `config` names.
async fn open_store(config: &ServerConfig) -> Result<Arc<dyn ReportBackend>, StartError> {
    let van = config.van_id.clone();
    match &config.store {
        StoreLocation::Postgres(url) => {
            let config = parse_url(url)?;
            let db = describe(&config);
            let pg = PgStore::connect(config, van)
                .await
                .map_err(|error| StartError::Fleet { db, error })?;
            Ok(Arc::new(pg))
        }
        StoreLocation::Sqlite(db) => {
            let path = db.clone();
            let store = tokio::task::spawn_blocking(move || ReportStore::open(&path))
                .await
                .expect("store task does not panic")?;
            let label = db.display().to_string();
            Ok(Arc::new(SqliteBackend::new(Arc::new(store), van, label)))
        }
    }
}

/// A SQLite database and the journal files SQLite keeps next to it (none
/// for PostgreSQL).
fn database_files(store: &StoreLocation) -> Vec<PathBuf> {
    let StoreLocation::Sqlite(db) = store else {
        return Vec::new();
    };
    let mut files = vec![db.clone()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}
