//! An answer's body between nodes, signed as it goes.
//!
//! The answering node sends its body as frames, each signed under the cluster's key and bound
//! to the request's nonce, to the answering node and run, and to its place in the answer; the
//! last frame carries the SHA-256 of the whole body, signed. The asking node checks each frame
//! before it passes its bytes on, and the end before it calls the body whole. So bytes altered,
//! dropped, reordered or cut short between the nodes are never relayed as that node's answer:
//! a body read whole first (every answer up to `PREFETCH` bytes) is refused with a 502, and a
//! longer one (a large artifact) stops at the first frame that does not hold, before its bytes.
//!
//! Frames rather than one digest over the whole body in a header, because some answers are
//! streams (a node's event stream, which never ends) or too large to hold (an artifact of up to
//! 1 GiB): each frame is checked without waiting for the rest.
//!
//! A frame: a kind byte (`d` data, `e` end), the payload's length (u32, big-endian), the
//! payload, and its signature (64 hex digits). A data frame's signature covers the nonce, node,
//! run, its index and its payload's SHA-256; the end frame's payload is the SHA-256 of every
//! data byte, and its signature covers that and the number of data frames before it.

use axum::body::{Body, Bytes};
use baton::cluster::trust::Trust;
use futures_util::stream::{BoxStream, StreamExt};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

/// The largest payload of one frame: a larger chunk of the inner body is split.
pub const CHUNK: usize = 1 << 20;
/// A signature's length on the wire (hex of HMAC-SHA256).
const MAC_LEN: usize = 64;
/// Kind and length.
const HEAD_LEN: usize = 5;

const DATA: u8 = b'd';
const END: u8 = b'e';

/// What binds a frame to one answer: the request's nonce, and the node and run answering.
#[derive(Clone)]
pub struct Binding {
    pub nonce: String,
    pub node: String,
    pub instance: String,
}

/// What a frame's MAC covers: its kind (`DATA_MAC`: the index of a data frame; `END_MAC`: the count
/// of frames), the request it answers (nonce), who answers (node, run), and its digest.
fn parts<'a>(kind: &'static [u8], b: &'a Binding, n: &'a str, digest: &'a [u8]) -> [&'a [u8]; 6] {
    [
        kind,
        b.nonce.as_bytes(),
        b.node.as_bytes(),
        b.instance.as_bytes(),
        n.as_bytes(),
        digest,
    ]
}

const DATA_MAC: &[u8] = b"baton-peer-answer-data-v2";
const END_MAC: &[u8] = b"baton-peer-answer-end-v2";

fn frame(kind: u8, payload: &[u8], mac: &str) -> Bytes {
    let mut out = Vec::with_capacity(HEAD_LEN + payload.len() + MAC_LEN);
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(mac.as_bytes());
    Bytes::from(out)
}

/// Signs `body` as frames (the answering node's side). An inner body that fails ends the
/// frames without an end frame: the asking node then refuses the answer as cut short.
pub fn seal(trust: std::sync::Arc<Trust>, binding: Binding, body: Body) -> Body {
    struct State {
        inner: BoxStream<'static, Result<Bytes, axum::Error>>,
        pending: Bytes,
        index: u64,
        whole: Sha256,
        done: bool,
    }
    let state = State {
        inner: StreamExt::boxed(body.into_data_stream()),
        pending: Bytes::new(),
        index: 0,
        whole: Sha256::new(),
        done: false,
    };
    let frames = futures_util::stream::unfold(state, move |mut s| {
        let (trust, binding) = (trust.clone(), binding.clone());
        async move {
            if s.done {
                return None;
            }
            while s.pending.is_empty() {
                match s.inner.next().await {
                    Some(Ok(data)) => s.pending = data,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "an answer to another node failed part way");
                        return None;
                    }
                    None => {
                        s.done = true;
                        let digest = std::mem::take(&mut s.whole).finalize();
                        let count = s.index.to_string();
                        let mac = trust.sign(&parts(END_MAC, &binding, &count, &digest));
                        return Some((Ok::<_, std::io::Error>(frame(END, &digest, &mac)), s));
                    }
                }
            }
            let payload = s.pending.split_to(s.pending.len().min(CHUNK));
            s.whole.update(&payload);
            let digest = Sha256::digest(&payload);
            let index = s.index.to_string();
            s.index += 1;
            let mac = trust.sign(&parts(DATA_MAC, &binding, &index, &digest));
            Some((Ok(frame(DATA, &payload, &mac)), s))
        }
    });
    Body::from_stream(frames)
}

/// Why an answer's body is refused.
fn altered(what: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "its answer's body is not the one the node signed ({what}): it was altered or cut short on the way"
    ))
}

/// The body of a framed answer, each frame checked before its bytes come out (the asking
/// node's side); an error at the first frame that does not hold, or when the frames end with
/// no end frame whose digest is that of every byte before it.
pub fn unseal<B>(trust: std::sync::Arc<Trust>, binding: Binding, body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    struct State<B> {
        inner: std::pin::Pin<Box<B>>,
        buf: Vec<u8>,
        index: u64,
        whole: Sha256,
        ended: bool,
    }
    let node = binding.node.clone();
    let state = State {
        inner: Box::pin(body),
        buf: Vec::new(),
        index: 0,
        whole: Sha256::new(),
        ended: false,
    };
    let data = futures_util::stream::unfold(state, move |mut s| {
        let (trust, binding) = (trust.clone(), binding.clone());
        async move {
            loop {
                if s.ended {
                    // Whole only once the wire ends too: nothing may follow the end frame.
                    if s.buf.is_empty() {
                        match s.inner.frame().await {
                            None => return None,
                            Some(Ok(f)) => {
                                if let Ok(d) = f.into_data() {
                                    s.buf.extend_from_slice(&d);
                                }
                                continue;
                            }
                            Some(Err(e)) => {
                                let e = std::io::Error::other(format!("its answer failed: {e}"));
                                return Some((Err(e), s));
                            }
                        }
                    }
                    s.buf.clear();
                    return Some((Err(altered("bytes after its end")), s));
                }
                match next_frame(&mut s.buf) {
                    Err(why) => return Some((Err(altered(why)), s)),
                    Ok(Some((kind, payload, mac))) => {
                        let ok = match kind {
                            DATA => {
                                let digest = Sha256::digest(&payload);
                                let index = s.index.to_string();
                                trust.verify(&parts(DATA_MAC, &binding, &index, &digest), &mac)
                            }
                            _ => {
                                let digest = std::mem::take(&mut s.whole).finalize();
                                let count = s.index.to_string();
                                payload == digest.as_slice()
                                    && trust
                                        .verify(&parts(END_MAC, &binding, &count, &digest), &mac)
                            }
                        };
                        if !ok {
                            let what = match kind {
                                DATA => "a part's signature does not hold",
                                _ => "its end does not match its bytes",
                            };
                            return Some((Err(altered(what)), s));
                        }
                        if kind == END {
                            s.ended = true;
                            continue;
                        }
                        s.index += 1;
                        s.whole.update(&payload);
                        if payload.is_empty() {
                            continue;
                        }
                        return Some((Ok(Bytes::from(payload)), s));
                    }
                    Ok(None) => match s.inner.frame().await {
                        Some(Ok(f)) => {
                            if let Ok(d) = f.into_data() {
                                s.buf.extend_from_slice(&d);
                            }
                        }
                        Some(Err(e)) => {
                            let e = std::io::Error::other(format!("its answer failed: {e}"));
                            return Some((Err(e), s));
                        }
                        None => return Some((Err(altered("it ended early")), s)),
                    },
                }
            }
        }
    });
    // A stream that failed yields nothing more.
    let data = data.scan(false, move |failed, item| {
        let out = match *failed {
            true => None,
            false => {
                if let Err(e) = &item {
                    tracing::warn!(%node, error = %e, "an answer from another node is not the one it signed: not relayed past the last part whose signature held");
                }
                *failed = item.is_err();
                Some(item)
            }
        };
        futures_util::future::ready(out)
    });
    Body::from_stream(data)
}

/// The next whole frame at the front of `buf` (taken off it), if one is there yet.
#[allow(clippy::type_complexity)]
fn next_frame(buf: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>, String)>, &'static str> {
    if buf.len() < HEAD_LEN {
        return Ok(None);
    }
    let kind = buf[0];
    if kind != DATA && kind != END {
        return Err("not a signed frame");
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > CHUNK {
        return Err("a part larger than any node sends");
    }
    if buf.len() < HEAD_LEN + len + MAC_LEN {
        return Ok(None);
    }
    let rest = buf.split_off(HEAD_LEN + len + MAC_LEN);
    let whole = std::mem::replace(buf, rest);
    let payload = whole[HEAD_LEN..HEAD_LEN + len].to_vec();
    let mac = String::from_utf8_lossy(&whole[HEAD_LEN + len..]).into_owned();
    Ok(Some((kind, payload, mac)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn trust() -> Arc<Trust> {
        Arc::new(Trust::with_key([7; 32]))
    }

    fn binding(nonce: &str) -> Binding {
        Binding {
            nonce: nonce.into(),
            node: "b".into(),
            instance: "run-1".into(),
        }
    }

    /// A body of `len` bytes that tells its places apart.
    fn body_of(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// The frames `body` is sealed into, as the answering node sends them.
    async fn sealed(nonce: &str, body: &[u8]) -> Vec<Vec<u8>> {
        let framed = seal(trust(), binding(nonce), Body::from(body.to_vec()));
        let mut wire = framed.collect().await.unwrap().to_bytes().to_vec();
        let mut frames = Vec::new();
        while let Some((kind, payload, mac)) = next_frame(&mut wire).unwrap() {
            frames.push(frame(kind, &payload, &mac).to_vec());
        }
        assert!(wire.is_empty());
        frames
    }

    /// What the asking node passes on of `wire` (bytes before the first error), and whether
    /// it came whole.
    async fn unsealed(nonce: &str, wire: Vec<u8>) -> (Vec<u8>, Result<(), String>) {
        let mut stream = unseal(trust(), binding(nonce), Body::from(wire)).into_data_stream();
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(e) => return (out, Err(e.to_string())),
            }
        }
        (out, Ok(()))
    }

    #[tokio::test]
    async fn a_body_of_several_frames_comes_whole() {
        for len in [0, 1, CHUNK, 2 * CHUNK + 17] {
            let body = body_of(len);
            let frames = sealed("n1", &body).await;
            assert_eq!(
                frames.len(),
                len.div_ceil(CHUNK) + 1,
                "data frames and the end"
            );
            let (out, whole) = unsealed("n1", frames.concat()).await;
            assert_eq!(whole, Ok(()));
            assert_eq!(out, body);
        }
    }

    #[tokio::test]
    async fn a_byte_changed_is_refused_before_its_frame_is_passed_on() {
        let body = body_of(2 * CHUNK + 17);
        let mut frames = sealed("n1", &body).await;
        frames[1][HEAD_LEN + 10] ^= 1;
        let (out, whole) = unsealed("n1", frames.concat()).await;
        assert!(whole.unwrap_err().contains("signature does not hold"));
        assert_eq!(out, body[..CHUNK], "only the first frame, which held");
    }

    #[tokio::test]
    async fn frames_dropped_reordered_cut_short_or_added_are_refused() {
        let body = body_of(2 * CHUNK + 17);
        let frames = sealed("n1", &body).await;
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut dropped = frames.clone();
        dropped.remove(1);
        cases.push(("a frame dropped", dropped.concat()));
        let mut swapped = frames.clone();
        swapped.swap(0, 1);
        cases.push(("two frames swapped", swapped.concat()));
        let mut last_dropped = frames.clone();
        last_dropped.remove(2);
        cases.push(("the last data frame dropped", last_dropped.concat()));
        cases.push(("no end frame", frames[..frames.len() - 1].concat()));
        let whole = frames.concat();
        cases.push(("cut within a frame", whole[..whole.len() - 10].to_vec()));
        let mut added = whole.clone();
        added.extend_from_slice(&frames[0]);
        cases.push(("a frame after the end", added));
        cases.push(("no frames at all", body.clone()));
        for (what, wire) in cases {
            let (out, whole) = unsealed("n1", wire).await;
            assert!(whole.is_err(), "{what}: taken whole");
            assert!(
                body.starts_with(&out),
                "{what}: passed on what was not signed"
            );
        }
        // Bytes after the end in a chunk of their own (as they come off a connection).
        let chunks = frames
            .clone()
            .into_iter()
            .chain([b"more".to_vec()])
            .map(|f| Ok::<_, std::io::Error>(Bytes::from(f)));
        let wire = Body::from_stream(futures_util::stream::iter(chunks));
        let mut stream = unseal(trust(), binding("n1"), wire).into_data_stream();
        let mut failed = false;
        while let Some(item) = stream.next().await {
            failed |= item.is_err();
        }
        assert!(failed, "bytes after the end taken");
    }

    #[tokio::test]
    async fn an_answer_to_another_request_or_from_another_node_is_refused() {
        let body = body_of(100);
        let other = sealed("n2", &body).await.concat();
        let (out, whole) = unsealed("n1", other).await;
        assert!(whole.is_err(), "another request's answer taken");
        assert!(out.is_empty());
        let framed = seal(
            trust(),
            Binding {
                node: "c".into(),
                ..binding("n1")
            },
            Body::from(body),
        );
        let wire = framed.collect().await.unwrap().to_bytes().to_vec();
        let (out, whole) = unsealed("n1", wire).await;
        assert!(whole.is_err(), "another node's answer taken");
        assert!(out.is_empty());
    }
}
