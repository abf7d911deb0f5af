package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Token is a bearer token: an X app-only token or a Mastodon user access token. Every way of
// printing it (fmt verbs, slog, JSON) gives a redacted form, as for Credentials: it comes from
// Secrets Manager and must not reach a log line, an error or a page. string(t) is the value.
type Token string

const redactedToken = "stream.Token{REDACTED}"

// String returns a redacted form.
func (Token) String() string { return redactedToken }

// GoString returns a redacted form, for %#v.
func (Token) GoString() string { return redactedToken }

// Format prints the redacted form for every verb, so that %x or %q cannot print the value.
func (Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedToken) }

// LogValue keeps slog from printing the value.
func (Token) LogValue() slog.Value { return slog.StringValue(redactedToken) }

// MarshalJSON keeps encoding/json from printing the value.
func (Token) MarshalJSON() ([]byte, error) { return json.Marshal(redactedToken) }

// maxErrorBody bounds how much of a non-200 answer is read to classify it.
const maxErrorBody = 4 << 10

// httpStream is what the X and Mastodon sources share: one plain GET at a time with a bearer
// token, the reconnect schedules of backoff.go, the stall watchdog of transport.go, and the
// status bookkeeping. Unlike TwitterSource it needs no observer under a client library: it makes
// the request itself, reads the body in Run's goroutine, and closes it before the next attempt,
// so at most one connection is ever open.
type httpStream struct {
	name         string
	client       *http.Client
	token        Token
	stallTimeout time.Duration
	logger       *slog.Logger
	after        func(time.Duration) <-chan time.Time
	now          func() time.Time

	running atomic.Bool

	mu     sync.Mutex
	status SourceStatus
}

func newHTTPStream(name string, token Token, stall time.Duration, transport http.RoundTripper, logger *slog.Logger, after func(time.Duration) <-chan time.Time) *httpStream {
	if transport == nil {
		transport = newStreamTransport(stall)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if after == nil {
		after = time.After
	}
	h := &httpStream{
		name: name,
		// No client timeout: a stream lasts for days. The watchdog covers silence, including
		// the wait for headers.
		client:       &http.Client{Transport: transport},
		token:        token,
		stallTimeout: stall,
		logger:       logger.With("source", name),
		after:        after,
		now:          time.Now,
	}
	h.status = SourceStatus{Source: name, State: StateStopped, Since: time.Now()}
	return h
}

// attemptEnd is a connEnd plus what a source needs to classify an answer other than 200.
type attemptEnd struct {
	connEnd
	// header and body (at most maxErrorBody bytes) of a non-2xx answer.
	header http.Header
	body   []byte
	// phase names the request that ended the attempt ("stream", or "rules" for X's rule sync).
	phase string
}

// run supervises the attempts until ctx ends, waiting between them by the reconnect policy.
// adjust lets a source refine the wait and the reason from what the server said (a rate limit
// reset time, X's TooManyConnections).
func (h *httpStream) run(ctx context.Context, attempt func(context.Context) attemptEnd, adjust func(end attemptEnd, wait time.Duration, reason string) (time.Duration, string)) error {
	if !h.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%s source: Run is already running", h.name)
	}
	defer h.running.Store(false)
	defer h.client.CloseIdleConnections()

	policy := newReconnectPolicy(h.stallTimeout)
	for ctx.Err() == nil {
		h.setState(StateConnecting, "", 0)
		h.logger.Info(h.name+" stream connecting", "state", StateConnecting)
		end := attempt(ctx)
		if ctx.Err() != nil {
			break
		}
		wait, state, reason := policy.next(end.connEnd)
		if adjust != nil {
			wait, reason = adjust(end, wait, reason)
		}
		h.ended(state, reason, wait, end)
		if !waitOrDone(ctx, h.after, wait) {
			break
		}
	}
	h.setState(StateStopped, "", 0)
	h.logger.Info(h.name+" stream stopped", "state", StateStopped)
	return nil
}

// do sends one stream request with the bearer token under the stall watchdog and, for a 2xx answer,
// hands the body to read, which returns when the body ends (or the watchdog or ctx cuts it).
// read runs in the caller's goroutine: while it blocks in emit, nothing is read and the
// watchdog is not armed, so a slow sink is back-pressure and not a stall.
func (h *httpStream) do(ctx context.Context, req *http.Request, read func(body io.Reader) (lines int64, err error)) attemptEnd {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	dog := newWatchdog(h.stallTimeout, func() {
		stalled.Store(true)
		cancel()
	})
	defer dog.disarm()

	req = req.WithContext(reqCtx)
	req.Header.Set("Authorization", "Bearer "+string(h.token))
	req.Header.Set("User-Agent", "streammatch")
	dog.arm()
	resp, err := h.client.Do(req)
	dog.disarm()
	if err != nil {
		return attemptEnd{connEnd: connEnd{kind: endNetwork, err: err, stalled: stalled.Load()}}
	}
	defer resp.Body.Close()
	body := &watchedReader{r: resp.Body, dog: dog}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
		return attemptEnd{connEnd: connEnd{kind: endHTTP, status: resp.StatusCode}, header: resp.Header, body: b}
	}
	h.connected()
	lines, err := read(body)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return attemptEnd{connEnd: connEnd{kind: endDropped, err: err, lines: lines, stalled: stalled.Load()}}
}

// connected counts a successful connection and shows it.
func (h *httpStream) connected() {
	h.mu.Lock()
	h.status.Connects++
	h.mu.Unlock()
	h.setState(StateConnected, "", 0)
	h.logger.Info(h.name+" stream connected", "state", StateConnected)
}

// ended records and logs why an attempt ended and how long the source waits.
func (h *httpStream) ended(state State, reason string, wait time.Duration, end attemptEnd) {
	h.setState(state, reason, wait)
	attrs := []any{"state", state, "reason", reason, "wait", wait.String(), "phase", end.phase}
	if end.status != 0 {
		attrs = append(attrs, "status", end.status)
	}
	if state == StateRejected {
		h.logger.Error(h.name+" stream rejected", attrs...)
		return
	}
	h.logger.Warn(h.name+" stream ended", attrs...)
}

func (h *httpStream) setState(state State, lastError string, retryIn time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status.State = state
	h.status.Since = time.Now()
	h.status.RetryIn = retryIn
	if lastError != "" {
		h.status.LastError = lastError
	}
}

func (h *httpStream) snapshot() SourceStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status
}

// maxRateLimitWait caps a wait taken from a server's rate-limit header, so that a wrong clock
// or a hostile header cannot park the source for days. X's windows are 15 minutes.
const maxRateLimitWait = 20 * time.Minute

// rateLimitWait reads when a rate limit lifts from the headers X and Mastodon send:
// Retry-After (seconds), x-rate-limit-reset (X: Unix seconds) and X-RateLimit-Reset (Mastodon:
// an ISO 8601 time). It returns 0 when none is present or usable.
func rateLimitWait(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s > 0 {
			d = time.Duration(s) * time.Second
		}
	}
	if v := h.Get("X-Rate-Limit-Reset"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = max(d, time.Unix(s, 0).Sub(now))
		}
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			d = max(d, t.Sub(now))
		}
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRateLimitWait)
}
