package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streammatch/streammatch/stream"
)

// The endpoints the bearer-token simulators serve, as the X and Mastodon sources request them.
const (
	xStreamPath      = "/2/tweets/search/stream"
	xRulesPath       = "/2/tweets/search/stream/rules"
	mastodonPath     = "/api/v1/streaming/public"
	shareNonMatching = 0.2 // posts that carry no FILTER phrase, for the Matcher to drop
)

// bearerSimulator is the stream simulator of the two sources that authenticate with a bearer
// token: X API v2's filtered stream (-source x) and Mastodon's streaming API (-source
// mastodon). It is the smallest server that lets the app run as it runs against the real
// service:
//
//   - every request must carry "Authorization: Bearer TOKEN" with the secret's current value;
//     anything else is answered 401 with the service's error body;
//   - X: the rules endpoint (GET lists, POST {"add": [...]} and {"delete": {"ids": [...]}}) keeps
//     the rules the app syncs, and the stream (GET /2/tweets/search/stream) is NDJSON with
//     "\r\n" after each post and a "\r\n" heartbeat; like X it delivers nothing until a rule
//     exists;
//   - Mastodon: GET /api/v1/streaming/public is server-sent events: "update" events with a
//     Status (HTML content), "delete" events every -notice-every posts, ":thump" heartbeats.
//
// The posts are synthetic, built from -filter's phrases so that most of them match (the rest
// carry none, and the app's Matcher drops them). It does not evaluate X's rule language: the
// app's Matcher decides what is stored, as it does against the real stream. Faults are the
// Twitter simulator's only; /_local/status shows the counters.
type bearerSimulator struct {
	source      string // "x" or "mastodon"
	key         string // the secret variable holding the token
	rate        float64
	keepAlive   time.Duration
	noticeEvery int
	phrases     [][]string // FILTER's phrases, split into words
	ln          net.Listener
	closed      chan struct{}
	closeOnce   sync.Once

	mu     sync.Mutex
	token  string
	rules  []xSimRule
	nextID int64
	rng    *rand.Rand
	stats  bearerStats
	// sinceNotice counts the Mastodon statuses since the last delete event.
	sinceNotice int
}

// xSimRule is one filtered-stream rule as X's rules endpoint shows it.
type xSimRule struct {
	ID    string `json:"id"`
	Value string `json:"value"`
	Tag   string `json:"tag,omitempty"`
}

// bearerStats are the simulator's counters, for /_local/status.
type bearerStats struct {
	Requests     int `json:"requests"`
	Unauthorized int `json:"unauthorized"`
	Streams      int `json:"streams"`
	Open         int `json:"open"`
	Posts        int `json:"posts"`
	Notices      int `json:"notices"`
	Heartbeats   int `json:"heartbeats"`
	Rules        int `json:"rules"`
}

// newBearerSimulator builds the simulator of o.Source for the token in creds and listens on
// host:0.
func newBearerSimulator(o options, creds secretValues, host string) (*bearerSimulator, error) {
	track, err := stream.ParseTrack(o.Filter)
	if err != nil {
		return nil, fmt.Errorf("stream simulator: -filter: %w", err)
	}
	phrases := make([][]string, 0, len(track))
	for _, p := range track {
		phrases = append(phrases, strings.Fields(p))
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("stream simulator: listen on %s: %w", host, err)
	}
	key := sourceSecretKeys[o.Source][0]
	seed := uint64(time.Now().UnixNano())
	return &bearerSimulator{
		source: o.Source, key: key, rate: o.Rate, keepAlive: o.KeepAlive, noticeEvery: o.NoticeEvery,
		phrases: phrases, ln: ln, closed: make(chan struct{}), token: creds[key],
		nextID: time.Now().UnixMilli() << 22, rng: rand.New(rand.NewPCG(seed, seed>>1)),
	}, nil
}

// URL is the simulator's base URL (X_STREAM_URL or MASTODON_URL) as seen from the app.
func (s *bearerSimulator) URL() string { return "http://" + s.ln.Addr().String() }

// describe says what the simulator serves, for local's progress line.
func (s *bearerSimulator) describe() string {
	if s.source == "x" {
		return "X API v2 filtered stream, GET " + xStreamPath + " and the rules endpoint; counters at " + s.URL() + controlPrefix + "status"
	}
	return "Mastodon streaming API, GET " + mastodonPath + " (server-sent events); counters at " + s.URL() + controlPrefix + "status"
}

// rotate makes new requests need the new token, as regenerating a token at X or Mastodon does.
// Streams that are already open stay open until they end.
func (s *bearerSimulator) rotate(creds secretValues) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = creds[s.key]
	return nil
}

// authorized checks the request's bearer token against the current one, in constant time.
func (s *bearerSimulator) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	want := s.token
	s.stats.Requests++
	s.mu.Unlock()
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *bearerSimulator) count(f func(*bearerStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

// Run serves until ctx ends.
func (s *bearerSimulator) Run(ctx context.Context) error {
	mux := http.NewServeMux()
	if s.source == "x" {
		mux.HandleFunc("GET "+xStreamPath, s.guard(s.xStream))
		mux.HandleFunc("GET "+xRulesPath, s.guard(s.xListRules))
		mux.HandleFunc("POST "+xRulesPath, s.guard(s.xChangeRules))
	} else {
		mux.HandleFunc("GET "+mastodonPath, s.guard(s.mastodonStream))
	}
	mux.HandleFunc("GET "+controlPrefix+"status", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		st := s.stats
		st.Rules = len(s.rules)
		s.mu.Unlock()
		writeControl(w, http.StatusOK, map[string]any{"stats": st})
	})
	mux.HandleFunc(controlPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeControl(w, http.StatusNotFound, map[string]string{"error": "the fault controls exist for -source twitter only; this simulator has " + controlPrefix + "status"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeControl(w, http.StatusNotFound, map[string]string{"error": "not found; this simulator serves " + s.describe()})
	})
	return serveSimulator(ctx, s.ln, mux, s.close)
}

func (s *bearerSimulator) close() { s.closeOnce.Do(func() { close(s.closed) }) }

// guard answers a request without the current bearer token with 401 and the service's body.
func (s *bearerSimulator) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.authorized(r) {
			h(w, r)
			return
		}
		s.count(func(st *bearerStats) { st.Unauthorized++ })
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		if s.source == "x" {
			fmt.Fprint(w, `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`)
		} else {
			fmt.Fprint(w, `{"error":"Error: Invalid access token"}`)
		}
	}
}

// xListRules answers GET .../rules with the rules, as X does (no "data" when there are none).
func (s *bearerSimulator) xListRules(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	body := map[string]any{"meta": map[string]any{"sent": time.Now().UTC().Format(time.RFC3339Nano), "result_count": len(s.rules)}}
	if len(s.rules) > 0 {
		body["data"] = append([]xSimRule(nil), s.rules...)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// xChangeRules answers POST .../rules: {"add": [{"value", "tag"}]} creates rules (a value that
// exists already is a DuplicateRule error, as on X), {"delete": {"ids": [...]}} deletes them.
func (s *bearerSimulator) xChangeRules(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Add []struct {
			Value string `json:"value"`
			Tag   string `json:"tag"`
		} `json:"add"`
		Delete *struct {
			IDs []string `json:"ids"`
		} `json:"delete"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil || (in.Add == nil) == (in.Delete == nil) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"title": "Invalid Request", "detail": "want {\"add\": [...]} or {\"delete\": {\"ids\": [...]}}"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if in.Delete != nil {
		var kept []xSimRule
		deleted := 0
		for _, rule := range s.rules {
			if slices.Contains(in.Delete.IDs, rule.ID) {
				deleted++
				continue
			}
			kept = append(kept, rule)
		}
		s.rules = kept
		writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]any{"sent": now, "summary": map[string]int{"deleted": deleted, "not_deleted": len(in.Delete.IDs) - deleted}}})
		return
	}
	var created []xSimRule
	var problems []map[string]string
	for _, a := range in.Add {
		if a.Value == "" || len(a.Value) > 512 || s.hasRuleLocked(a.Value) {
			problems = append(problems, map[string]string{"value": a.Value, "title": "DuplicateRule", "type": "https://api.twitter.com/2/problems/duplicate-rules"})
			continue
		}
		s.nextID++
		rule := xSimRule{ID: strconv.FormatInt(s.nextID, 10), Value: a.Value, Tag: a.Tag}
		s.rules = append(s.rules, rule)
		created = append(created, rule)
	}
	body := map[string]any{"meta": map[string]any{"sent": now, "summary": map[string]int{"created": len(created), "not_created": len(problems), "valid": len(created), "invalid": len(problems)}}}
	if len(created) > 0 {
		body["data"] = created
	}
	if len(problems) > 0 {
		body["errors"] = problems
	}
	writeJSON(w, http.StatusCreated, body)
}

func (s *bearerSimulator) hasRuleLocked(value string) bool {
	for _, r := range s.rules {
		if r.Value == value {
			return true
		}
	}
	return false
}

// xStream is GET /2/tweets/search/stream: one post per line, each followed by "\r\n", and a
// "\r\n" heartbeat every -keepalive. Posts flow only while at least one rule exists.
func (s *bearerSimulator) xStream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	s.serveStream(w, r, "\r\n", func() (string, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.rules) == 0 {
			return "", false
		}
		rule := s.rules[s.rng.IntN(len(s.rules))]
		p := s.postLocked()
		s.stats.Posts++
		line, _ := json.Marshal(map[string]any{
			"data": map[string]any{
				"id": p.id, "text": xEscaper.Replace(p.text), "author_id": p.userID, "created_at": p.created, "lang": "en",
				"edit_history_tweet_ids": []string{p.id}, "entities": map[string]any{"hashtags": p.xHashtags()},
			},
			"includes":       map[string]any{"users": []map[string]string{{"id": p.userID, "name": p.user, "username": p.user}}},
			"matching_rules": []map[string]string{{"id": rule.ID, "tag": rule.Tag}},
		})
		return string(line) + "\r\n", true
	})
}

// mastodonStream is GET /api/v1/streaming/public: server-sent events, an "update" per status
// and a "delete" every -notice-every statuses, with ":thump" heartbeats.
func (s *bearerSimulator) mastodonStream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	s.serveStream(w, r, ":thump\n", func() (string, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.noticeEvery > 0 && s.sinceNotice >= s.noticeEvery {
			s.sinceNotice = 0
			s.stats.Notices++
			return "event: delete\ndata: " + strconv.FormatInt(s.nextID-int64(s.rng.IntN(1000)), 10) + "\n\n", true
		}
		p := s.postLocked()
		s.stats.Posts++
		s.sinceNotice++
		tags := make([]map[string]string, 0, len(p.hashtags))
		for _, t := range p.hashtags {
			tags = append(tags, map[string]string{"name": strings.ToLower(t), "url": "https://mastodon.example/tags/" + strings.ToLower(t)})
		}
		status, _ := json.Marshal(map[string]any{
			"id": p.id, "created_at": p.created, "content": p.html(), "spoiler_text": "", "language": "en",
			"visibility": "public", "uri": "https://remote.example/users/" + p.user + "/statuses/" + p.id,
			"url":     "https://remote.example/@" + p.user + "/" + p.id,
			"account": map[string]string{"id": p.userID, "username": p.user, "acct": p.user + "@remote.example"},
			"tags":    tags, "mentions": []any{}, "card": nil, "reblog": nil,
		})
		return "event: update\ndata: " + string(status) + "\n\n", true
	})
}

// serveStream holds one streaming response open: a message from next every 1/-rate seconds
// (when it has one) and heartbeat every -keepalive, until the client leaves or the simulator
// closes.
func (s *bearerSimulator) serveStream(w http.ResponseWriter, r *http.Request, heartbeat string, next func() (string, bool)) {
	flusher, _ := w.(http.Flusher)
	s.count(func(st *bearerStats) { st.Streams++; st.Open++ })
	defer s.count(func(st *bearerStats) { st.Open-- })
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	keep := time.NewTicker(s.keepAlive)
	defer keep.Stop()
	var tick <-chan time.Time
	if s.rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / s.rate))
		defer t.Stop()
		tick = t.C
	}
	write := func(text string) bool {
		if _, err := fmt.Fprint(w, text); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		case <-keep.C:
			s.count(func(st *bearerStats) { st.Heartbeats++ })
			if !write(heartbeat) {
				return
			}
		case <-tick:
			if msg, ok := next(); ok && !write(msg) {
				return
			}
		}
	}
}

// simPost is one synthetic post, before it is rendered in a source's format.
type simPost struct {
	id, userID, user, created, text string
	hashtags                        []string
}

// simUsers and simFiller are the synthetic posts' authors and filler words; none of them is
// likely to be a FILTER phrase.
var (
	simUsers  = []string{"ana_luisa", "bjorn", "gopher", "k_tanaka", "noemi", "streamfan", "zoe_bloom"}
	simFiller = []string{"today", "we", "shipped", "a", "new", "build", "with", "coffee", "café", "über", "🚀", "really", "nice", "weekend", "night"}
)

// postLocked makes the next post: mostly one FILTER phrase's words (in any order, one of them
// sometimes as a hashtag) among filler words, sometimes filler only.
func (s *bearerSimulator) postLocked() simPost {
	s.nextID += 1 + int64(s.rng.IntN(4096))
	user := simUsers[s.rng.IntN(len(simUsers))]
	p := simPost{
		id: strconv.FormatInt(s.nextID, 10), user: user, userID: strconv.Itoa(1000 + len(user)*7919),
		created: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	var words []string
	for range 2 + s.rng.IntN(5) {
		words = append(words, simFiller[s.rng.IntN(len(simFiller))])
	}
	if len(s.phrases) > 0 && s.rng.Float64() >= shareNonMatching {
		phrase := s.phrases[s.rng.IntN(len(s.phrases))]
		words = append(words, phrase...)
		s.rng.Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
		if w := phrase[s.rng.IntN(len(phrase))]; s.rng.IntN(3) == 0 && isSimHashtag(w) {
			p.hashtags = append(p.hashtags, w)
		}
	}
	p.text = strings.Join(words, " ")
	for _, h := range p.hashtags {
		p.text += " #" + h
	}
	return p
}

// xHashtags are the post's hashtag entities, with their places in the text.
func (p simPost) xHashtags() []map[string]any {
	out := []map[string]any{}
	for _, h := range p.hashtags {
		i := strings.LastIndex(p.text, "#"+h)
		start := len([]rune(p.text[:i]))
		out = append(out, map[string]any{"start": start, "end": start + 1 + len([]rune(h)), "tag": h})
	}
	return out
}

// html is the post as Mastodon renders a status's content: a paragraph, the hashtags as
// links marked "mention hashtag", the text's & < > escaped.
func (p simPost) html() string {
	text := p.text
	for _, h := range p.hashtags {
		text = strings.TrimSuffix(text, " #"+h)
	}
	var b strings.Builder
	b.WriteString("<p>")
	b.WriteString(htmlEscaper.Replace(text))
	for _, h := range p.hashtags {
		fmt.Fprintf(&b, ` <a href="https://mastodon.example/tags/%s" class="mention hashtag" rel="tag">#<span>%s</span></a>`, htmlEscaper.Replace(strings.ToLower(h)), htmlEscaper.Replace(h))
	}
	b.WriteString("</p>")
	return b.String()
}

// htmlEscaper escapes a status's text for its HTML content; xEscaper escapes a post's text as
// X's v2 API does (only &, < and >).
var (
	htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	xEscaper    = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
)

// isSimHashtag reports whether w can be written as #w: letters, digits and '_'.
func isSimHashtag(w string) bool {
	if w == "" {
		return false
	}
	for _, r := range w {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
