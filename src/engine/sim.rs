//! The simulated engine: a deterministic, in-process WhatsApp for local
//! development and the test suite.
//!
//! Starting an unlinked session shows a QR (`sim://<session>/<n>`). The sim
//! controls (`POST /api/v1/sessions/{id}/sim/pair|disconnect|logout|incoming`)
//! then play the phone: pairing links `<phone>@s.whatsapp.net` with a stable
//! `<digits>@lid` derived from the phone number. A linked session (its JID is
//! kept in the session record) reconnects straight to `working`, as a real
//! linked device does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ring::digest::{digest, SHA256};
use ulid::Ulid;

use super::{BoxFuture, Connection, Engine, EngineError, EngineEvent, EventSink, StartInfo};
use crate::store::now_ms;

/// How long a sim QR is valid.
pub const QR_TTL_MS: i64 = 60_000;

#[derive(Default)]
struct Live {
    sink: Option<EventSink>,
    linked: bool,
    qr_count: u64,
}

/// The simulated engine; cheap to clone, shared with the sim API.
#[derive(Clone, Default)]
pub struct SimEngine {
    sessions: Arc<Mutex<HashMap<Ulid, Live>>>,
}

/// The stable `@lid` the sim gives a phone number.
pub fn lid_for(phone: &str) -> String {
    let d = digest(&SHA256, phone.as_bytes());
    let n = d.as_ref()[..8].iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    format!("{:015}@lid", n % 1_000_000_000_000_000)
}

/// The pairing code the sim gives a phone number for a session: `ABCD-EFGH`.
pub fn pair_code_for(session: Ulid, phone: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let d = digest(&SHA256, format!("{session}:{phone}").as_bytes());
    let c: Vec<u8> = d.as_ref()[..8].iter().map(|b| ALPHABET[usize::from(*b) % 32]).collect();
    format!("{}-{}", String::from_utf8_lossy(&c[..4]), String::from_utf8_lossy(&c[4..]))
}

impl SimEngine {
    /// A new sim with no sessions.
    pub fn new() -> SimEngine {
        SimEngine::default()
    }

    fn with<T>(&self, id: Ulid, f: impl FnOnce(&mut Live) -> Result<T, EngineError>) -> Result<T, EngineError> {
        let mut map = self.sessions.lock().map_err(|_| EngineError::Other("sim state poisoned".into()))?;
        match map.get_mut(&id) {
            Some(live) if live.sink.is_some() => f(live),
            _ => Err(EngineError::State("the session is not running".into())),
        }
    }

    fn sink(&self, id: Ulid) -> Result<EventSink, EngineError> {
        self.with(id, |l| l.sink.clone().ok_or_else(|| EngineError::State("not running".into())))
    }

    /// The phone scans the QR (or enters the code): links `phone`.
    pub fn pair(&self, id: Ulid, phone: &str) -> Result<(String, String), EngineError> {
        let sink = self.with(id, |l| {
            if l.linked {
                return Err(EngineError::State("the session is already linked".into()));
            }
            l.linked = true;
            l.sink.clone().ok_or_else(|| EngineError::State("not running".into()))
        })?;
        let (jid, lid) = (format!("{phone}@s.whatsapp.net"), lid_for(phone));
        sink.emit(EngineEvent::Connected { jid: jid.clone(), lid: Some(lid.clone()), push_name: Some("Sim Phone".into()) });
        Ok((jid, lid))
    }

    /// The network drops; the gateway should reconnect.
    pub fn disconnect(&self, id: Ulid) -> Result<(), EngineError> {
        let sink = self.sink(id)?;
        sink.emit(EngineEvent::Disconnected { reason: "sim: connection lost".into(), retry: true });
        Ok(())
    }

    /// The phone unlinks this device.
    pub fn logout(&self, id: Ulid) -> Result<(), EngineError> {
        let sink = self.with(id, |l| {
            l.linked = false;
            l.sink.take().ok_or_else(|| EngineError::State("not running".into()))
        })?;
        sink.emit(EngineEvent::LoggedOut { reason: "sim: device unlinked from the phone".into() });
        Ok(())
    }

    /// A message arrives from `from`.
    pub fn incoming(&self, id: Ulid, from: &str, text: &str) -> Result<String, EngineError> {
        let sink = self.with(id, |l| {
            if !l.linked {
                return Err(EngineError::State("the session is not linked".into()));
            }
            l.sink.clone().ok_or_else(|| EngineError::State("not running".into()))
        })?;
        let msg_id = format!("SIM{}", crate::new_id());
        sink.emit(EngineEvent::MessageReceived {
            id: msg_id.clone(),
            from: from.to_string(),
            text: text.to_string(),
            timestamp: now_ms(),
        });
        Ok(msg_id)
    }
}

struct SimConnection {
    engine: SimEngine,
    session: Ulid,
    generation: u64,
}

impl SimConnection {
    fn detach(&self) {
        if let Ok(mut map) = self.engine.sessions.lock() {
            if let Some(live) = map.get_mut(&self.session) {
                if live.sink.as_ref().is_some_and(|s| s.generation == self.generation) {
                    live.sink = None;
                }
            }
        }
    }
}

impl Connection for SimConnection {
    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.detach() })
    }

    fn logout(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async move {
            self.detach();
            if let Ok(mut map) = self.engine.sessions.lock() {
                map.remove(&self.session);
            }
            Ok(())
        })
    }

    fn pair_code(&self, phone: &str) -> BoxFuture<'_, Result<String, EngineError>> {
        let phone = phone.to_string();
        Box::pin(async move {
            let sink = self.engine.with(self.session, |l| {
                if l.linked {
                    return Err(EngineError::State("the session is already linked".into()));
                }
                l.sink.clone().ok_or_else(|| EngineError::State("not running".into()))
            })?;
            let code = pair_code_for(self.session, &phone);
            sink.emit(EngineEvent::PairCode { code: code.clone() });
            Ok(code)
        })
    }
}

impl Engine for SimEngine {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn start(&self, info: StartInfo, sink: EventSink) -> BoxFuture<'_, Result<Box<dyn Connection>, EngineError>> {
        Box::pin(async move {
            let generation = sink.generation;
            let (linked, n) = {
                let mut map = self.sessions.lock().map_err(|_| EngineError::Other("sim state poisoned".into()))?;
                let live = map.entry(info.session).or_default();
                live.linked = info.linked_jid.is_some();
                live.qr_count += 1;
                live.sink = Some(sink.clone());
                (live.linked, live.qr_count)
            };
            match (linked, info.linked_jid) {
                (true, Some(jid)) => sink.emit(EngineEvent::Connected {
                    jid,
                    lid: info.linked_lid,
                    push_name: Some("Sim Phone".into()),
                }),
                _ => sink.emit(EngineEvent::Qr {
                    value: format!("sim://{}/{n}", info.session),
                    expires_at: now_ms() + QR_TTL_MS,
                }),
            }
            Ok(Box::new(SimConnection { engine: self.clone(), session: info.session, generation }) as Box<dyn Connection>)
        })
    }

    fn forget(&self, session: Ulid) {
        if let Ok(mut map) = self.sessions.lock() {
            map.remove(&session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_ids_and_codes() {
        assert_eq!(lid_for("6281234567890"), lid_for("6281234567890"));
        assert_ne!(lid_for("6281234567890"), lid_for("6281234567891"));
        assert!(lid_for("1").ends_with("@lid") && lid_for("1").len() == 19);
        let s = Ulid::from(7u128);
        let code = pair_code_for(s, "62812");
        assert_eq!(code, pair_code_for(s, "62812"));
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
    }
}
