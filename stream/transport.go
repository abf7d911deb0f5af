package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The transport chain under go-twitter, built once per TwitterSource:
//
//	go-twitter's http.Client
//	  -> rewriteTransport   (https://stream.twitter.com -> TwitterConfig.BaseURL)
//	  -> oauth1.Transport   (signs the rewritten URL, so the signature matches what the server sees)
//	  -> connObserver       (one request per session, status and error capture, line framing,
//	                         stall watchdog, live-connection count)
//	  -> http.Transport     (or TwitterConfig.Transport)
//
// go-twitter gives no hook between its retry loop and its line reader, so everything the
// supervisor needs to know is observed here, at the RoundTripper, and handed over in a
// connSession.

// errOneRequestPerSession is what the observer answers when go-twitter tries a second request
// in one session (its own reconnect after a body ends, or its sleep-and-retry after 503, 420
// and 429). The error makes go-twitter close Messages, which returns control to the
// supervisor: it alone decides when to reconnect, and go-twitter's un-injectable sleeps never
// run.
var errOneRequestPerSession = errors.New("stream: one request per session; the supervisor reconnects")

// statusError is what the observer returns to go-twitter for a response other than 200, so that
// go-twitter stops instead of retrying or reading the body. The status itself reaches the
// supervisor through the session.
type statusError struct{ status int }

func (e *statusError) Error() string { return fmt.Sprintf("stream: http status %d", e.status) }

// rewriteTransport sends go-twitter's requests, which it addresses to the hard-coded
// https://stream.twitter.com/1.1/, to base instead, keeping the path (after base's own path, if
// any) and the query.
type rewriteTransport struct {
	base *url.URL
	next http.RoundTripper
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not modify the request it is given.
	r := req.Clone(req.Context())
	r.URL.Scheme = t.base.Scheme
	r.URL.Host = t.base.Host
	if prefix := strings.TrimSuffix(t.base.Path, "/"); prefix != "" {
		r.URL.Path = prefix + r.URL.Path
		r.URL.RawPath = ""
	}
	r.Host = ""
	return t.next.RoundTrip(r)
}

// newStreamTransport is the default transport: HTTP/1.1 (a custom dialer turns off HTTP/2, whose
// multiplexing would hide a second stream inside one connection), no connection reuse (each stream is
// one long request, and an idle pooled connection would be a second connection held with the
// same credentials), a bounded dial and TLS handshake. There is deliberately no overall
// timeout: a stream lasts for days. Silence is caught by the stall watchdog instead, which also
// covers the wait for response headers, so ResponseHeaderTimeout is left to it.
func newStreamTransport(stallTimeout time.Duration) *http.Transport {
	dialTimeout := min(30*time.Second, stallTimeout)
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: min(10*time.Second, stallTimeout),
		DisableKeepAlives:   true,
	}
}

// connSession is one supervisor attempt: it allows exactly one request and records how that
// request ended. The observer fills it from go-twitter's goroutine; the supervisor reads it
// after go-twitter has closed Messages, which orders the two.
type connSession struct {
	ctx         context.Context
	onConnected func()
	// skips carries the reasons for lines the framer dropped. It is unbuffered: the framer
	// waits until the supervisor has emitted the skip, which keeps records in stream order and
	// applies the same back-pressure as messages do.
	skips chan string
	// abandoned is closed when the supervisor stops listening, so that a late skip cannot block.
	abandoned chan struct{}

	used    atomic.Bool
	stalled atomic.Bool
	lines   atomic.Int64

	mu  sync.Mutex
	end connEnd
}

func newConnSession(ctx context.Context, onConnected func()) *connSession {
	return &connSession{
		ctx:         ctx,
		onConnected: onConnected,
		skips:       make(chan string),
		abandoned:   make(chan struct{}),
		end:         connEnd{kind: endNetwork, err: errors.New("no request was made")},
	}
}

func (s *connSession) setEnd(end connEnd) {
	s.mu.Lock()
	s.end = end
	s.mu.Unlock()
}

func (s *connSession) bodyEnded(err error) {
	if errors.Is(err, io.EOF) {
		err = nil
	}
	s.mu.Lock()
	s.end.err = err
	s.mu.Unlock()
}

func (s *connSession) skip(reason string) {
	select {
	case s.skips <- reason:
	case <-s.abandoned:
	}
}

// result is the session's account of the connection, complete once go-twitter has stopped.
func (s *connSession) result() connEnd {
	s.mu.Lock()
	end := s.end
	s.mu.Unlock()
	end.stalled = s.stalled.Load()
	end.lines = s.lines.Load()
	return end
}

// connObserver is the RoundTripper at the bottom of go-twitter's client. See the comment at
// the top of this file.
type connObserver struct {
	next         http.RoundTripper
	stallTimeout time.Duration
	maxLine      int

	mu      sync.Mutex
	session *connSession
	live    int
	maxLive int
}

// begin makes sess the session the next request belongs to.
func (o *connObserver) begin(sess *connSession) {
	o.mu.Lock()
	o.session = sess
	o.mu.Unlock()
}

// finish ends the current session; a request arriving afterwards is refused.
func (o *connObserver) finish() {
	o.mu.Lock()
	o.session = nil
	o.mu.Unlock()
}

// connections returns how many connections are open now and the most ever open at once.
func (o *connObserver) connections() (live, maxLive int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.live, o.maxLive
}

func (o *connObserver) opened() {
	o.mu.Lock()
	o.live++
	o.maxLive = max(o.maxLive, o.live)
	o.mu.Unlock()
}

func (o *connObserver) closed() {
	o.mu.Lock()
	o.live--
	o.mu.Unlock()
}

func (o *connObserver) claim() *connSession {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.session == nil || !o.session.used.CompareAndSwap(false, true) {
		return nil
	}
	return o.session
}

func (o *connObserver) RoundTrip(req *http.Request) (*http.Response, error) {
	sess := o.claim()
	if sess == nil {
		return nil, errOneRequestPerSession
	}
	// The request go-twitter builds has no context; the session's (the supervisor's) is used,
	// so that ending the source or a stall aborts a dial, a header wait or a blocked body read.
	ctx, cancel := context.WithCancel(sess.ctx)
	dog := newWatchdog(o.stallTimeout, func() {
		sess.stalled.Store(true)
		cancel()
	})
	o.opened()
	release := sync.OnceFunc(func() {
		dog.disarm()
		cancel()
		o.closed()
	})

	dog.arm()
	resp, err := o.next.RoundTrip(req.WithContext(ctx))
	dog.disarm()
	if err != nil {
		release()
		sess.setEnd(connEnd{kind: endNetwork, err: err})
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		code := twitterErrorCode(&watchedReader{r: resp.Body, dog: dog})
		resp.Body.Close()
		release()
		sess.setEnd(connEnd{kind: endHTTP, status: resp.StatusCode, twitterCode: code})
		return nil, &statusError{status: resp.StatusCode}
	}
	sess.setEnd(connEnd{kind: endDropped})
	if sess.onConnected != nil {
		sess.onConnected()
	}
	framer := newLineFramer(&watchedReader{r: resp.Body, dog: dog}, o.maxLine, framerHooks{
		validate: validateLine,
		skip:     sess.skip,
		line:     func() { sess.lines.Add(1) },
		end:      sess.bodyEnded,
	})
	resp.Body = &framedBody{lineFramer: framer, body: resp.Body, release: release}
	return resp, nil
}

// validateLine runs the same decoder as the replay source on each line before go-twitter sees
// it. go-twitter ignores type errors (a tweet with "id_str": 123 arrives with an empty ID and
// whatever else decoded), so only lines that decode cleanly are passed on; the others are
// counted as skipped with DecodeLine's reason.
func validateLine(line []byte) string {
	if rec := DecodeLine(line, ""); rec.Kind == KindSkipped {
		return rec.Reason
	}
	return ""
}

// twitterErrorCode reads the code from Twitter's error body ({"errors":[{"code":32,...}]}).
// Only the number is kept: the message is server text and is not needed.
func twitterErrorCode(body io.Reader) int {
	var e struct {
		Errors []struct {
			Code int `json:"code"`
		} `json:"errors"`
	}
	if json.NewDecoder(io.LimitReader(body, 4096)).Decode(&e) != nil || len(e.Errors) == 0 {
		return 0
	}
	return e.Errors[0].Code
}

// framedBody is the response body go-twitter reads: only complete, valid lines.
type framedBody struct {
	*lineFramer
	body    io.Closer
	release func()
}

func (b *framedBody) Close() error {
	err := b.body.Close()
	b.release()
	return err
}

// watchdog cancels a connection when a read has waited longer than d. It is armed only while
// a read (or the wait for headers) is in progress: when the worker is slow and nothing is
// being read, the server is not silent, we are busy, and that must not count as a stall.
type watchdog struct {
	d     time.Duration
	timer *time.Timer
}

func newWatchdog(d time.Duration, fire func()) *watchdog {
	t := time.AfterFunc(time.Hour, fire)
	t.Stop()
	return &watchdog{d: d, timer: t}
}

func (w *watchdog) arm()    { w.timer.Reset(w.d) }
func (w *watchdog) disarm() { w.timer.Stop() }

// watchedReader arms the watchdog around every read, so every byte (a keep-alive newline too)
// restarts the stall timer.
type watchedReader struct {
	r   io.Reader
	dog *watchdog
}

func (w *watchedReader) Read(p []byte) (int, error) {
	w.dog.arm()
	n, err := w.r.Read(p)
	w.dog.disarm()
	return n, err
}

// framerHooks are the framer's reports.
type framerHooks struct {
	// validate returns a skip reason for a complete line, or "" to pass it on.
	validate func(line []byte) string
	// skip is called for each dropped line, in stream order.
	skip func(reason string)
	// line is called for each line passed on.
	line func()
	// end is called once, with the error that ended the body (io.EOF at a clean end).
	end func(err error)
}

// Reasons the framer gives for the lines it drops.
const (
	ReasonLineTooLong = "line_too_long"
	ReasonPartialLine = "partial_line"
)

// readBufferSize is the framer's read buffer. A tweet is 2-7 KB, so most lines arrive whole.
const readBufferSize = 64 << 10

// lineFramer splits a v1.1 stream body into messages and passes on only the complete, valid
// ones, each followed by "\r\n". Twitter ends every message with "\r\n"; a lone "\n" can occur
// inside one and does not end it. A blank line is a keep-alive and is swallowed. A line longer
// than maxLine is discarded as it streams past, never held whole in memory; at the end of the
// body a started line is discarded. Each dropped line is reported once, so that every line on
// the wire is accounted for: passed on, skipped with a reason, or a keep-alive.
type lineFramer struct {
	src     *bufio.Reader
	maxLine int
	hooks   framerHooks

	line   []byte // the line being assembled, with its terminator when complete
	over   bool   // the current line passed maxLine and is being discarded
	prevCR bool   // in discard mode: the last byte seen was '\r'
	out    []byte // a validated line and its "\r\n", not yet read
	err    error  // the body's error, returned once out is drained
}

func newLineFramer(r io.Reader, maxLine int, hooks framerHooks) *lineFramer {
	return &lineFramer{src: bufio.NewReaderSize(r, readBufferSize), maxLine: maxLine, hooks: hooks}
}

func (f *lineFramer) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		f.fill()
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

// fill reads one slice of the body (up to a '\n' or a full buffer) and, if it completes a
// line, sets out to that line.
func (f *lineFramer) fill() {
	chunk, err := f.src.ReadSlice('\n')
	if len(chunk) > 0 {
		f.absorb(chunk)
	}
	if err == nil || errors.Is(err, bufio.ErrBufferFull) {
		return
	}
	if f.over || len(bytes.TrimSpace(f.line)) > 0 {
		f.hooks.skip(ReasonPartialLine)
	}
	f.line, f.over = f.line[:0], false
	f.err = err
	f.hooks.end(err)
}

func (f *lineFramer) absorb(chunk []byte) {
	endsLF := chunk[len(chunk)-1] == '\n'
	if !f.over && len(f.line)+len(chunk) > f.maxLine+2 {
		f.over = true
		f.prevCR = len(f.line) > 0 && f.line[len(f.line)-1] == '\r'
		f.line = f.line[:0]
	}
	if f.over {
		ends := endsLF && (len(chunk) >= 2 && chunk[len(chunk)-2] == '\r' || len(chunk) == 1 && f.prevCR)
		f.prevCR = chunk[len(chunk)-1] == '\r'
		if ends {
			f.over = false
			f.hooks.skip(ReasonLineTooLong)
		}
		return
	}
	f.line = append(f.line, chunk...)
	if !endsLF || len(f.line) < 2 || f.line[len(f.line)-2] != '\r' {
		return
	}
	complete := f.line
	f.line = f.line[:0] // reused only after out has been read
	msg := bytes.TrimSpace(complete[:len(complete)-2])
	if len(msg) == 0 {
		return // keep-alive
	}
	if reason := f.hooks.validate(msg); reason != "" {
		f.hooks.skip(reason)
		return
	}
	f.hooks.line()
	// Pass the message on without the lone newlines a server may have sent as keep-alives
	// before it, so go-twitter sees exactly one message and its terminator.
	n := copy(complete, msg)
	f.out = append(complete[:n], '\r', '\n')
}

// describeNetErr shortens a transport error for the status page: the *url.Error wrapper
// repeats the method and URL (with the track terms), which add nothing there.
func describeNetErr(err error) string {
	if err == nil {
		return "unknown error"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
