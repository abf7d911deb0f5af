package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dghubble/go-twitter/twitter"
	"github.com/dghubble/oauth1"
)

// Defaults for TwitterConfig.
const (
	// DefaultStallTimeout is Twitter's: no byte, not even a keep-alive newline (sent every
	// ~30 s), for 90 s means the connection is dead.
	DefaultStallTimeout = 90 * time.Second
	// DefaultMaxLine bounds one stream message. A v1.1 tweet is 2-7 KB, and a retweet of a
	// quoted extended tweet with all its entities stays well under 100 KB; 512 KiB leaves a
	// wide margin while capping what one hostile line can make the process hold.
	DefaultMaxLine = 512 << 10
	// maxTrackTerms and maxTrackBytes are Twitter's limits on the track parameter.
	maxTrackTerms = 400
	maxTrackBytes = 60
)

// TwitterSourceName is the Twitter source's Name, and the Source of its messages.
const TwitterSourceName = "twitter"

// Credentials are the four OAuth 1.0a values of a Twitter app in user context. Every way of
// printing them (fmt verbs, slog, JSON) gives a redacted form: they come from Secrets Manager
// and must not reach a log line, an error or a page.
type Credentials struct {
	ConsumerKey       string
	ConsumerSecret    string
	AccessToken       string
	AccessTokenSecret string
}

const redactedCredentials = "stream.Credentials{REDACTED}"

// String returns a redacted form.
func (Credentials) String() string { return redactedCredentials }

// GoString returns a redacted form, for %#v.
func (Credentials) GoString() string { return redactedCredentials }

// Format prints the redacted form for every verb, so that %x or %d cannot print the fields.
func (Credentials) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedCredentials) }

// LogValue keeps slog from printing the fields.
func (Credentials) LogValue() slog.Value { return slog.StringValue(redactedCredentials) }

// MarshalJSON keeps encoding/json from printing the fields.
func (Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(redactedCredentials) }

// TwitterConfig configures a TwitterSource.
type TwitterConfig struct {
	// BaseURL is where statuses/filter lives: requests go to BaseURL + /1.1/statuses/filter.json.
	// Twitter's is https://stream.twitter.com; tests and the local run use a simulator.
	BaseURL     string
	Credentials Credentials
	// Track holds the track phrases (comma is OR between them, space is AND within one).
	Track []string
	// StallTimeout is how long a read may wait for a byte before the connection counts as
	// stalled and is replaced. Zero means DefaultStallTimeout.
	StallTimeout time.Duration
	// MaxLine is the longest message accepted, in bytes; longer lines are skipped as
	// "line_too_long". Zero means DefaultMaxLine.
	MaxLine int
	// Logger receives one line per state change. Nil discards.
	Logger *slog.Logger
	// After is the clock for reconnect waits; nil means time.After. Tests inject one to
	// assert the schedule without sleeping.
	After func(time.Duration) <-chan time.Time
	// Transport carries the requests once signed; nil means a default without keep-alives.
	Transport http.RoundTripper
}

// TwitterSource reads Twitter v1.1 statuses/filter through go-twitter's Streams.Filter, signed
// with OAuth 1.0a. go-twitter reconnects by itself only on 503, 420 and 429, with sleeps that
// cannot be interrupted or observed, and stops silently on anything else. TwitterSource
// therefore lets go-twitter make exactly one request per attempt (see connObserver) and runs
// the reconnect loop itself, by Twitter's rules, with the cause of every end on Status.
//
// It deliberately holds no Credentials value: they live only inside the oauth1 signer, so that
// printing a TwitterSource with %v cannot reveal them.
type TwitterSource struct {
	client       *twitter.Client
	observer     *connObserver
	transport    http.RoundTripper
	track        []string
	stallTimeout time.Duration
	logger       *slog.Logger
	after        func(time.Duration) <-chan time.Time

	running atomic.Bool

	mu     sync.Mutex
	status SourceStatus
}

var _ Source = (*TwitterSource)(nil)

// NewTwitterSource checks cfg and builds the client. Every problem is reported at once, each
// naming its field and never its value. Nothing connects until Run.
func NewTwitterSource(cfg TwitterConfig) (*TwitterSource, error) {
	var problems []error
	base, err := parseBaseURL("TwitterConfig.BaseURL", "https://stream.twitter.com", cfg.BaseURL)
	if err != nil {
		problems = append(problems, err)
	}
	for _, f := range []struct{ name, value string }{
		{"ConsumerKey", cfg.Credentials.ConsumerKey},
		{"ConsumerSecret", cfg.Credentials.ConsumerSecret},
		{"AccessToken", cfg.Credentials.AccessToken},
		{"AccessTokenSecret", cfg.Credentials.AccessTokenSecret},
	} {
		if strings.TrimSpace(f.value) == "" {
			problems = append(problems, fmt.Errorf("TwitterConfig.Credentials.%s is empty", f.name))
		}
	}
	problems = append(problems, checkTrack(cfg.Track)...)
	if cfg.StallTimeout < 0 {
		problems = append(problems, errors.New("TwitterConfig.StallTimeout is negative; want a duration like 90s, or 0 for the default"))
	}
	if cfg.MaxLine < 0 {
		problems = append(problems, errors.New("TwitterConfig.MaxLine is negative; want a size in bytes, or 0 for the default"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("twitter source: %w", errors.Join(problems...))
	}

	stall := orDefault(cfg.StallTimeout, DefaultStallTimeout)
	transport := cfg.Transport
	if transport == nil {
		transport = newStreamTransport(stall)
	}
	observer := &connObserver{next: transport, stallTimeout: stall, maxLine: orDefault(cfg.MaxLine, DefaultMaxLine)}
	// oauth1 takes its base transport from the context it is built with; the signer then sits
	// above the observer and below the rewrite, so it signs the URL the server will see.
	signerCtx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: observer})
	signed := oauth1.NewConfig(cfg.Credentials.ConsumerKey, cfg.Credentials.ConsumerSecret).
		Client(signerCtx, oauth1.NewToken(cfg.Credentials.AccessToken, cfg.Credentials.AccessTokenSecret))
	client := twitter.NewClient(&http.Client{Transport: &rewriteTransport{base: base, next: signed.Transport}})

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	after := cfg.After
	if after == nil {
		after = time.After
	}
	s := &TwitterSource{
		client:       client,
		observer:     observer,
		transport:    transport,
		track:        append([]string(nil), cfg.Track...),
		stallTimeout: stall,
		logger:       logger.With("source", TwitterSourceName),
		after:        after,
	}
	s.status = SourceStatus{Source: TwitterSourceName, State: StateStopped, Since: time.Now()}
	return s, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// parseBaseURL checks a source's base URL. field names the setting in errors (e.g.
// "TwitterConfig.BaseURL") and example is a good value to suggest; the URL itself is not quoted,
// since user info in it would be a credential.
func parseBaseURL(field, example, raw string) (*url.URL, error) {
	want := "want an http(s) URL such as " + example
	if raw == "" {
		return nil, errors.New(field + " is empty; " + want)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return nil, errors.New(field + " is not a valid URL; " + want)
	case u.User != nil:
		// User info would be a credential in a URL, which ends up in error strings.
		return nil, errors.New(field + " must not contain user info")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New(field + " must not have a query or fragment; " + want)
	}
	return u, nil
}

// checkTrack applies Twitter's limits: 1 to 400 phrases, each 1 to 60 bytes. A comma inside a
// phrase would silently split it, since go-twitter joins the phrases with commas.
func checkTrack(track []string) []error {
	if len(track) == 0 {
		return []error{errors.New("TwitterConfig.Track is empty; want at least one phrase")}
	}
	var problems []error
	if len(track) > maxTrackTerms {
		problems = append(problems, fmt.Errorf("TwitterConfig.Track has %d phrases; Twitter allows at most %d", len(track), maxTrackTerms))
	}
	for i, term := range track {
		switch n := len(term); {
		case strings.TrimSpace(term) == "":
			problems = append(problems, fmt.Errorf("TwitterConfig.Track[%d] is empty", i))
		case n > maxTrackBytes:
			problems = append(problems, fmt.Errorf("TwitterConfig.Track[%d] is %d bytes; Twitter allows at most %d", i, n, maxTrackBytes))
		case strings.Contains(term, ","):
			problems = append(problems, fmt.Errorf("TwitterConfig.Track[%d] contains a comma; give each phrase separately", i))
		}
	}
	return problems
}

// Name returns "twitter".
func (s *TwitterSource) Name() string { return TwitterSourceName }

// Status returns a snapshot of the connection state.
func (s *TwitterSource) Status() SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Run connects, emits every record, and reconnects by Twitter's rules until ctx ends; it then
// returns nil once the connection is closed and go-twitter's goroutine has exited. At most one
// connection is open at any time: the next attempt starts only after the previous stream's
// Messages channel has closed, which go-twitter does after it has closed the response body.
func (s *TwitterSource) Run(ctx context.Context, emit func(context.Context, Record)) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("twitter source: Run is already running")
	}
	defer s.running.Store(false)
	if t, ok := s.transport.(interface{ CloseIdleConnections() }); ok {
		defer t.CloseIdleConnections()
	}

	policy := newReconnectPolicy(s.stallTimeout)
	for ctx.Err() == nil {
		end := s.connect(ctx, emit)
		if ctx.Err() != nil {
			break
		}
		wait, state, reason := policy.next(end)
		s.ended(state, reason, wait, end)
		if !waitOrDone(ctx, s.after, wait) {
			break
		}
	}
	s.setState(StateStopped, "", 0)
	s.logger.Info("twitter stream stopped", "state", StateStopped)
	return nil
}

// connect makes one attempt: one go-twitter stream, drained until go-twitter closes it.
func (s *TwitterSource) connect(ctx context.Context, emit func(context.Context, Record)) connEnd {
	s.setState(StateConnecting, "", 0)
	s.logger.Info("twitter stream connecting", "state", StateConnecting, "track_terms", len(s.track))
	sess := newConnSession(ctx, s.connected)
	s.observer.begin(sess)
	defer s.observer.finish()

	stream, err := s.client.Streams.Filter(&twitter.StreamFilterParams{
		Track:         s.track,
		StallWarnings: twitter.Bool(true),
	})
	if err != nil {
		// Only building the request can fail here, and the config was checked; retry it as
		// a network error rather than hot-loop or give up.
		return connEnd{kind: endNetwork, err: err}
	}
	s.drain(ctx, sess, stream, emit)
	close(sess.abandoned)
	// Messages is closed, so go-twitter's goroutine has returned; Stop only releases it. (Stop
	// before that would race with go-twitter's unsynchronised write of its body field.)
	stream.Stop()
	return sess.result()
}

// drain emits every record of one connection, in stream order, until go-twitter closes
// Messages. It does not stop on ctx: the session's request is bound to ctx, so when ctx ends
// the read fails and go-twitter closes Messages promptly, and every line already read is still
// emitted rather than dropped.
func (s *TwitterSource) drain(ctx context.Context, sess *connSession, stream *twitter.Stream, emit func(context.Context, Record)) {
	for {
		select {
		case reason := <-sess.skips:
			emit(ctx, skipRecord(reason))
		case msg, ok := <-stream.Messages:
			if !ok {
				return
			}
			if rec, ok := s.record(msg); ok {
				emit(ctx, rec)
			}
		}
	}
}

// record maps what go-twitter puts on Messages to a Record. ok is false for go-twitter's
// transport errors, which are not stream records: the session has the cause.
func (s *TwitterSource) record(msg any) (rec Record, ok bool) {
	switch m := msg.(type) {
	case *twitter.Tweet:
		message, reason := DecodeTweet(m, TwitterSourceName)
		if reason != "" {
			return skipRecord(reason), true
		}
		return Record{Kind: KindMessage, Message: message}, true
	case *twitter.StatusDeletion:
		return noticeRecord("delete"), true
	case *twitter.StreamLimit:
		rec := noticeRecord("limit")
		if m != nil {
			rec.LimitMissed = max(m.Track, 0)
		}
		return rec, true
	case *twitter.StallWarning:
		if m != nil {
			s.logger.Warn("twitter stall warning", "code", m.Code, "percent_full", m.PercentFull)
		}
		return noticeRecord("warning"), true
	case *twitter.StreamDisconnect:
		if m != nil {
			s.logger.Warn("twitter disconnect notice", "code", m.Code)
		}
		return noticeRecord("disconnect"), true
	case *twitter.StatusWithheld:
		return noticeRecord("status_withheld"), true
	case *twitter.UserWithheld:
		return noticeRecord("user_withheld"), true
	case *twitter.LocationDeletion:
		return noticeRecord("scrub_geo"), true
	case error:
		var ue *url.Error
		if errors.As(m, &ue) {
			return Record{}, false
		}
		return skipRecord(ReasonInvalidJSON), true
	}
	return noticeRecord("other"), true
}

// connected is called by the observer, from go-twitter's goroutine, on HTTP 200.
func (s *TwitterSource) connected() {
	s.mu.Lock()
	s.status.Connects++
	s.mu.Unlock()
	s.setState(StateConnected, "", 0)
	s.logger.Info("twitter stream connected", "state", StateConnected)
}

// ended records and logs why a connection ended and how long the source waits.
func (s *TwitterSource) ended(state State, reason string, wait time.Duration, end connEnd) {
	s.setState(state, reason, wait)
	attrs := []any{"state", state, "reason", reason, "wait", wait.String()}
	if end.status != 0 {
		attrs = append(attrs, "status", end.status)
	}
	if end.twitterCode != 0 {
		attrs = append(attrs, "twitter_code", end.twitterCode)
	}
	if state == StateRejected {
		s.logger.Error("twitter stream rejected", attrs...)
		return
	}
	s.logger.Warn("twitter stream ended", attrs...)
}

func (s *TwitterSource) setState(state State, lastError string, retryIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.State = state
	s.status.Since = time.Now()
	s.status.RetryIn = retryIn
	if lastError != "" {
		s.status.LastError = lastError
	}
}
