// Package twittersim simulates Twitter's v1.1 statuses/filter streaming endpoint, which was
// retired in 2023. It is a faithful protocol peer for the stream source and its tests, and
// lets the whole service run on a laptop without a Twitter account: it verifies OAuth 1.0a
// signatures from scratch, honours track with the service's own matcher, frames messages with
// "\r\n" in a chunked response, sends keep-alives, mixes in delete and limit notices, and can be
// told to fail in the ways the real stream failed (error statuses, dropped connections, torn
// lines, stalls, malformed lines).
package twittersim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streammatch/streammatch/stream"
)

// FilterPath is the endpoint's path, as go-twitter requests it.
const FilterPath = "/1.1/statuses/filter.json"

// Defaults applied by New to zero Config fields.
const (
	DefaultRate      = 5.0
	DefaultKeepAlive = 30 * time.Second
)

// maxFormBody bounds a form body. Twitter's own limit was far lower; this only stops a runaway
// client from filling memory.
const maxFormBody = 1 << 20

// Config configures a Server. The zero value (apart from Credentials) is a usable synthetic
// stream at DefaultRate with a keep-alive every 30 s.
type Config struct {
	// Credentials are the only ones the server accepts.
	Credentials Credentials
	// Rate is the firehose rate in candidate messages per second, before track filtering:
	// synthetic tweets are mostly made to match, corpus tweets are filtered as they are. Zero
	// means DefaultRate; a negative rate sends no tweets and no notices, only keep-alives and
	// lines given to Send. A rate above 1000/s is delivered in bursts, once a millisecond.
	Rate float64
	// Corpus is a file replayed instead of synthetic tweets: a v1.1 search result
	// ({"statuses":[...]}), a JSON array or NDJSON. It is one timeline shared by all
	// connections: a reconnecting client resumes where the stream was, as on a live stream.
	Corpus string
	// Loop replays the corpus from the start when it ends; otherwise the stream goes quiet
	// (keep-alives only) once the corpus is exhausted.
	Loop bool
	// KeepAlive is the interval of the blank keep-alive lines. Zero means DefaultKeepAlive.
	KeepAlive time.Duration
	// NoticeEvery, when positive, adds a notice after every NoticeEvery tweets, alternating a
	// delete notice (for a tweet sent earlier) and a limit notice.
	NoticeEvery int
	// Seed makes the synthetic stream deterministic.
	Seed int64
	// Now is the clock for OAuth timestamps and created_at. Nil means time.Now. Pacing and
	// keep-alives use real timers.
	Now func() time.Time
	// Logger receives connection events. Nil discards them. Credentials are never logged.
	Logger *slog.Logger
	// Faults are armed from the start, as if set with SetFaults.
	Faults Faults
}

// Faults are the failures the server injects. The zero value injects nothing. Counts of
// messages include tweets and notices, not keep-alives or lines given to Send.
type Faults struct {
	// FailStatus is answered (with a Twitter-like JSON error body) to the next FailTimes
	// requests to the endpoint, before authentication.
	FailStatus int
	FailTimes  int
	// Disconnect drops every connection after DisconnectAfter messages, counted from when the
	// fault was armed or the connection opened, whichever is later. The drop is abrupt (no
	// terminating chunk), like a reset TCP connection. With MidLine, the first half of the next
	// message is written before the drop. The drop panics with http.ErrAbortHandler, which
	// net/http's server handles quietly; code calling ServeHTTP directly must recover it.
	Disconnect      bool
	DisconnectAfter int
	MidLine         bool
	// Stall makes every connection go silent after StallAfter messages (0: right after the
	// response headers): no messages and no keep-alives, while the connection stays open. A
	// stalled connection stays stalled until the client hangs up, even if the fault is
	// cleared. Lines given to Send still get through.
	Stall      bool
	StallAfter int
}

// Stats counts what the server has seen and sent since New.
type Stats struct {
	// Connections is the number of open streams; MaxConnections the most ever open at once
	// (Twitter allowed one per credentials).
	Connections    int
	MaxConnections int
	// Requests counts every request; Connects those answered 200.
	Requests int64
	Connects int64
	// Unauthorized counts 401 answers; Failed the answers of FailStatus faults; Rejected the
	// other error answers (400, 404, 405, 406, 413, 503 after Close).
	Unauthorized int64
	Failed       int64
	Rejected     int64
	// Messages counts tweets written, Notices delete and limit notices (and corpus lines that
	// are not tweets), KeepAlives blank lines, Injected lines written by Send (per connection).
	Messages   int64
	Notices    int64
	KeepAlives int64
	Injected   int64
	// Disconnects counts connections dropped by the Disconnect fault; Stalls those stalled.
	Disconnects int64
	Stalls      int64
	// LastTrack is the track value of the last request to the endpoint (not a secret).
	LastTrack string
}

// Server is the simulated endpoint. It is an http.Handler; serve it with httptest.NewServer or
// an http.Server. All methods are safe for concurrent use.
type Server struct {
	creds     Credentials
	rate      float64
	keepAlive time.Duration
	notice    int
	loop      bool
	logger    *slog.Logger
	auth      *verifier
	corpus    []corpusItem

	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	faults   Faults
	faultGen uint64
	conns    map[*conn]struct{}
	nextConn int64
	gen      *generator
	cursor   int
	stats    Stats
}

// New builds a Server. It loads the corpus, if any, and reports a problem with it naming the
// file and what is wrong.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if math.IsNaN(cfg.Rate) {
		return nil, errors.New("twittersim: rate is NaN; want a number of messages per second")
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.NoticeEvery < 0 {
		return nil, fmt.Errorf("twittersim: notice every %d messages; want 0 (none) or more", cfg.NoticeEvery)
	}
	c := cfg.Credentials
	if c.ConsumerKey == "" || c.ConsumerSecret == "" || c.AccessToken == "" || c.AccessTokenSecret == "" {
		return nil, errors.New("twittersim: all four credentials are required")
	}
	s := &Server{
		creds:     c,
		rate:      cfg.Rate,
		keepAlive: cfg.KeepAlive,
		notice:    cfg.NoticeEvery,
		loop:      cfg.Loop,
		logger:    cfg.Logger,
		auth:      newVerifier(c, cfg.Now),
		done:      make(chan struct{}),
		faults:    cfg.Faults,
		conns:     make(map[*conn]struct{}),
		gen:       newGenerator(cfg.Seed, cfg.Now),
	}
	if cfg.Corpus != "" {
		items, err := loadCorpus(cfg.Corpus)
		if err != nil {
			return nil, err
		}
		s.corpus = items
	}
	return s, nil
}

// SetFaults replaces the armed faults. Message counts for Disconnect and Stall restart from now.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.faultGen++
}

// Faults returns the armed faults (FailTimes counts down as requests are failed).
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

func (s *Server) updateFaults(f func(*Faults)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.faults)
	s.faultGen++
}

// FailNext answers the next times requests to the endpoint with status.
func (s *Server) FailNext(status, times int) {
	s.updateFaults(func(f *Faults) { f.FailStatus, f.FailTimes = status, times })
}

// DisconnectAfter drops connections after n more messages; with midLine half of the next
// message is written first.
func (s *Server) DisconnectAfter(n int, midLine bool) {
	s.updateFaults(func(f *Faults) { f.Disconnect, f.DisconnectAfter, f.MidLine = true, n, midLine })
}

// Stall makes connections go silent after n more messages (0: at once, or right after the
// headers for a new connection).
func (s *Server) Stall(afterMessages int) {
	s.updateFaults(func(f *Faults) { f.Stall, f.StallAfter = true, afterMessages })
}

// ClearFaults disarms every fault. Connections already stalled stay stalled.
func (s *Server) ClearFaults() { s.SetFaults(Faults{}) }

// Send writes line, followed by "\r\n", to every open stream, exactly as given: invalid JSON,
// invalid UTF-8 or a megabyte line are all fine. It returns once every stream has written and
// flushed it (or ended), and reports how many streams wrote it.
func (s *Server) Send(line []byte) int {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	sent := 0
	for _, c := range conns {
		req := &injection{line: line, done: make(chan bool, 1)}
		select {
		case c.inject <- req:
		case <-c.ended:
			continue
		case <-s.done:
			return sent
		}
		if <-req.done {
			sent++
		}
	}
	return sent
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close ends every stream promptly and makes later requests fail with 503, so that an
// httptest.Server (whose Close waits for handlers) can be closed right after.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		// A stream blocked writing to a client that does not read would not see done: the
		// past deadline makes that write fail at once.
		_ = c.rc.SetWriteDeadline(time.Now())
	}
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

// ServeHTTP answers statuses/filter requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.Requests++ })
	select {
	case <-s.done:
		s.reject(w, http.StatusServiceUnavailable, 130, "Over capacity")
		return
	default:
	}
	if r.URL.Path != FilterPath {
		s.reject(w, http.StatusNotFound, 34, "Sorry, that page does not exist")
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		s.reject(w, http.StatusMethodNotAllowed, 86, "This method requires a GET or POST")
		return
	}
	body, err := formBody(w, r)
	if err != nil {
		s.reject(w, http.StatusBadRequest, 44, "Could not read the request body")
		return
	}
	track := r.URL.Query().Get("track")
	if body.Has("track") {
		track = body.Get("track")
	}
	s.count(func(st *Stats) { st.LastTrack = track })

	if status, ok := s.takeFailure(); ok {
		s.count(func(st *Stats) { st.Failed++ })
		writeError(w, status, 0, http.StatusText(status))
		return
	}
	if err := s.auth.verify(r, body); err != nil {
		s.count(func(st *Stats) { st.Unauthorized++ })
		var ae *authError
		reason := "unknown"
		if errors.As(err, &ae) {
			reason = ae.reason
		}
		s.logger.Info("twittersim rejected credentials", "reason", reason)
		writeError(w, http.StatusUnauthorized, 32, "Could not authenticate you.")
		return
	}
	if n := len(strings.Split(track, ",")); n > stream.MaxTrackTerms {
		s.reject(w, http.StatusRequestEntityTooLarge, 0,
			fmt.Sprintf("Too many track terms: %d, at most %d", n, stream.MaxTrackTerms))
		return
	}
	terms, err := stream.ParseTrack(track)
	if err != nil {
		s.reject(w, http.StatusNotAcceptable, 0, "Parameter track is not valid: "+err.Error())
		return
	}
	matcher, err := stream.NewMatcher(terms)
	if err != nil {
		s.reject(w, http.StatusNotAcceptable, 0, "Parameter track is not valid: "+err.Error())
		return
	}
	s.serveStream(w, r, matcher, phrases(terms))
}

// formBody reads an application/x-www-form-urlencoded body, the only kind OAuth signs.
func formBody(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Body == nil {
		return url.Values{}, nil
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return url.Values{}, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
	if err != nil {
		return nil, err
	}
	return url.ParseQuery(string(b))
}

// phrases splits track phrases into their AND-ed terms, for the generator.
func phrases(terms []string) [][]string {
	out := make([][]string, 0, len(terms))
	for _, t := range terms {
		if f := strings.Fields(t); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

func (s *Server) takeFailure() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.FailTimes <= 0 || s.faults.FailStatus == 0 {
		return 0, false
	}
	s.faults.FailTimes--
	return s.faults.FailStatus, true
}

func (s *Server) reject(w http.ResponseWriter, status, code int, msg string) {
	s.count(func(st *Stats) { st.Rejected++ })
	writeError(w, status, code, msg)
}

// writeError writes Twitter's JSON error shape. msg is always a fixed text or a track
// problem: never anything from the Authorization header.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	type twitterError struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Errors []twitterError `json:"errors"`
	}{[]twitterError{{code, msg}}})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
