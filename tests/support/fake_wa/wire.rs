//! The fake server's side of one connection: the websocket, WhatsApp's
//! framing (3-byte length, the `WA` header before the first frame), the
//! Noise handshake as the responder (XX for a first connect, IK for a
//! resumption), then noise-encrypted binary nodes both ways.

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio_websockets::{Message, ServerBuilder, WebSocketStream};
use whatsapp_rust::buffa::{Message as _, MessageField};
use whatsapp_rust::futures::{SinkExt, StreamExt};
use whatsapp_rust::wacore::framing::{encode_frame, FrameDecoder};
use whatsapp_rust::wacore::handshake::NoiseHandshake;
use whatsapp_rust::wacore::libsignal::protocol::KeyPair;
use whatsapp_rust::wacore::noise::NoiseCipher;
use whatsapp_rust::wacore_binary::consts::{NOISE_PATTERN_IK, NOISE_PATTERN_XX, WA_CONN_HEADER};
use whatsapp_rust::wacore_binary::marshal::{marshal, unmarshal_ref};
use whatsapp_rust::wacore_binary::util::unpack;
use whatsapp_rust::wacore_binary::Node;
use whatsapp_rust::waproto::whatsapp as wa;

/// Why a connection ended or could not start.
pub type WireResult<T> = Result<T, String>;

/// The server's long-lived noise identity and the certificate chain naming it.
pub struct ServerIdentity {
    pub keys: KeyPair,
    pub cert_chain: Vec<u8>,
}

impl ServerIdentity {
    pub fn new() -> ServerIdentity {
        let keys = KeyPair::generate(&mut rand::rng());
        let cert_chain = cert_chain_bytes(&public(&keys));
        ServerIdentity { keys, cert_chain }
    }
}

pub fn public(k: &KeyPair) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(k.public_key.public_key_bytes());
    out
}

/// A certificate chain whose leaf names `server_static` (zero signatures:
/// the client checks them only without `danger-skip-cert-chain-verify`).
/// A copy of wacore-noise's `test_util::build_cert_chain_bytes`.
fn cert_chain_bytes(server_static: &[u8; 32]) -> Vec<u8> {
    use wa::cert_chain::noise_certificate::Details;
    let details = |serial, issuer, key: Vec<u8>, nb, na| {
        Details { serial: Some(serial), issuer_serial: Some(issuer), key: Some(key), not_before: Some(nb), not_after: Some(na) }
            .encode_to_vec()
    };
    let cert = |d: Vec<u8>| {
        MessageField::some(wa::cert_chain::NoiseCertificate { details: Some(d), signature: Some(vec![0u8; 64]) })
    };
    wa::CertChain {
        leaf: cert(details(2, 1, server_static.to_vec(), 1_700_000_500, 1_899_999_500)),
        intermediate: cert(details(1, 0, vec![0xCC; 32], 1_700_000_000, 1_900_000_000)),
    }
    .encode_to_vec()
}

/// One client connection after its handshake.
pub struct Wire {
    ws: WebSocketStream<TcpStream>,
    frames: FrameDecoder,
    read: NoiseCipher,
    write: NoiseCipher,
    read_n: u32,
    write_n: u32,
    /// What the client said about itself in the handshake.
    pub payload: wa::ClientPayload,
    /// The client's noise static key (its identity for this fake).
    pub client_static: [u8; 32],
    /// `XX` or `IK`.
    pub pattern: &'static str,
}

/// Reads the next whole frame from the websocket (stripping the header
/// before the first one).
async fn next_frame(ws: &mut WebSocketStream<TcpStream>, frames: &mut FrameDecoder, first: &mut bool) -> WireResult<BytesMut> {
    loop {
        if let Some(f) = frames.decode_frame() {
            return Ok(f);
        }
        let msg = match ws.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(format!("websocket: {e}")),
            None => return Err("closed".into()),
        };
        if msg.is_close() {
            return Err("closed".into());
        }
        if !msg.is_binary() {
            continue;
        }
        let data: Bytes = msg.into_payload().into();
        let mut data = &data[..];
        if *first {
            *first = false;
            if data.starts_with(&WA_CONN_HEADER) {
                data = &data[WA_CONN_HEADER.len()..];
            } else {
                return Err(format!("no WA header: {:02x?}", &data[..data.len().min(8)]));
            }
        }
        frames.feed(data);
    }
}

async fn send_frame(ws: &mut WebSocketStream<TcpStream>, payload: &[u8]) -> WireResult<()> {
    let framed = encode_frame(payload, None).map_err(|e| e.to_string())?;
    ws.send(Message::binary(Bytes::from(framed))).await.map_err(|e| format!("websocket send: {e}"))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Wire {
    /// Accepts the websocket on `tcp` and serves the noise handshake.
    pub async fn accept(tcp: TcpStream, server: &ServerIdentity) -> WireResult<Wire> {
        let (_req, mut ws) = ServerBuilder::new().accept(tcp).await.map_err(|e| format!("websocket accept: {e}"))?;
        let mut frames = FrameDecoder::new();
        let mut first = true;
        let hello = next_frame(&mut ws, &mut frames, &mut first).await?;
        let hello = wa::HandshakeMessage::decode_from_slice(&hello).map_err(err)?;
        let ch = hello.client_hello.into_option().ok_or("no client hello")?;
        let eph: [u8; 32] = ch.ephemeral.ok_or("no ephemeral")?.try_into().map_err(|_| "ephemeral length")?;
        let server_pub = public(&server.keys);
        let server_priv = server.keys.private_key.serialize();
        let server_eph = KeyPair::generate(&mut rand::rng());
        let server_eph_pub = public(&server_eph);
        let (noise, payload, client_static, pattern) = match (ch.r#static, ch.payload) {
            (Some(enc_static), Some(enc_payload)) => {
                // IK: -> e, es, s, ss (with payload); <- e, ee, se.
                let mut noise = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER).map_err(err)?;
                noise.authenticate(&server_pub);
                noise.authenticate(&eph);
                noise.mix_shared_secret(server_priv, &eph).map_err(err)?;
                let cs: [u8; 32] = noise.decrypt(&enc_static).map_err(err)?.try_into().map_err(|_| "static length")?;
                noise.mix_shared_secret(server_priv, &cs).map_err(err)?;
                let payload = noise.decrypt(&enc_payload).map_err(err)?;
                noise.authenticate(&server_eph_pub);
                noise.mix_shared_secret(server_eph.private_key.serialize(), &eph).map_err(err)?;
                noise.mix_shared_secret(server_eph.private_key.serialize(), &cs).map_err(err)?;
                let cert = noise.encrypt(&server.cert_chain).map_err(err)?;
                let sh = server_hello(server_eph_pub, None, cert);
                send_frame(&mut ws, &sh).await?;
                (noise, payload, cs, "IK")
            }
            _ => {
                // XX: -> e; <- e, ee, s, es; -> s, se (with payload).
                let mut noise = NoiseHandshake::new(NOISE_PATTERN_XX, &WA_CONN_HEADER).map_err(err)?;
                noise.authenticate(&eph);
                noise.authenticate(&server_eph_pub);
                noise.mix_shared_secret(server_eph.private_key.serialize(), &eph).map_err(err)?;
                let enc_static = noise.encrypt(&server_pub).map_err(err)?;
                noise.mix_shared_secret(server_priv, &eph).map_err(err)?;
                let cert = noise.encrypt(&server.cert_chain).map_err(err)?;
                send_frame(&mut ws, &server_hello(server_eph_pub, Some(enc_static), cert)).await?;
                let fin = next_frame(&mut ws, &mut frames, &mut first).await?;
                let fin = wa::HandshakeMessage::decode_from_slice(&fin).map_err(err)?;
                let cf = fin.client_finish.into_option().ok_or("no client finish")?;
                let cs: [u8; 32] = noise
                    .decrypt(&cf.r#static.ok_or("no client static")?)
                    .map_err(err)?
                    .try_into()
                    .map_err(|_| "static length")?;
                noise.mix_shared_secret(server_eph.private_key.serialize(), &cs).map_err(err)?;
                let payload = noise.decrypt(&cf.payload.ok_or("no client payload")?).map_err(err)?;
                (noise, payload, cs, "XX")
            }
        };
        let payload = wa::ClientPayload::decode_from_slice(&payload).map_err(err)?;
        // The initiator writes with the first key, reads with the second.
        let (client_write, client_read) = noise.finish().map_err(err)?;
        Ok(Wire { ws, frames, read: client_write, write: client_read, read_n: 0, write_n: 0, payload, client_static, pattern })
    }

    /// Sends one node.
    pub async fn send(&mut self, node: &Node) -> WireResult<()> {
        let plain = marshal(node).map_err(err)?;
        let sealed = self.write.encrypt_with_counter(self.write_n, &plain).map_err(err)?;
        self.write_n += 1;
        send_frame(&mut self.ws, &sealed).await
    }

    /// Receives the next node (`Err` when the connection ends).
    pub async fn recv(&mut self) -> WireResult<Node> {
        let mut first = false;
        let mut frame = next_frame(&mut self.ws, &mut self.frames, &mut first).await?;
        self.read.decrypt_in_place_with_counter(self.read_n, &mut frame).map_err(err)?;
        self.read_n += 1;
        let plain = unpack(&frame).map_err(err)?;
        Ok(unmarshal_ref(&plain).map_err(err)?.to_owned())
    }

    /// Closes the websocket (the client sees the connection drop).
    pub async fn close(mut self) {
        let _ = self.ws.close().await;
    }
}

fn server_hello(eph: [u8; 32], enc_static: Option<Vec<u8>>, payload: Vec<u8>) -> Vec<u8> {
    wa::HandshakeMessage {
        server_hello: MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(eph.to_vec()),
            r#static: enc_static,
            payload: Some(payload),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}
