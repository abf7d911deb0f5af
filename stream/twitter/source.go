// Package twitter is the Twitter v1.1 statuses/filter source: the blog's stream. It uses
// go-twitter for what go-twitter defines, the request (twitter.StreamFilterParams, encoded by
// go-twitter's own sling builder) and the error body (twitter.APIError), and dghubble/oauth1 to
// sign it, but it frames and decodes the stream itself, once per line: go-twitter's
// Streams.Filter decodes every message twice (into a map to find its type, then into a struct),
// hides why a stream ended, and retries with sleeps that cannot be interrupted or observed.
package twitter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	gotwitter "github.com/dghubble/go-twitter/twitter"
	"github.com/dghubble/oauth1"
	"github.com/dghubble/sling"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/conn"
)

// DefaultStallTimeout is the default of Config.StallTimeout.
const (
	// DefaultStallTimeout is Twitter's: no byte, not even a keep-alive newline (sent every
	// ~30 s), for 90 s means the connection is dead.
	DefaultStallTimeout = 90 * time.Second
)

// SourceName is the Twitter source's Name, and the Source of its messages.
const SourceName = "twitter"

// filterPath is statuses/filter below the base URL, as go-twitter addresses it
// (https://stream.twitter.com/1.1/statuses/filter.json).
const filterPath = "1.1/statuses/"

// Credentials are the four OAuth 1.0a values of a Twitter app in user context. Each is a
// stream.Secret, so no way of printing them reveals a value.
type Credentials struct {
	ConsumerKey       stream.Secret
	ConsumerSecret    stream.Secret
	AccessToken       stream.Secret
	AccessTokenSecret stream.Secret
}

// Config configures a Source.
type Config struct {
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
	// "line_too_long". Zero means conn.DefaultMaxLine.
	MaxLine int
	// Logger receives one line per state change. Nil discards.
	Logger *slog.Logger
	// After is the clock for reconnect waits; nil means time.After.
	After func(time.Duration) <-chan time.Time
	// Transport carries the requests once signed; nil means conn.NewTransport.
	Transport http.RoundTripper
}

// Source reads Twitter v1.1 statuses/filter, signed with OAuth 1.0a, and reconnects by
// Twitter's rules with the cause of every end on Status. Each line is framed and decoded once,
// by DecodeLine.
//
// It holds no Credentials value: they live only inside the oauth1 signer, so that printing a
// Source with %v cannot reveal them.
type Source struct {
	conn    *conn.Stream
	request *sling.Sling
	maxLine int
}

var _ stream.Source = (*Source)(nil)

// NewSource checks cfg and builds the client. Every problem is reported at once, each naming
// its field and never its value. Nothing connects until Run.
func NewSource(cfg Config) (*Source, error) {
	var problems []error
	base, err := conn.ParseBaseURL("TwitterConfig.BaseURL", "https://stream.twitter.com", cfg.BaseURL)
	if err != nil {
		problems = append(problems, err)
	}
	for _, f := range []struct {
		name  string
		value stream.Secret
	}{
		{"ConsumerKey", cfg.Credentials.ConsumerKey},
		{"ConsumerSecret", cfg.Credentials.ConsumerSecret},
		{"AccessToken", cfg.Credentials.AccessToken},
		{"AccessTokenSecret", cfg.Credentials.AccessTokenSecret},
	} {
		if f.value.Empty() {
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

	stall := conn.OrDefault(cfg.StallTimeout, DefaultStallTimeout)
	transport := cfg.Transport
	if transport == nil {
		transport = conn.NewTransport(stall)
	}
	// oauth1 takes its base transport from the context it is built with, and signs the URL the
	// request is sent to, which is the URL the server sees.
	c := cfg.Credentials
	signerCtx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: transport})
	signed := oauth1.NewConfig(string(c.ConsumerKey), string(c.ConsumerSecret)).
		Client(signerCtx, oauth1.NewToken(string(c.AccessToken), string(c.AccessTokenSecret)))

	// go-twitter's own request: POST statuses/filter.json with the parameters in the query.
	params := &gotwitter.StreamFilterParams{
		Track:         append([]string(nil), cfg.Track...),
		StallWarnings: gotwitter.Bool(true),
	}
	root := strings.TrimSuffix(base.String(), "/") + "/"
	request := sling.New().Base(root).Path(filterPath).Post("filter.json").QueryStruct(params)

	return &Source{
		conn: conn.New(conn.Config{
			Name:         SourceName,
			StallTimeout: stall,
			Transport:    signed.Transport,
			Logger:       cfg.Logger,
			After:        cfg.After,
		}),
		request: request,
		maxLine: conn.OrDefault(cfg.MaxLine, conn.DefaultMaxLine),
	}, nil
}

// checkTrack applies Twitter's limits: 1 to 400 phrases, each 1 to 60 bytes. A comma inside a
// phrase would silently split it, since the request joins the phrases with commas.
func checkTrack(track []string) []error {
	if len(track) == 0 {
		return []error{errors.New("TwitterConfig.Track is empty; want at least one phrase")}
	}
	var problems []error
	if len(track) > stream.MaxTrackTerms {
		problems = append(problems, fmt.Errorf("TwitterConfig.Track has %d phrases; Twitter allows at most %d", len(track), stream.MaxTrackTerms))
	}
	for i, term := range track {
		switch n := len(term); {
		case strings.TrimSpace(term) == "":
			problems = append(problems, fmt.Errorf("TwitterConfig.Track[%d] is empty", i))
		case n > stream.MaxTrackTermBytes:
			problems = append(problems, fmt.Errorf("TwitterConfig.Track[%d] is %d bytes; Twitter allows at most %d", i, n, stream.MaxTrackTermBytes))
		case strings.Contains(term, ","):
			problems = append(problems, fmt.Errorf("TwitterConfig.Track[%d] contains a comma; give each phrase separately", i))
		}
	}
	return problems
}

// Name returns "twitter".
func (s *Source) Name() string { return SourceName }

// Status returns a snapshot of the connection state.
func (s *Source) Status() stream.SourceStatus { return s.conn.Status() }

// Run connects, emits every record, and reconnects by Twitter's rules until ctx ends; it then
// returns nil once the connection is closed. At most one connection is open at any time: the
// next attempt starts only after the previous response body has been closed. Every line already
// read when ctx ends is still emitted.
func (s *Source) Run(ctx context.Context, emit func(context.Context, stream.Record)) error {
	return s.conn.Run(ctx, func(ctx context.Context) conn.End {
		req, err := s.request.Request()
		if err != nil {
			// The config was checked, so only a broken base URL could get here; retry it as
			// a network error rather than hot-loop or give up.
			return conn.End{Kind: conn.EndNetwork, Err: err}
		}
		end := s.conn.Do(ctx, req, func(body io.Reader) (int64, error) { return s.read(ctx, body, emit) })
		if end.Kind == conn.EndHTTP {
			if code := apiErrorCode(end.Body); code != 0 {
				s.conn.Logger().Warn("twitter error answer", "status", end.Status, "twitter_code", code)
			}
		}
		return end
	}, nil)
}

// read frames one connection's body and emits a record for every line, in stream order.
func (s *Source) read(ctx context.Context, body io.Reader, emit func(context.Context, stream.Record)) (int64, error) {
	lines := conn.NewLineReader(body, s.maxLine)
	var n int64
	for {
		line, reason, err := lines.Next()
		switch {
		case reason != "":
			emit(ctx, stream.Skip(reason))
		case line != nil:
			n++
			rec := DecodeLine(line, SourceName)
			if rec.Kind == stream.KindNotice && (rec.Notice == "warning" || rec.Notice == "disconnect") {
				s.conn.Logger().Warn("twitter "+rec.Notice+" notice", "notice", rec.Notice)
			}
			emit(ctx, rec)
		}
		if err != nil {
			return n, err
		}
	}
}

// apiErrorCode reads the code from Twitter's error body ({"errors":[{"code":32,...}]}). Only
// the number is kept: the message is server text and is not needed.
func apiErrorCode(body []byte) int {
	var e gotwitter.APIError
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return 0
	}
	return e.Errors[0].Code
}
