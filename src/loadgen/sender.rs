//! How one client sends its requests: the `Sender` trait the worker's loop is
//! generic over (monomorphised: plain HTTP/1.1 compiles to the same loop it
//! always was), and its HTTP/1.1 implementation, one connection per client over
//! plain TCP or TLS. The HTTP/2 one, whose clients share a connection, is in
//! `http2`.

use std::cell::RefCell;
use std::time::Instant;

use super::connection::{Connection, Failure, Response};
use super::result::{ErrorKind, Tally};
use super::transport::Dial;
use super::worker::Shared;

/// One client's way to the server.
pub(crate) trait Sender {
    /// Sends one request and reads its whole response, (re)connecting when
    /// needed; a connection opened meanwhile is counted in `measured` (`None`
    /// during the warm-up).
    async fn send(
        &mut self,
        shared: &Shared,
        measured: Option<&RefCell<Tally>>,
    ) -> Result<Response, ErrorKind>;

    /// Forgets the connection of a request abandoned at its deadline.
    fn abandon(&mut self);
}

/// A client's own HTTP/1.1 connection over `S` (TCP or TLS).
pub(crate) struct Http1Sender<S: Dial> {
    conn: Option<Connection<S>>,
}

impl<S: Dial> Http1Sender<S> {
    pub(crate) fn new() -> Self {
        Http1Sender { conn: None }
    }
}

impl<S: Dial> Sender for Http1Sender<S> {
    async fn send(
        &mut self,
        shared: &Shared,
        measured: Option<&RefCell<Tally>>,
    ) -> Result<Response, ErrorKind> {
        let conn = &mut self.conn;
        // A request refused before it was written (the server closed the kept-alive
        // connection meanwhile) is sent again on a fresh connection, once.
        for attempt in 0..2 {
            if conn.as_ref().is_some_and(Connection::is_closed) {
                *conn = None;
            }
            let c = match conn {
                Some(c) => c,
                None => {
                    let begun = Instant::now();
                    let stream = S::dial(shared.addr, shared.tls.as_ref()).await?;
                    let opened = Connection::handshake(stream, &shared.http1).await?;
                    if let Some(tally) = measured {
                        tally.borrow_mut().connection(begun.elapsed());
                    }
                    conn.insert(opened)
                }
            };
            match c.round_trip(&shared.request).await {
                Ok(resp) => {
                    if !(shared.keepalive && resp.reusable) {
                        *conn = None;
                    }
                    return Ok(resp);
                }
                Err(Failure::NotSent) if attempt == 0 => *conn = None,
                Err(Failure::NotSent) => {
                    *conn = None;
                    return Err(ErrorKind::Reset);
                }
                Err(Failure::Failed(kind)) => {
                    *conn = None;
                    return Err(kind);
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn abandon(&mut self) {
        self.conn = None;
    }
}
