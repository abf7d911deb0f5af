// Command firehose is the stream sender of the end-to-end benchmarks (bench/e2e, bench/run.sh).
// It serves Twitter's v1.1 POST /1.1/statuses/filter.json as fast as the client reads: no rate
// limit, every line written into one large buffered writer that goes to the socket only when it
// is full (and once at the end). It checks each request's OAuth 1.0a HMAC-SHA1 signature with the
// verifier of package twittersim, against the four credentials in CONSUMERKEY,
// CONSUMERSECRETKEY, ACCESSTOKEN and ACCESSTOKENSECRET, so the client under test pays for a real
// signed connection and a wrong credential gets Twitter's 401.
//
// The tweets are the 100 real v1.1 tweets of a search result ({"statuses":[...]}, by default
// ../shared/testdata/twitter.json), re-serialised compactly one per line with "\r\n", in order
// and in a loop. Every line gets its own id and id_str (-id-base plus the line's index), so that
// every copy is a distinct tweet with a distinct DynamoDB key, and created_at is the sender's
// clock when it writes the line, as on a live stream. Exactly one line in -match-every is made to
// match the track term -match-text: its text (and extended_tweet.full_text, and the same fields
// of retweeted_status, when present) is prefixed with a sentence that contains the term, so
// neither truncation nor a retweet hides it. The sender refuses a corpus that already contains
// the term, so the number of matching lines is exact: floor(n / match-every).
//
// It sends exactly -n tweets in all (shared by every connection) and then keep-alive newlines
// only, so the receiver's totals can be checked. -rate paces the tweets (per second) instead of
// sending them as fast as the client reads; -hold keeps them until POST /_bench/start, so that
// the client can be measured once connected and idle; POST /_bench/stop ends the tweets early
// (the lines already taken are still sent), for a burst of a given length. GET /_bench/status
// reports progress as JSON. The first line on stdout is "listening on http://ADDR".
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streammatch/streammatch/twittersim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "firehose:", err)
		os.Exit(2)
	}
}

type options struct {
	addr       string
	corpus     string
	n          int64
	matchEvery int64
	matchText  string
	rate       float64
	hold       bool
	keepAlive  time.Duration
	buffer     int
	idBase     uint64
}

func run() error {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:0", "address to listen on")
	flag.StringVar(&o.corpus, "corpus", "../shared/testdata/twitter.json", "tweets to send: a v1.1 search result {\"statuses\":[...]}")
	flag.Int64Var(&o.n, "n", 100000, "tweets to send in all; then keep-alives only")
	flag.Int64Var(&o.matchEvery, "match-every", 500, "make one line in this many match -match-text (1: every line; 0: none)")
	flag.StringVar(&o.matchText, "match-text", "fargate", "the track term the matching lines contain")
	flag.Float64Var(&o.rate, "rate", 0, "tweets per second (0: as fast as the client reads)")
	flag.BoolVar(&o.hold, "hold", false, "hold the tweets until POST /_bench/start")
	flag.DurationVar(&o.keepAlive, "keepalive", 5*time.Second, "interval of the keep-alive newlines once the tweets are sent (or while held)")
	flag.IntVar(&o.buffer, "buffer", 1<<20, "size of the write buffer in bytes")
	flag.Uint64Var(&o.idBase, "id-base", uint64(time.Now().Unix())<<22, "tweet id of the first line; line i gets id-base+i")
	flag.Parse()
	if o.n < 0 || o.matchEvery < 0 || o.rate < 0 || o.buffer < 4096 {
		return errors.New("-n, -match-every and -rate must not be negative, -buffer at least 4096")
	}
	creds := twittersim.Credentials{
		ConsumerKey: os.Getenv("CONSUMERKEY"), ConsumerSecret: os.Getenv("CONSUMERSECRETKEY"),
		AccessToken: os.Getenv("ACCESSTOKEN"), AccessTokenSecret: os.Getenv("ACCESSTOKENSECRET"),
	}
	// The verifier: a twittersim server that sends nothing. Its ServeHTTP checks the method,
	// the path, the form body, the OAuth signature, the timestamp and nonce, and track, then
	// answers 200 and tries to flush, which the gate below cannot do, so it returns at once.
	sim, err := twittersim.New(twittersim.Config{Credentials: creds, Rate: -1, KeepAlive: time.Hour})
	if err != nil {
		return err
	}
	// With no tweets to send (a start-up measurement) the corpus is not needed.
	var plain, matched []template
	if o.n > 0 {
		if plain, matched, err = loadTemplates(o.corpus, o.matchText); err != nil {
			return err
		}
	}
	s := &sender{opts: o, sim: sim, plain: plain, matched: matched, start: make(chan struct{})}
	s.limit.Store(o.n)
	if !o.hold {
		close(s.start)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(twittersim.FilterPath, s.serveFilter)
	mux.HandleFunc("POST /_bench/start", func(w http.ResponseWriter, _ *http.Request) {
		s.startOnce.Do(func() {
			if o.hold {
				close(s.start)
			}
		})
		w.WriteHeader(http.StatusNoContent)
	})
	// stop ends the tweets where they are: the lines already taken are still sent, then only
	// keep-alives. The status's n becomes the number of lines sent in all.
	mux.HandleFunc("POST /_bench/stop", func(w http.ResponseWriter, _ *http.Request) {
		s.limit.Store(min(s.limit.Load(), s.next.Load()))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_bench/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.status())
	})
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

// template is one tweet serialised with holes for created_at, id and id_str (in that order:
// json.Marshal sorts the keys of a map).
type template struct{ beforeCreated, beforeID, beforeIDStr, rest []byte }

const (
	holeCreated = "@@CREATED_AT@@"
	holeID      = "918273645546372819"
	holeIDStr   = "@@ID_STR@@"
)

// loadTemplates reads the corpus and returns the templates of its tweets as they are and as
// made to match term.
func loadTemplates(path, term string) (plain, matched []template, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var doc struct {
		Statuses []json.RawMessage `json:"statuses"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Statuses) == 0 {
		return nil, nil, fmt.Errorf("%s: no statuses", path)
	}
	if term == "" || bytes.Contains(bytes.ToLower(data), bytes.ToLower([]byte(term))) {
		return nil, nil, fmt.Errorf("%s already contains %q (or it is empty): the matched count would not be exact", path, term)
	}
	sentence := "[streammatch bench] this tweet is about " + term + " | "
	for i, raw := range doc.Statuses {
		var tw map[string]json.RawMessage
		if err := json.Unmarshal(raw, &tw); err != nil {
			return nil, nil, fmt.Errorf("%s: status %d: %w", path, i, err)
		}
		if _, ok := tw["user"]; !ok {
			return nil, nil, fmt.Errorf("%s: status %d is not a tweet", path, i)
		}
		p, err := makeTemplate(tw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: status %d: %w", path, i, err)
		}
		if err := prefixTexts(tw, sentence); err != nil {
			return nil, nil, fmt.Errorf("%s: status %d: %w", path, i, err)
		}
		if rs, ok := tw["retweeted_status"]; ok && string(rs) != "null" {
			var orig map[string]json.RawMessage
			if err := json.Unmarshal(rs, &orig); err != nil {
				return nil, nil, fmt.Errorf("%s: status %d: retweeted_status: %w", path, i, err)
			}
			if err := prefixTexts(orig, sentence); err != nil {
				return nil, nil, err
			}
			if tw["retweeted_status"], err = json.Marshal(orig); err != nil {
				return nil, nil, err
			}
		}
		m, err := makeTemplate(tw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: status %d: %w", path, i, err)
		}
		plain, matched = append(plain, p), append(matched, m)
	}
	return plain, matched, nil
}

// prefixTexts prefixes text and extended_tweet.full_text, when present, with sentence.
func prefixTexts(tw map[string]json.RawMessage, sentence string) error {
	prefix := func(raw json.RawMessage) (json.RawMessage, error) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return json.Marshal(sentence + s)
	}
	var err error
	if raw, ok := tw["text"]; ok {
		if tw["text"], err = prefix(raw); err != nil {
			return fmt.Errorf("text: %w", err)
		}
	}
	if raw, ok := tw["extended_tweet"]; ok && string(raw) != "null" {
		var ext map[string]json.RawMessage
		if err := json.Unmarshal(raw, &ext); err != nil {
			return fmt.Errorf("extended_tweet: %w", err)
		}
		if ft, ok := ext["full_text"]; ok {
			if ext["full_text"], err = prefix(ft); err != nil {
				return fmt.Errorf("extended_tweet.full_text: %w", err)
			}
		}
		if tw["extended_tweet"], err = json.Marshal(ext); err != nil {
			return err
		}
	}
	return nil
}

func makeTemplate(tw map[string]json.RawMessage) (template, error) {
	c := make(map[string]json.RawMessage, len(tw))
	for k, v := range tw {
		c[k] = v
	}
	c["created_at"] = json.RawMessage(`"` + holeCreated + `"`)
	c["id"] = json.RawMessage(holeID)
	c["id_str"] = json.RawMessage(`"` + holeIDStr + `"`)
	line, err := json.Marshal(c)
	if err != nil {
		return template{}, err
	}
	var parts [4][]byte
	rest := line
	for i, hole := range []string{holeCreated, holeID, holeIDStr} {
		if bytes.Count(line, []byte(hole)) != 1 {
			return template{}, fmt.Errorf("the placeholder %s occurs %d times", hole, bytes.Count(line, []byte(hole)))
		}
		before, after, ok := bytes.Cut(rest, []byte(hole))
		if !ok {
			return template{}, fmt.Errorf("the placeholders are out of order")
		}
		parts[i], rest = before, after
	}
	parts[3] = rest
	return template{parts[0], parts[1], parts[2], parts[3]}, nil
}

type sender struct {
	opts           options
	sim            *twittersim.Server
	plain, matched []template

	start     chan struct{}
	startOnce sync.Once

	next        atomic.Int64 // index of the next line to send, shared by all connections
	limit       atomic.Int64 // lines to send in all: -n, or fewer after POST /_bench/stop
	written     atomic.Int64 // lines handed to a connection's writer
	bytes       atomic.Int64 // their bytes
	flushed     atomic.Int64 // lines known to be on the socket
	connections atomic.Int64
	connects    atomic.Int64
	rejected    atomic.Int64
	firstByte   atomic.Int64 // unix nanoseconds of the first tweet's write
	doneAt      atomic.Int64 // unix nanoseconds of the last tweet's flush
}

type status struct {
	Connections  int64   `json:"connections"`
	Connects     int64   `json:"connects"`
	Rejected     int64   `json:"rejected"`
	Unauthorized int64   `json:"unauthorized"`
	N            int64   `json:"n"`
	Written      int64   `json:"written"`
	Flushed      int64   `json:"flushed"`
	MatchedSent  int64   `json:"matched_sent"`
	Bytes        int64   `json:"bytes"`
	Done         bool    `json:"done"`
	SendSeconds  float64 `json:"send_seconds"`
	MatchEvery   int64   `json:"match_every"`
	CorpusTweets int     `json:"corpus_tweets"`
}

func (s *sender) status() status {
	st := status{
		Connections: s.connections.Load(), Connects: s.connects.Load(), Rejected: s.rejected.Load(),
		Unauthorized: s.sim.Stats().Unauthorized, N: s.limit.Load(), Written: s.written.Load(),
		Flushed: s.flushed.Load(), Bytes: s.bytes.Load(), MatchEvery: s.opts.matchEvery, CorpusTweets: len(s.plain),
	}
	if s.opts.matchEvery > 0 {
		st.MatchedSent = st.Written / s.opts.matchEvery
	}
	if d := s.doneAt.Load(); d != 0 {
		st.Done = true
		st.SendSeconds = float64(d-s.firstByte.Load()) / 1e9
	}
	return st
}

// gate is the ResponseWriter the verifier answers into. It cannot flush, so a twittersim stream
// that was accepted ends right after its 200.
type gate struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (g *gate) Header() http.Header { return g.header }
func (g *gate) WriteHeader(code int) {
	if g.status == 0 {
		g.status = code
	}
}
func (g *gate) Write(p []byte) (int, error) {
	if g.status == 0 {
		g.status = http.StatusOK
	}
	return g.body.Write(p)
}

func (s *sender) serveFilter(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	check := r.Clone(r.Context())
	check.Body = io.NopCloser(bytes.NewReader(body))
	g := &gate{header: http.Header{}}
	s.sim.ServeHTTP(g, check)
	if g.status != http.StatusOK {
		s.rejected.Add(1)
		for k, v := range g.header {
			w.Header()[k] = v
		}
		w.WriteHeader(g.status)
		_, _ = w.Write(g.body.Bytes())
		return
	}
	s.connects.Add(1)
	s.connections.Add(1)
	defer s.connections.Add(-1)

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	ctx := r.Context()
	keepAlive := func() bool {
		if _, err := io.WriteString(w, "\r\n"); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	ticker := time.NewTicker(s.opts.keepAlive)
	defer ticker.Stop()
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			return
		case <-s.start:
			waiting = false
		case <-ticker.C:
			if !keepAlive() {
				return
			}
		}
	}
	bw := bufio.NewWriterSize(w, s.opts.buffer)
	if err := s.send(bw, rc); err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if !keepAlive() {
				return
			}
		}
	}
}

// send writes this connection's share of the n tweets: as fast as the client reads, flushing
// only when the buffer is full and at the end, or paced at -rate with a flush every tick.
func (s *sender) send(bw *bufio.Writer, rc *http.ResponseController) error {
	var clock lineClock
	write := func() (bool, error) {
		i := s.next.Add(1) - 1
		if i >= s.limit.Load() {
			return false, nil
		}
		if i == 0 {
			s.firstByte.Store(time.Now().UnixNano())
		}
		b := s.appendLine(bw.AvailableBuffer(), i, clock.now())
		if _, err := bw.Write(b); err != nil {
			return false, err
		}
		s.written.Add(1)
		s.bytes.Add(int64(len(b)))
		return true, nil
	}
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		s.flushed.Store(s.written.Load())
		return nil
	}
	if s.opts.rate <= 0 {
		for {
			more, err := write()
			if err != nil {
				return err
			}
			if !more {
				break
			}
		}
	} else {
		const tick = 5 * time.Millisecond
		t := time.NewTicker(tick)
		defer t.Stop()
		begin, sent := time.Now(), int64(0)
	paced:
		for range t.C {
			due := int64(time.Since(begin).Seconds()*s.opts.rate) - sent
			for ; due > 0; due-- {
				more, err := write()
				if err != nil {
					return err
				}
				if !more {
					break paced
				}
				sent++
			}
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if n := s.limit.Load(); s.next.Load() >= n && s.written.Load() >= n {
		s.doneAt.CompareAndSwap(0, time.Now().UnixNano())
	}
	return nil
}

func (s *sender) appendLine(b []byte, i int64, created []byte) []byte {
	var t *template
	if k := s.opts.matchEvery; k > 0 && i%k == k-1 {
		t = &s.matched[(i/k)%int64(len(s.matched))]
	} else {
		t = &s.plain[i%int64(len(s.plain))]
	}
	id := s.opts.idBase + uint64(i)
	b = append(b, t.beforeCreated...)
	b = append(b, created...)
	b = append(b, t.beforeID...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, t.beforeIDStr...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, t.rest...)
	return append(b, '\r', '\n')
}

// lineClock formats the wall clock as Twitter's created_at ("Mon Jan 02 15:04:05 +0000 2006",
// time.RubyDate in UTC), once a second.
type lineClock struct {
	sec  int64
	text []byte
}

func (c *lineClock) now() []byte {
	t := time.Now().UTC()
	if t.Unix() != c.sec || c.text == nil {
		c.sec = t.Unix()
		c.text = []byte(t.Format(time.RubyDate))
	}
	return c.text
}
