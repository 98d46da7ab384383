//! HTTP/2 (`--http2`): hyper's http2 client, one connection shared by the
//! `--streams N` clients of a group, each with a request in flight on it
//! (h2load's `-c` connections and `-m` streams).
//!
//! A group's connection is opened by whichever of its clients first needs it;
//! the others wait for it (an async mutex taken only when there is none, never
//! on the request path). Its driver runs as a local task on the worker's
//! `LocalSet` (`LocalExec`), so when the run ends and the worker drops its
//! `LocalSet`, the connection closes. When it dies, the next request of any
//! client of the group opens a new one. Over TLS the server must choose ALPN
//! `h2`; if it chooses another protocol, none, or refuses ours with an alert,
//! the run stops with `LoadError::NoHttp2` rather than count thousands of
//! failures.

use std::cell::RefCell;
use std::future::Future;
use std::time::Instant;

use http_body_util::BodyExt;
use hyper::client::conn::http2;
use hyper_util::rt::TokioIo;

use super::connection::{Body, Response, classify};
use super::result::{ErrorKind, Tally};
use super::sender::Sender;
use super::transport::{ALPN_H2, connect_tcp, refused_alpn};
use super::worker::Shared;

/// Runs hyper's HTTP/2 tasks on the current thread's `LocalSet`: a worker's
/// connections never leave its thread, so nothing needs `Send`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// The builder every HTTP/2 connection of a run is made with.
pub fn builder() -> http2::Builder<LocalExec> {
    http2::Builder::new(LocalExec)
}

/// One connection shared by a group of clients (one thread: no atomics).
#[derive(Default)]
pub(crate) struct Http2Group {
    /// The open connection, or `None` before the first and after a death.
    link: RefCell<Option<http2::SendRequest<Body>>>,
    /// Held by the client opening the connection; the others wait on it.
    opening: tokio::sync::Mutex<()>,
}

/// A client's handle on its group's connection.
pub(crate) struct Http2Sender {
    group: std::rc::Rc<Http2Group>,
    /// A clone of the group's sender (`send_request` takes `&mut`).
    mine: Option<http2::SendRequest<Body>>,
}

impl Http2Sender {
    pub(crate) fn new(group: std::rc::Rc<Http2Group>) -> Self {
        Http2Sender { group, mine: None }
    }

    /// The group's live connection, opened (once, by one client) when needed.
    async fn link(
        &mut self,
        shared: &Shared,
        measured: Option<&RefCell<Tally>>,
    ) -> Result<&mut http2::SendRequest<Body>, ErrorKind> {
        if self.mine.as_ref().is_none_or(http2::SendRequest::is_closed) {
            self.mine = Some(self.group.open(shared, measured).await?);
        }
        Ok(self.mine.as_mut().expect("set above"))
    }
}

impl Http2Group {
    async fn open(
        &self,
        shared: &Shared,
        measured: Option<&RefCell<Tally>>,
    ) -> Result<http2::SendRequest<Body>, ErrorKind> {
        let live = || {
            self.link
                .borrow()
                .as_ref()
                .filter(|s| !s.is_closed())
                .cloned()
        };
        if let Some(s) = live() {
            return Ok(s);
        }
        // One opener at a time; whoever waited finds the new connection.
        let _opening = self.opening.lock().await;
        if let Some(s) = live() {
            return Ok(s);
        }
        let sender = connect(shared, measured).await?;
        *self.link.borrow_mut() = Some(sender.clone());
        Ok(sender)
    }
}

/// TCP, TLS with ALPN `h2` (or prior knowledge over plain TCP), the HTTP/2
/// handshake; the connection's driver is spawned on this thread.
async fn connect(
    shared: &Shared,
    measured: Option<&RefCell<Tally>>,
) -> Result<http2::SendRequest<Body>, ErrorKind> {
    if shared.refused_http2.get().is_some() {
        return Err(ErrorKind::Tls);
    }
    let builder = shared.http2.as_ref().expect("an --http2 run has a builder");
    let begun = Instant::now();
    let tcp = connect_tcp(shared.addr).await?;
    let sender = match &shared.tls {
        Some(tls) => {
            let stream = match tls.handshake_io(tcp).await {
                Ok(stream) => stream,
                Err(e) => {
                    if refused_alpn(&e) {
                        shared.refuse_http2(None);
                    }
                    return Err(tls.classify(&e));
                }
            };
            let alpn = stream.get_ref().1.alpn_protocol();
            if alpn != Some(ALPN_H2) {
                let chosen = alpn.map(|p| String::from_utf8_lossy(p).into_owned());
                shared.refuse_http2(chosen);
                return Err(ErrorKind::Tls);
            }
            let (sender, driver) = builder
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| classify(&e))?;
            tokio::task::spawn_local(driver);
            sender
        }
        None => {
            let (sender, driver) = builder
                .handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| classify(&e))?;
            tokio::task::spawn_local(driver);
            sender
        }
    };
    if let Some(tally) = measured {
        tally.borrow_mut().connection(begun.elapsed());
    }
    Ok(sender)
}

impl Sender for Http2Sender {
    async fn send(
        &mut self,
        shared: &Shared,
        measured: Option<&RefCell<Tally>>,
    ) -> Result<Response, ErrorKind> {
        // A request refused before it was sent (the connection had just died)
        // is sent again on a fresh connection, once.
        for attempt in 0..2 {
            let sender = self.link(shared, measured).await?;
            let resp = match sender
                .try_send_request(shared.request.build(http::HeaderMap::new()))
                .await
            {
                Ok(resp) => resp,
                Err(mut e) => {
                    let not_sent = e.take_message().is_some();
                    if not_sent && attempt == 0 {
                        continue;
                    }
                    return Err(if not_sent {
                        ErrorKind::Reset
                    } else {
                        classify(e.error())
                    });
                }
            };
            let status = resp.status().as_u16();
            let mut bytes = head_len(&resp);
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Some(d) = f.data_ref() {
                            bytes += d.len() as u64;
                        }
                    }
                    Err(e) => return Err(classify(&e)),
                }
            }
            return Ok(Response {
                status,
                bytes,
                reusable: true,
            });
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// A stream abandoned at its deadline is reset by hyper when its future is
    /// dropped; the connection and the group's other streams go on.
    fn abandon(&mut self) {}
}

/// Bytes of the status line and headers as HTTP/1.1 would send them, counted
/// from a decoded head: HPACK's saving is not seen. (HTTP/1.1 counts the bytes
/// it read instead: `connection::Counted`.)
fn head_len<B>(resp: &http::Response<B>) -> u64 {
    let reason = resp.status().canonical_reason().map_or(0, str::len);
    // "HTTP/1.1 200 OK\r\n"
    let mut n = 9 + 3 + 1 + reason + 2;
    for (name, value) in resp.headers() {
        n += name.as_str().len() + 2 + value.len() + 2;
    }
    (n + 2) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_length_matches_the_wire() {
        let resp = http::Response::builder()
            .status(200)
            .header("server", "nginx")
            .header("content-length", "17")
            .body(())
            .unwrap();
        let wire = "HTTP/1.1 200 OK\r\nserver: nginx\r\ncontent-length: 17\r\n\r\n";
        assert_eq!(head_len(&resp), wire.len() as u64);
    }
}
