//! One HTTP/1.1 connection driven directly: a `hyper::client::conn::http1`
//! handshake over a `TcpStream` (or a TLS stream: the type is generic, so plain
//! HTTP pays nothing for HTTPS), with no pool and no spawned driver task.
//!
//! The connection future is owned here and polled only while a request is in
//! flight, so dropping a `Connection` closes its socket at once: a request that
//! timed out or was cut at a `-z` deadline leaves no task or file descriptor
//! behind. Errors are sorted into the kinds the report counts.

use std::cell::Cell;
use std::error::Error as _;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::joint_poll::JointPoll;
use super::result::ErrorKind;

pub(crate) type Body = Full<Bytes>;
type Driver<S> = http1::Connection<TokioIo<Counted<S>>, Body>;

/// A stream that counts the bytes read from it, into a counter its
/// `Connection` shares: a response's size is what its exchange read, exactly
/// as it came over the wire (after TLS), at one addition per read.
struct Counted<S> {
    inner: S,
    read: Rc<Cell<u64>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = (buf.filled().len() - before) as u64;
            self.read.set(self.read.get() + n);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The request every client sends, built once.
#[derive(Debug)]
pub struct RequestTemplate {
    pub method: Method,
    pub path: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RequestTemplate {
    /// A request whose headers are the template's, written into `headers`:
    /// a map recycled from the previous response keeps its capacity (see
    /// `Connection::spare_headers`).
    #[inline]
    pub(crate) fn build(&self, mut headers: HeaderMap) -> Request<Full<Bytes>> {
        headers.clear();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = headers;
        req
    }
}

/// A response read to its end.
#[derive(Debug, Clone, Copy)]
pub struct Response {
    pub status: u16,
    /// Status line, headers and body, as they came over the wire (HTTP/1.1:
    /// the bytes read while it was awaited; HTTP/2: re-counted, see `http2::head_len`).
    pub bytes: u64,
    /// Whether the connection may carry another request.
    pub reusable: bool,
}

/// How a request ended, when it got no response.
#[derive(Debug)]
pub enum Failure {
    /// The connection was closed before the request was written: nothing was
    /// sent, so the caller reconnects and sends again without counting it.
    NotSent,
    /// The request failed.
    Failed(ErrorKind),
}

/// An open HTTP/1.1 connection over `S`.
pub struct Connection<S: AsyncRead + AsyncWrite + Unpin = TcpStream> {
    sender: http1::SendRequest<Body>,
    driver: Pin<Box<Driver<S>>>,
    /// The driver finished (the server or hyper closed the connection).
    driver_done: bool,
    /// Polls a request's exchange and the driver together (see `round_trip`).
    joint: JointPoll,
    /// The last response's header map, emptied, for the next request. hyper
    /// parses each response into the map its request was sent with; a map
    /// cloned from the template has room for the request's one or two headers
    /// only and grows on every response, then is freed. One map per connection
    /// instead: no allocation for headers in the steady state (370 fewer
    /// instructions per request on `benches/loadgen`'s nginx, by callgrind).
    spare_headers: HeaderMap,
    /// Bytes read from the stream so far (`Counted`).
    read: Rc<Cell<u64>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Performs the (local) HTTP/1 handshake over an open stream
    /// (`transport::Dial` opens it).
    pub async fn handshake(
        stream: S,
        builder: &http1::Builder,
    ) -> Result<Connection<S>, ErrorKind> {
        let read = Rc::new(Cell::new(0));
        let stream = Counted {
            inner: stream,
            read: read.clone(),
        };
        let (sender, driver) = builder
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| classify(&e))?;
        Ok(Connection {
            sender,
            driver: Box::pin(driver),
            driver_done: false,
            joint: JointPoll::default(),
            spare_headers: HeaderMap::new(),
            read,
        })
    }

    /// Whether the connection is known to be closed.
    pub fn is_closed(&self) -> bool {
        self.driver_done || self.sender.is_closed()
    }

    /// Sends a request made from `template` and reads the whole response,
    /// driving the connection meanwhile.
    pub async fn round_trip(&mut self, template: &RequestTemplate) -> Result<Response, Failure> {
        let sender = &mut self.sender;
        let spare_headers = &mut self.spare_headers;
        let read = &*self.read;
        // No pipelining: nothing of this response was read before its request.
        let read_before = read.get();
        // Built in place, pinned where it stands: a future moved is a memcpy of it.
        let mut exchange = std::pin::pin!(async move {
            if sender.ready().await.is_err() {
                return Err(Failure::NotSent);
            }
            let request = template.build(std::mem::take(spare_headers));
            let resp = match sender.try_send_request(request).await {
                Ok(resp) => resp,
                Err(mut e) => {
                    return Err(match e.take_message() {
                        Some(_) => Failure::NotSent,
                        None => Failure::Failed(classify(e.error())),
                    });
                }
            };
            let status = resp.status();
            let reusable = !resp
                .headers()
                .get(http::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let (head, mut body) = resp.into_parts();
            // Emptied now, not when the next request is built: its values are
            // slices of hyper's read buffer and would keep it alive meanwhile.
            let mut headers = head.headers;
            headers.clear();
            *spare_headers = headers;
            while let Some(frame) = body.frame().await {
                if let Err(e) = frame {
                    return Err(Failure::Failed(classify(&e)));
                }
            }
            Ok(Response {
                status: status.as_u16(),
                bytes: read.get() - read_before,
                reusable,
            })
        });
        let driver = &mut self.driver;
        let driver_done = &mut self.driver_done;
        let joint = &self.joint;
        joint.renew_first();
        // The exchange and the driver, each with its own waker, polled again
        // only when the other woke it: the first poll queues the request and
        // the driver writes it; on a readable socket the driver reads the
        // response and the exchange then takes it and its body. Their
        // hand-offs stay inside this poll instead of each re-scheduling the
        // client task for an empty poll (`joint_poll`). On `benches/loadgen`'s
        // nginx (c=100, keep-alive), with `spare_headers`: user-space
        // instructions per request (callgrind, -n 60000 minus -n 20000) 19,270
        // before, 17,714 after (wrk: 6,048); client task polls per request
        // 1.26 before, 1.0 after; CPU per request (`perf stat` task-clock, six
        // alternating 200k-request rounds) 5.74 us before, 5.65 us after (wrk:
        // 5.14 us).
        std::future::poll_fn(|cx| {
            joint.poll(
                cx,
                |cx| exchange.as_mut().poll(cx),
                |cx| {
                    if *driver_done || driver.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // Closed: what was already read is still delivered to
                    // `exchange` (polled again), or it resolves to an error
                    // now that the driver is gone.
                    *driver_done = true;
                    Poll::Ready(())
                },
            )
        })
        .await
    }
}

/// Sorts a hyper error into a report kind.
pub fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return classify_io(io);
        }
        source = s.source();
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        // The server closed the connection before a complete response.
        return ErrorKind::Reset;
    }
    ErrorKind::Other
}

pub(crate) fn classify_io(e: &io::Error) -> ErrorKind {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorKind::Reset
        }
        K::TimedOut => ErrorKind::Timeout,
        K::ConnectionRefused => ErrorKind::Connect,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds() {
        let k = |kind| classify_io(&io::Error::from(kind));
        assert_eq!(k(io::ErrorKind::ConnectionReset), ErrorKind::Reset);
        assert_eq!(k(io::ErrorKind::BrokenPipe), ErrorKind::Reset);
        assert_eq!(k(io::ErrorKind::ConnectionRefused), ErrorKind::Connect);
        assert_eq!(k(io::ErrorKind::TimedOut), ErrorKind::Timeout);
        assert_eq!(k(io::ErrorKind::InvalidData), ErrorKind::Other);
    }
}
