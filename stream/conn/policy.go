// Package conn is the connection plumbing every stream source shares: one HTTP request at a
// time under a stall watchdog, line framing, Twitter's reconnect schedules, and the one state
// machine that turns how each connection ended into the status the page shows. A source builds
// its request and decodes what it reads; everything between is here.
package conn

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/streammatch/streammatch/stream"
)

// Twitter's reconnect schedules (developer documentation, "Connecting to a streaming
// endpoint"), as facts.md lists them.
const (
	// networkStep and networkMax: back off linearly for TCP/IP errors, +250 ms a try, to 16 s.
	networkStep = 250 * time.Millisecond
	networkMax  = 16 * time.Second
	// httpInitial and httpMax: back off exponentially for HTTP errors, from 5 s to 320 s.
	httpInitial = 5 * time.Second
	httpMax     = 320 * time.Second
	// rateInitial and rateMax: back off exponentially from 1 minute for 420 and 429. Twitter
	// names no cap; 16 minutes is go-twitter's, and past it a rate limit window has long reset.
	rateInitial = time.Minute
	rateMax     = 16 * time.Minute
)

// linearBackOff waits initial, then step longer on each try, up to max. It implements
// backoff.BackOff: the library has constant and exponential policies but no linear one.
type linearBackOff struct {
	initial, step, max time.Duration
	next               time.Duration
}

var _ backoff.BackOff = (*linearBackOff)(nil)

func newLinearBackOff(initial, step, max time.Duration) *linearBackOff {
	b := &linearBackOff{initial: initial, step: step, max: max}
	b.Reset()
	return b
}

// NextBackOff returns the wait before the next try.
func (b *linearBackOff) NextBackOff() time.Duration {
	d := b.next
	b.next = min(b.next+b.step, b.max)
	return d
}

// Reset starts the schedule again.
func (b *linearBackOff) Reset() { b.next = b.initial }

// newTwitterExponential returns an exponential schedule without jitter that never gives up:
// Twitter documents exact waits, a single worker has no thundering herd to spread, and a
// service must keep trying however long the outage.
func newTwitterExponential(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(max),
		backoff.WithRandomizationFactor(0),
		backoff.WithMaxElapsedTime(0),
	)
	b.Reset()
	return b
}

// EndKind says how a connection attempt ended.
type EndKind int

const (
	// EndStopped: the source's context ended; nothing is retried.
	EndStopped EndKind = iota
	// EndNetwork: no HTTP response (refused, reset, TLS, or no headers within the stall timeout).
	EndNetwork
	// EndHTTP: a response other than 2xx.
	EndHTTP
	// EndDropped: a 2xx response whose body then ended (EOF, reset or stall).
	EndDropped
)

// End is the account of one connection attempt.
type End struct {
	Kind EndKind
	// Status is the HTTP status for EndHTTP.
	Status int
	// Err is the network or body error, if any. It never holds a credential: request URLs carry
	// only the filter, and the Authorization header is not part of any error.
	Err error
	// Stalled is set when the stall watchdog cut the connection.
	Stalled bool
	// Lines counts the complete records the connection delivered.
	Lines int64
	// Header and Body (at most maxErrorBody bytes) of a non-2xx answer, for the source to
	// classify (a rate-limit reset, an API error code).
	Header http.Header
	Body   []byte
	// Phase names the request that ended the attempt ("stream", or "rules" for X's rule sync).
	Phase string
}

// policy decides the wait after each connection ends, following Twitter's rules. It
// holds one schedule per class of failure; all belong to the supervisor goroutine.
type policy struct {
	stallTimeout time.Duration
	// dropped: after an established connection drops, reconnect at once, then slow down
	// linearly if the reconnects keep failing.
	dropped *linearBackOff
	network *linearBackOff
	http    backoff.BackOff
	rate    backoff.BackOff
}

func newPolicy(stallTimeout time.Duration) *policy {
	return &policy{
		stallTimeout: stallTimeout,
		dropped:      newLinearBackOff(0, networkStep, networkMax),
		network:      newLinearBackOff(networkStep, networkStep, networkMax),
		http:         newTwitterExponential(httpInitial, httpMax),
		rate:         newTwitterExponential(rateInitial, rateMax),
	}
}

// next returns the wait before the next attempt, the state to show meanwhile, and the reason
// for the status page.
func (p *policy) next(end End) (wait time.Duration, state stream.State, reason string) {
	switch end.Kind {
	case EndStopped:
		return 0, stream.StateStopped, ""
	case EndNetwork:
		wait = p.network.NextBackOff()
		if end.Stalled {
			return wait, stream.StateStalled, "stalled: no response for " + formatSeconds(p.stallTimeout)
		}
		return wait, stream.StateBackoff, "network error: " + DescribeNetErr(end.Err)
	case EndHTTP:
		reason = statusReason(end.Status)
		switch end.Status {
		case http.StatusTooManyRequests, 420:
			return p.rate.NextBackOff(), stream.StateBackoff, reason
		case http.StatusUnauthorized, http.StatusForbidden:
			// Retrying at all (rather than giving up) lets a rotated secret or a fixed clock
			// recover without a restart; the HTTP schedule keeps it from hammering Twitter.
			return p.http.NextBackOff(), stream.StateRejected, reason
		}
		return p.http.NextBackOff(), stream.StateBackoff, reason
	}
	// EndDropped: the connection was established, so the HTTP schedules start again.
	p.http.Reset()
	p.rate.Reset()
	if end.Lines > 0 {
		// It delivered data: whatever failed before is over, and this drop is the first.
		p.network.Reset()
		p.dropped.Reset()
	}
	if end.Stalled {
		// A stall is a TCP/IP-level failure (the connection went silent), so it takes the
		// linear network schedule, which starts at 250 ms rather than at once. The source
		// closed this connection itself; the pause also lets the server see that close before
		// the next connection arrives, so that not even the server counts two at once.
		return p.network.NextBackOff(), stream.StateStalled, "stalled: no data for " + formatSeconds(p.stallTimeout)
	}
	wait = p.dropped.NextBackOff()
	switch {
	case end.Err != nil:
		return wait, stream.StateBackoff, "connection lost: " + DescribeNetErr(end.Err)
	case end.Lines == 0:
		return wait, stream.StateBackoff, "connection closed before any data"
	}
	return wait, stream.StateBackoff, "connection closed by server"
}

// statusReason is the status page's wording for a non-200 response.
func statusReason(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "credentials rejected (401)"
	case http.StatusForbidden:
		return "forbidden (403)"
	case 420, http.StatusTooManyRequests:
		return fmt.Sprintf("rate limited (%d)", status)
	case http.StatusServiceUnavailable:
		return "service unavailable (503)"
	}
	return fmt.Sprintf("http error (%d)", status)
}

// formatSeconds prints whole seconds as "90s" rather than Duration's "1m30s", to match how
// STALL_TIMEOUT is usually written.
func formatSeconds(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// waitOrDone waits d using after (time.After unless a test injects a clock), and reports false if
// ctx ended first.
func waitOrDone(ctx context.Context, after func(time.Duration) <-chan time.Time, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-after(d):
		return ctx.Err() == nil
	}
}
