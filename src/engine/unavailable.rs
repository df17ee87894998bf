//! The `whatsapp` engine slot until the whatsapp-rust integration lands: every
//! start fails with a clear error, so a started session backs off and ends
//! `failed` with that `lastError` — truthful, and never a fake connection.

use super::{BoxFuture, Connection, Engine, EngineError, EventSink, StartInfo};

/// An engine that cannot connect, saying why.
pub struct Unavailable {
    pub name: &'static str,
    pub reason: &'static str,
}

impl Engine for Unavailable {
    fn name(&self) -> &'static str {
        self.name
    }

    fn start(&self, _info: StartInfo, _sink: EventSink) -> BoxFuture<'_, Result<Box<dyn Connection>, EngineError>> {
        Box::pin(async move { Err(EngineError::Connect(self.reason.to_string())) })
    }
}
