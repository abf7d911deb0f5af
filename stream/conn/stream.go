package conn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streammatch/streammatch/stream"
)

// maxErrorBody bounds how much of a non-2xx answer is read to classify it.
const maxErrorBody = 4 << 10

// Config configures a Stream.
type Config struct {
	// Name is the source's name, in logs and in its status.
	Name string
	// StallTimeout is how long a read may wait for a byte before the connection counts as
	// stalled and is replaced.
	StallTimeout time.Duration
	// Transport carries the requests; nil means NewTransport(StallTimeout). A source that signs
	// its requests (OAuth 1.0a) passes a signing transport over NewTransport.
	Transport http.RoundTripper
	// Logger receives one line per state change. Nil discards.
	Logger *slog.Logger
	// After is the clock for reconnect waits; nil means time.After. Tests inject one to
	// assert the schedule without sleeping.
	After func(time.Duration) <-chan time.Time
}

// Stream is what every source shares: one request at a time under the stall watchdog,
// Twitter's reconnect schedules, and the status bookkeeping. The source makes each attempt's
// request through Do and reads the body in Run's goroutine, so the body is closed before the
// next attempt starts and at most one connection is ever open.
type Stream struct {
	name         string
	client       *http.Client
	stallTimeout time.Duration
	logger       *slog.Logger
	after        func(time.Duration) <-chan time.Time
	now          func() time.Time

	running atomic.Bool

	mu     sync.Mutex
	status stream.SourceStatus
}

// New returns a Stream; nothing connects until Run.
func New(cfg Config) *Stream {
	transport := cfg.Transport
	if transport == nil {
		transport = NewTransport(cfg.StallTimeout)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	after := cfg.After
	if after == nil {
		after = time.After
	}
	s := &Stream{
		name: cfg.Name,
		// No client timeout: a stream lasts for days. The watchdog covers silence, including
		// the wait for headers.
		client:       &http.Client{Transport: transport},
		stallTimeout: cfg.StallTimeout,
		logger:       logger.With("source", cfg.Name),
		after:        after,
		now:          time.Now,
	}
	s.status = stream.SourceStatus{Source: cfg.Name, State: stream.StateStopped, Since: time.Now()}
	return s
}

// Logger is the stream's logger, with the source's name.
func (s *Stream) Logger() *slog.Logger { return s.logger }

// Transport is the transport requests go through, for a source's other calls (X's rules).
func (s *Stream) Transport() http.RoundTripper { return s.client.Transport }

// Now is the stream's clock.
func (s *Stream) Now() time.Time { return s.now() }

// Run supervises the attempts until ctx ends, waiting between them by Twitter's reconnect
// rules, and returns nil then. adjust, if not nil, lets a source refine the wait and the
// reason from what the server said (a rate limit reset time, X's TooManyConnections).
func (s *Stream) Run(ctx context.Context, attempt func(context.Context) End, adjust func(end End, wait time.Duration, reason string) (time.Duration, string)) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%s source: Run is already running", s.name)
	}
	defer s.running.Store(false)
	defer s.client.CloseIdleConnections()

	policy := newPolicy(s.stallTimeout)
	for ctx.Err() == nil {
		s.setState(stream.StateConnecting, "", 0)
		s.logger.Info(s.name+" stream connecting", "state", stream.StateConnecting)
		end := attempt(ctx)
		if ctx.Err() != nil {
			break
		}
		wait, state, reason := policy.next(end)
		if adjust != nil {
			wait, reason = adjust(end, wait, reason)
		}
		s.ended(state, reason, wait, end)
		if !waitOrDone(ctx, s.after, wait) {
			break
		}
	}
	s.setState(stream.StateStopped, "", 0)
	s.logger.Info(s.name+" stream stopped", "state", stream.StateStopped)
	return nil
}

// Do sends one stream request under the stall watchdog and, for a 2xx answer, hands the body
// to read, which returns when the body ends (or the watchdog or ctx cuts it) with the number of
// records it delivered. read runs in the caller's goroutine: while it blocks in emit, nothing is
// read and the watchdog is not armed, so a slow sink is back-pressure and not a stall. The
// caller sets the request's authorisation (a header, or a signing Transport).
func (s *Stream) Do(ctx context.Context, req *http.Request, read func(body io.Reader) (records int64, err error)) End {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	dog := newWatchdog(s.stallTimeout, func() {
		stalled.Store(true)
		cancel()
	})
	defer dog.disarm()

	req = req.WithContext(reqCtx)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "streammatch")
	}
	dog.arm()
	resp, err := s.client.Do(req)
	dog.disarm()
	if err != nil {
		return End{Kind: EndNetwork, Err: err, Stalled: stalled.Load()}
	}
	defer resp.Body.Close()
	body := &watchedReader{r: resp.Body, dog: dog}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
		return End{Kind: EndHTTP, Status: resp.StatusCode, Header: resp.Header, Body: b}
	}
	s.connected()
	records, err := read(body)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return End{Kind: EndDropped, Err: err, Lines: records, Stalled: stalled.Load()}
}

// connected counts a successful connection and shows it.
func (s *Stream) connected() {
	s.mu.Lock()
	s.status.Connects++
	s.mu.Unlock()
	s.setState(stream.StateConnected, "", 0)
	s.logger.Info(s.name+" stream connected", "state", stream.StateConnected)
}

// ended records and logs why an attempt ended and how long the source waits.
func (s *Stream) ended(state stream.State, reason string, wait time.Duration, end End) {
	s.setState(state, reason, wait)
	attrs := []any{"state", state, "reason", reason, "wait", wait.String()}
	if end.Phase != "" {
		attrs = append(attrs, "phase", end.Phase)
	}
	if end.Status != 0 {
		attrs = append(attrs, "status", end.Status)
	}
	if state == stream.StateRejected {
		s.logger.Error(s.name+" stream rejected", attrs...)
		return
	}
	s.logger.Warn(s.name+" stream ended", attrs...)
}

func (s *Stream) setState(state stream.State, lastError string, retryIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.State = state
	s.status.Since = time.Now()
	s.status.RetryIn = retryIn
	if lastError != "" {
		s.status.LastError = lastError
	}
}

// Status returns a snapshot of the connection state.
func (s *Stream) Status() stream.SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// maxRateLimitWait caps a wait taken from a server's rate-limit header, so that a wrong clock
// or a hostile header cannot park the source for days. X's windows are 15 minutes.
const maxRateLimitWait = 20 * time.Minute

// RateLimitWait reads when a rate limit lifts from the headers X and Mastodon send:
// Retry-After (seconds), x-rate-limit-reset (X: Unix seconds) and X-RateLimit-Reset (Mastodon:
// an ISO 8601 time). It returns 0 when none is present or usable.
func RateLimitWait(h http.Header, now time.Time) time.Duration {
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
