//! The `whatsapp` engine: one `whatsapp-rust` client per session, on tokio.
//!
//! [`WhatsappEngine::start`] builds a client over the session's protocol
//! store, connects it and returns once the websocket and the noise handshake
//! are up (or fails with [`EngineError::Connect`] within
//! [`WaOptions::connect_timeout`]). A supervisor task then drives the client's
//! read loop and reports what happens as [`EngineEvent`](crate::engine::EngineEvent)s.
//!
//! Reconnecting belongs to the [`Manager`](crate::engine::manager::Manager):
//! the crate's own auto-reconnect is switched off, so a lost connection ends
//! the client and is reported as `Disconnected { retry: true }`; the manager
//! backs off and starts a fresh client. The one exception is the restart the
//! protocol itself asks for (stream error 515 right after a device is
//! linked), which is not a failure: the supervisor resumes the same client at
//! once, a bounded number of times.
//!
//! Messaging: the connection sends (building the protobuf in `send`), `inbound`
//! translates received messages, receipts and nacks in order (the pure
//! rules are in `translate`), and `media_ref` is the handle stored with
//! inbound media for a later download.

mod connection;
mod directory;
mod directory_events;
mod events;
mod groups;
mod groups_convert;
mod groups_translate;
mod http;
mod inbound;
mod media_ref;
mod send;
mod translate;
#[cfg(test)]
mod translate_tests;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};
use ulid::Ulid;
use whatsapp_rust::http::HttpClient;
use whatsapp_rust::store::persistence_manager::PersistenceManager;
use whatsapp_rust::store::traits::Backend;
use whatsapp_rust::transport::{TokioWebSocketTransportFactory, Transport, TransportEvent, TransportFactory};
use whatsapp_rust::{Client, TokioRuntime};

use connection::{Supervisor, WaConnection};
pub use events::format_pair_code;
use events::{Forwarder, Shared};

use crate::engine::{BoxFuture, Connection, Engine, EngineError, EventSink, StartInfo};
use crate::engine::wa_state::RedbBackend;
use crate::store::Store;

/// Protocol restarts (515 after linking) resumed in a row without a login in between.
pub(super) const MAX_QUICK_RESTARTS: u32 = 3;

/// How the engine connects.
#[derive(Clone, Debug)]
pub struct WaOptions {
    /// Upper bound for `start`: version check, websocket and handshake.
    pub connect_timeout: Duration,
    /// Upper bound for closing a client and flushing its state (`stop`, `logout`).
    pub stop_timeout: Duration,
    /// The websocket to dial; `None` is WhatsApp Web's.
    pub ws_url: Option<String>,
    /// The WhatsApp Web version to announce; `None` fetches the current one
    /// (cached for a day in the session's device record).
    pub version: Option<(u32, u32, u32)>,
    /// Skip the history sync the phone offers after linking (the gateway
    /// only forwards new traffic).
    pub skip_history_sync: bool,
    /// Media hosts (`host:port`, as the server's `media_conn` names them)
    /// reached over plain `http://` instead of `https://`. For the tests and
    /// the bench against a fake server only; never set from the CLI. Empty:
    /// every media URL stays as the crate builds it (see `http`).
    pub plain_http_media_hosts: Vec<String>,
}

impl Default for WaOptions {
    fn default() -> Self {
        WaOptions {
            connect_timeout: Duration::from_secs(20),
            stop_timeout: Duration::from_secs(10),
            ws_url: None,
            version: None,
            skip_history_sync: true,
            plain_http_media_hosts: Vec::new(),
        }
    }
}

/// The engine running real WhatsApp sessions.
pub struct WhatsappEngine {
    /// The data file the sessions' protocol state lives in.
    store: Arc<Store>,
    options: WaOptions,
}

impl WhatsappEngine {
    /// An engine keeping its sessions' protocol state in `store`.
    pub fn new(store: Arc<Store>, options: WaOptions) -> WhatsappEngine {
        WhatsappEngine { store, options }
    }

    /// The options this engine runs with.
    pub fn options(&self) -> &WaOptions {
        &self.options
    }

    /// The protocol store a session's client runs on: its rows in the
    /// gateway's data file. (Without the redb backend, the crate's
    /// `whatsapp_rust::wacore::store::InMemoryBackend` fits here, kept per
    /// session so a reconnect finds its credentials.)
    fn backend(&self, session: Ulid) -> Result<Arc<dyn Backend>, EngineError> {
        Ok(Arc::new(RedbBackend::new(self.store.clone(), session)))
    }
}

/// The websocket factory, remembering why the last dial failed (the client
/// only logs it).
struct Dialer {
    inner: TokioWebSocketTransportFactory,
    shared: Arc<Shared>,
}

#[whatsapp_rust::async_trait]
impl TransportFactory for Dialer {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, whatsapp_rust::async_channel::Receiver<TransportEvent>), whatsapp_rust::anyhow::Error>
    {
        let result = self.inner.create_transport().await;
        if let Err(e) = &result {
            if let Ok(mut slot) = self.shared.transport_error.lock() {
                *slot = Some(format!("{e:#}"));
            }
        }
        result
    }
}

pub(super) fn connect_err(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Connect(format!("{what}: {e}"))
}

impl Engine for WhatsappEngine {
    fn name(&self) -> &'static str {
        "whatsapp"
    }

    fn start(&self, info: StartInfo, sink: EventSink) -> BoxFuture<'_, Result<Box<dyn Connection>, EngineError>> {
        Box::pin(async move {
            let opts = &self.options;
            let deadline = Instant::now() + opts.connect_timeout;
            let backend = self.backend(info.session)?;
            let pm = PersistenceManager::new(backend)
                .await
                .map_err(|e| EngineError::Other(format!("could not open the session's WhatsApp state: {e}")))?;
            let pm = Arc::new(pm);
            let http: Arc<dyn HttpClient> = http::client(&opts.plain_http_media_hosts);

            // The version check is part of connecting; done first, its error is clear.
            match timeout_at(deadline, whatsapp_rust::version::resolve_and_update_version(&pm, &http, opts.version)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(connect_err("could not fetch the current WhatsApp Web version", format!("{e:#}"))),
                Err(_) => {
                    return Err(EngineError::Connect(format!(
                        "timed out after {:?} fetching the current WhatsApp Web version",
                        opts.connect_timeout
                    )))
                }
            }

            let shared = Arc::new(Shared::default());
            let mut ws = TokioWebSocketTransportFactory::new();
            if let Some(url) = &opts.ws_url {
                ws = ws.with_url(url.clone());
            }
            let mut builder = Client::builder()
                .with_runtime(TokioRuntime)
                .with_persistence_manager(pm)
                .with_transport_factory(Dialer { inner: ws, shared: shared.clone() })
                .with_http_client_arc(http)
                .with_skip_history_sync(opts.skip_history_sync)
                .with_background_saver_interval(Duration::from_secs(30));
            if let Some(v) = opts.version {
                builder = builder.with_version_override(v);
            }
            let client = builder
                .build()
                .await
                .map_err(|e| EngineError::Other(format!("could not build the WhatsApp client: {e}")))?
                .into_client();
            // The manager reconnects (with backoff); two loops would fight.
            client.enable_auto_reconnect.store(false, Ordering::SeqCst);

            // Messaging events are translated in order by their own task (see `inbound`);
            // it ends once the handler and the supervisor have let go of the queue.
            let (inbox, queue) = mpsc::unbounded_channel();
            tokio::spawn(inbound::run(queue, sink.clone(), shared.clone(), Arc::downgrade(&client)));
            let forwarder = Forwarder {
                sink: sink.clone(),
                shared: shared.clone(),
                client: Arc::downgrade(&client),
                inbox: inbox.clone(),
            };
            let subscription = client.subscribe(Forwarder::interest(), Arc::new(forwarder));
            let (ready_tx, ready_rx) = oneshot::channel();
            let sup = Supervisor {
                client: client.clone(),
                shared: shared.clone(),
                sink,
                stop_timeout: opts.stop_timeout,
                inbox,
            };
            let task = tokio::spawn(async move {
                let _subscription = subscription;
                sup.run(deadline, ready_tx).await;
            });
            let conn = WaConnection { client, shared, task: Mutex::new(Some(task)), stop_timeout: opts.stop_timeout };
            // Dropping `conn` (error, or this future cancelled) closes the client.
            match ready_rx.await {
                Ok(Ok(())) => Ok(Box::new(conn) as Box<dyn Connection>),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(EngineError::Other("the whatsapp connection task ended unexpectedly".into())),
            }
        })
    }
}

