package xv2

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streammatch/streammatch/internal/syncbuf"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/internal/streamtest"
)

const xStreamPath = "/2/tweets/search/stream"

// xRulesAPI is the filtered stream's rules endpoint: GET lists (two rules a page, to exercise
// next_token), POST adds or deletes, refusing a value that exists as DuplicateRule.
type xRulesAPI struct {
	mu     sync.Mutex
	rules  []Rule
	nextID int
	posts  []string // the POST bodies, in order
}

func (a *xRulesAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != xStreamPath+"/rules" {
		http.NotFound(w, r)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		start, _ := strconv.Atoi(r.URL.Query().Get("pagination_token"))
		end := min(start+2, len(a.rules))
		answer := map[string]any{"data": a.rules[start:end], "meta": map[string]any{"result_count": end - start}}
		if end < len(a.rules) {
			answer["meta"].(map[string]any)["next_token"] = strconv.Itoa(end)
		}
		json.NewEncoder(w).Encode(answer)
	case http.MethodPost:
		var body struct {
			Add    []Rule `json:"add"`
			Delete *struct {
				IDs []string `json:"ids"`
			} `json:"delete"`
		}
		raw := new(strings.Builder)
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		js, _ := json.Marshal(body)
		raw.Write(js)
		a.posts = append(a.posts, raw.String())
		var created []Rule
		var errs []map[string]string
		for _, add := range body.Add {
			if slices.ContainsFunc(a.rules, func(r Rule) bool { return r.Value == add.Value }) {
				errs = append(errs, map[string]string{"value": add.Value, "title": "DuplicateRule"})
				continue
			}
			a.nextID++
			add.ID = strconv.Itoa(1000 + a.nextID)
			a.rules = append(a.rules, add)
			created = append(created, add)
		}
		if body.Delete != nil {
			a.rules = slices.DeleteFunc(a.rules, func(r Rule) bool { return slices.Contains(body.Delete.IDs, r.ID) })
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"data": created, "errors": errs})
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (a *xRulesAPI) snapshot() (rules []Rule, posts []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Rule(nil), a.rules...), append([]string(nil), a.posts...)
}

// xPostLine is a minimal v2 stream message: a post by user with its author expansion.
func xPostLine(id, user, text string) string {
	b, _ := json.Marshal(map[string]any{
		"data":           map[string]any{"id": id, "text": text, "author_id": "u" + id, "created_at": "2025-03-01T10:00:00.000Z", "lang": "en"},
		"includes":       map[string]any{"users": []map[string]string{{"id": "u" + id, "username": user}}},
		"matching_rules": []map[string]string{{"id": "1", "tag": "streammatch:x"}},
	})
	return string(b)
}

func newTestXSource(t *testing.T, baseURL string, clock *streamtest.Clock, logs *syncbuf.Buffer, mutate ...func(*Config)) *Source {
	t.Helper()
	cfg := Config{BaseURL: baseURL, Token: streamtest.TestToken, Track: []string{"golang", "twitter api"}, After: clock.After}
	if logs != nil {
		cfg.Logger = streamtest.SlogJSON(logs)
	}
	for _, m := range mutate {
		m(&cfg)
	}
	src, err := NewSource(cfg)
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	return src
}

func TestXRuleValue_TranslatesTrackPhrases(t *testing.T) {
	tests := []struct {
		phrase, want string
	}{
		{"golang", `("golang" OR #golang OR @golang)`},
		{"twitter api", `("twitter" OR #twitter OR @twitter) ("api" OR #api OR @api)`},
		{"#aws", `#aws`},
		{"@awscloud", `@awscloud`},
		{"example.com/foo", `"example.com/foo" OR url:"example.com/foo"`},
		{"touché", `("touché" OR #touché)`},
		{"OR", `("OR" OR #OR OR @OR)`},
		{"-not", `"-not"`},
		{`say "hi"`, `("say" OR #say OR @say) "\"hi\""`},
		{"a_very_long_username_x", `("a_very_long_username_x" OR #a_very_long_username_x)`},
		{"2025", `("2025" OR @2025)`},
		{"Twitter's", `"Twitter's"`},
	}
	for _, tt := range tests {
		t.Run(tt.phrase, func(t *testing.T) {
			got := xRuleValue(tt.phrase)
			want := tt.want
			if strings.Contains(want, " OR url:") && !strings.HasPrefix(want, "(") {
				want = "(" + want + ")"
			}
			if got != want {
				t.Errorf("xRuleValue(%q): got %s, want %s", tt.phrase, got, want)
			}
		})
	}
	t.Run("long phrases fall back to quoted words within the limit", func(t *testing.T) {
		phrase := strings.TrimSpace(strings.Repeat("a ", 30)) // 59 bytes, 30 words
		got := xRuleValue(phrase)
		if len(got) > xMaxRuleLength || strings.Contains(got, "#") {
			t.Errorf("got %d characters %q, want quoted words only, at most %d", len(got), got, xMaxRuleLength)
		}
	})
}

func TestDecodeXLine(t *testing.T) {
	post := func(data map[string]any, includes map[string]any) string {
		if includes == nil {
			includes = map[string]any{"users": []map[string]string{{"id": "9", "username": "gopher"}}}
		}
		b, _ := json.Marshal(map[string]any{"data": data, "includes": includes})
		return string(b)
	}
	base := func(extra ...any) map[string]any {
		m := map[string]any{"id": "100", "text": "hello &amp; &lt;world&gt;", "author_id": "9", "created_at": "2025-03-01T10:00:00.000Z", "lang": "en"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	users := []map[string]string{{"id": "9", "username": "gopher"}}
	tests := []struct {
		name  string
		line  string
		want  string // recordSummary
		check func(t *testing.T, m stream.Message)
	}{
		{"post", post(base(), nil), "msg:100", func(t *testing.T, m stream.Message) {
			want := stream.Message{ID: "100", User: "gopher", CreatedAt: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), Text: "hello & <world>", Lang: "en", Source: "x"}
			if fmt.Sprint(m) != fmt.Sprint(want) {
				t.Errorf("got %+v, want %+v", m, want)
			}
		}},
		{"long post takes note_tweet", post(base("note_tweet", map[string]any{"text": "the whole long text", "entities": map[string]any{"hashtags": []map[string]string{{"tag": "long"}}}}), nil), "msg:100", func(t *testing.T, m stream.Message) {
			if m.Text != "the whole long text" || !slices.Equal(m.Hashtags, []string{"long"}) {
				t.Errorf("got text %q hashtags %v, want the note_tweet's", m.Text, m.Hashtags)
			}
		}},
		{"entities", post(base("entities", map[string]any{
			"hashtags": []map[string]string{{"tag": "go"}, {"tag": "go"}},
			"mentions": []map[string]string{{"username": "golang"}},
			"urls":     []map[string]string{{"url": "https://t.co/x", "expanded_url": "https://go.dev/blog", "display_url": "go.dev/blog"}},
		}), nil), "msg:100", func(t *testing.T, m stream.Message) {
			if !slices.Equal(m.Hashtags, []string{"go"}) || !slices.Equal(m.Mentions, []string{"golang"}) || !slices.Equal(m.URLs, []string{"https://go.dev/blog", "go.dev/blog"}) {
				t.Errorf("got hashtags %v mentions %v urls %v", m.Hashtags, m.Mentions, m.URLs)
			}
		}},
		{"retweet stores the original's full text", post(
			base("text", "RT @orig: trunc…", "referenced_tweets", []map[string]string{{"type": "retweeted", "id": "7"}}),
			map[string]any{"users": users, "tweets": []map[string]any{{"id": "7", "text": "short", "note_tweet": map[string]any{"text": "original full text"}, "entities": map[string]any{"hashtags": []map[string]string{{"tag": "orig"}}}}}},
		), "msg:100", func(t *testing.T, m stream.Message) {
			if m.Text != "original full text" || m.User != "gopher" || !slices.Equal(m.Hashtags, []string{"orig"}) {
				t.Errorf("got text %q user %q hashtags %v", m.Text, m.User, m.Hashtags)
			}
		}},
		{"quote keeps its text and carries the original as Quoted", post(
			base("referenced_tweets", []map[string]string{{"type": "quoted", "id": "8"}, {"type": "replied_to", "id": "6"}}),
			map[string]any{"users": users, "tweets": []map[string]any{{"id": "8", "text": "quoted text"}}},
		), "msg:100", func(t *testing.T, m stream.Message) {
			if m.Text != "hello & <world>" || m.Quoted != "quoted text" {
				t.Errorf("got text %q quoted %q", m.Text, m.Quoted)
			}
		}},
		{"errors beside data do not stop the post", `{"data":{"id":"5","text":"t","author_id":"9","created_at":"2025-03-01T10:00:00Z"},"includes":{"users":[{"id":"9","username":"g"}]},"errors":[{"title":"Not Found Error"}]}`, "msg:5", nil},
		{"operational disconnect", `{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}`, "notice:disconnect", nil},
		{"other problem", `{"errors":[{"title":"ConnectionException","connection_issue":"TooManyConnections"}]}`, "notice:other", nil},
		{"unknown object", `{"hello":"world"}`, "notice:other", nil},
		{"not json", `<html>`, "skip:invalid_json", nil},
		{"truncated json", `{"data":{"id":"1"`, "skip:invalid_json", nil},
		{"invalid utf-8", "{\"data\":{\"id\":\"1\",\"text\":\"\xff\"}}", "skip:invalid_utf8", nil},
		{"type error", `{"data":{"id":123,"text":"t"}}`, "skip:invalid_tweet", nil},
		{"problems of the wrong type", `{"errors":"boom"}`, "skip:invalid_notice", nil},
		{"missing id", post(base("id", ""), nil), "skip:missing_id", nil},
		{"author not in includes", post(base("author_id", "404"), nil), "skip:missing_user", nil},
		{"empty text", post(base("text", "  "), nil), "skip:missing_text", nil},
		{"no created_at", post(base("created_at", ""), nil), "skip:missing_created_at", nil},
		{"bad created_at", post(base("created_at", "Mon Jan 02 2006"), nil), "skip:bad_created_at", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := decodeXLine([]byte(tt.line))
			if got := streamtest.RecordSummary(rec); got != tt.want {
				t.Fatalf("decodeXLine: got %s, want %s", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, rec.Message)
			}
		})
	}
}

func TestXSource_SyncsRulesAndNeverDeletesForeignOnes(t *testing.T) {
	golang, stale := xRuleValue("golang"), xRuleValue("old phrase")
	api := &xRulesAPI{rules: []Rule{
		{ID: "1", Value: "cats has:images", Tag: "another-app"},       // foreign: kept
		{ID: "2", Value: stale, Tag: xRuleTag(stale)},                 // ours, no longer wanted: deleted
		{ID: "3", Value: golang, Tag: xRuleTag(golang)},               // ours and wanted: kept
		{ID: "4", Value: "dogs", Tag: ""},                             // foreign without a tag: kept
		{ID: "5", Value: "mangled", Tag: xRuleTagPrefix + "deadbeef"}, // ours, hand-edited: deleted
	}}
	srv := streamtest.NewBearerServer(t, xStreamPath, api, streamtest.HoldOpen(20*time.Millisecond))
	clock := &streamtest.Clock{Auto: true}
	src := newTestXSource(t, srv.URL, clock, nil)
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	streamtest.Eventually(t, "a stream connection", func() bool { n, _, _ := srv.Stats(); return n >= 1 })

	rules, posts := api.snapshot()
	var got []string
	for _, r := range rules {
		got = append(got, r.Value+" ["+r.Tag+"]")
	}
	api2 := xRuleValue("twitter api")
	want := []string{"cats has:images [another-app]", golang + " [" + xRuleTag(golang) + "]", "dogs []", api2 + " [" + xRuleTag(api2) + "]"}
	if !slices.Equal(got, want) {
		t.Errorf("rules after sync:\n got %q\nwant %q", got, want)
	}
	wantPosts := []string{`{"add":null,"delete":{"ids":["2","5"]}}`, `{"add":[{"value":` + strconv.Quote(api2) + `,"tag":"` + xRuleTag(api2) + `"}],"delete":null}`}
	if !slices.Equal(posts, wantPosts) {
		t.Errorf("POSTs to the rules endpoint:\n got %q\nwant %q", posts, wantPosts)
	}
	query := srv.LastRawQuery()
	for _, want := range []string{"expansions=author_id%2Creferenced_tweets.id", "note_tweet"} {
		if !strings.Contains(query, want) {
			t.Errorf("stream query %q lacks %q", query, want)
		}
	}
}

func TestXSource_SyncAddsNothingWhenAForeignRuleHasTheValue(t *testing.T) {
	golang, api2 := xRuleValue("golang"), xRuleValue("twitter api")
	api := &xRulesAPI{rules: []Rule{{ID: "1", Value: golang, Tag: "someone"}, {ID: "2", Value: api2, Tag: xRuleTag(api2)}}}
	srv := streamtest.NewBearerServer(t, xStreamPath, api, streamtest.HoldOpen(20*time.Millisecond))
	src := newTestXSource(t, srv.URL, &streamtest.Clock{Auto: true}, nil)
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	streamtest.Eventually(t, "a stream connection", func() bool { n, _, _ := srv.Stats(); return n >= 1 })
	if rules, posts := api.snapshot(); len(posts) != 0 || len(rules) != 2 {
		t.Errorf("got %d POSTs and %d rules, want 0 and 2: %q", len(posts), len(rules), posts)
	}
}

func TestXSource_EmitsPostsNoticesAndSkipsInStreamOrder(t *testing.T) {
	srv := streamtest.NewBearerServer(t, xStreamPath, &xRulesAPI{}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "\r\n")                                         // heartbeat
		fmt.Fprint(w, xPostLine("1", "alice", "golang rocks")+"\r\n") // post
		fmt.Fprint(w, "\r\n\r\n")                                     // heartbeats
		fmt.Fprint(w, "{not json\r\n")                                // malformed
		fmt.Fprint(w, `{"data":{"id":"2","text":"no author"}}`+"\r\n")
		fmt.Fprint(w, xPostLine("3", "bob", "multi\nline")+"\r\n")
		fmt.Fprint(w, `{"errors":[{"title":"operational-disconnect","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}`+"\r\n")
		fmt.Fprint(w, `{"data":{"id":"4"`) // cut mid-line
	}, streamtest.HoldOpen(20*time.Millisecond))
	rec := &streamtest.Recorder{}
	logs := &syncbuf.Buffer{}
	src := newTestXSource(t, srv.URL, &streamtest.Clock{Auto: true}, logs)
	stop := streamtest.RunSource(t, src, rec.Emit)
	streamtest.Eventually(t, "the second connection", func() bool { return src.Status().Connects == 2 })
	stop()
	want := []string{"msg:1", "skip:invalid_json", "skip:missing_user", "msg:3", "notice:disconnect", "skip:partial_line"}
	if got := rec.Summary(); !slices.Equal(got, want) {
		t.Errorf("records:\n got %q\nwant %q", got, want)
	}
	if msgs := rec.Messages(); len(msgs) < 2 || msgs[1].Text != "multi\nline" || msgs[0].Source != "x" {
		t.Errorf("messages: got %+v", msgs)
	}
	st := src.Status()
	if st.Connects != 2 {
		t.Errorf("connects: got %d, want 2", st.Connects)
	}
	streamtest.AssertNoToken(t, logs.String(), fmt.Sprintf("%+v", st))
}

func TestXSource_WrongTokenIsRejectedWith401(t *testing.T) {
	api := &xRulesAPI{}
	srv := streamtest.NewBearerServer(t, xStreamPath, api, streamtest.HoldOpen(20*time.Millisecond))
	srv.Check = streamtest.Bearer("the-right-token")
	clock := &streamtest.Clock{}
	logs := &syncbuf.Buffer{}
	src := newTestXSource(t, srv.URL, clock, logs)
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	// The state is set before the wait starts, so wait for both.
	streamtest.Eventually(t, "the rejected state and its wait", func() bool {
		return src.Status().State == stream.StateRejected && len(clock.Recorded()) == 1
	})
	st := src.Status()
	if !strings.Contains(st.LastError, "credentials rejected (401)") {
		t.Errorf("last error: got %q, want it to say credentials rejected (401)", st.LastError)
	}
	if waits := clock.Recorded(); len(waits) != 1 || waits[0] != streamtest.HTTPInitial {
		t.Errorf("waits: got %v, want [%v] (the HTTP schedule)", waits, streamtest.HTTPInitial)
	}
	if n, _, unauthorized := srv.Stats(); n != 0 || unauthorized != 1 {
		t.Errorf("got %d stream requests and %d 401s, want 0 and 1 (the rule sync fails first)", n, unauthorized)
	}
	streamtest.AssertNoToken(t, logs.String(), st.LastError)
}

func TestXSource_ReconnectsOneConnectionAtATime(t *testing.T) {
	drop := streamtest.SendLines(xPostLine("1", "a", "golang"))
	srv := streamtest.NewBearerServer(t, xStreamPath, &xRulesAPI{}, drop, drop, streamtest.Hijack("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n\r\n"), drop, streamtest.HoldOpen(20*time.Millisecond))
	clock := &streamtest.Clock{Auto: true}
	rec := &streamtest.Recorder{}
	src := newTestXSource(t, srv.URL, clock, nil)
	streamtest.RunSource(t, src, rec.Emit)
	streamtest.Eventually(t, "five connections", func() bool { n, _, _ := srv.Stats(); return n >= 5 })
	streamtest.Eventually(t, "the fifth to be connected", func() bool { return src.Status().State == stream.StateConnected })
	_, maxLive, _ := srv.Stats()
	if maxLive != 1 {
		t.Errorf("connections open at once: got %d, want 1", maxLive)
	}
	// After a drop with data: at once. After the cut connection without data: the next step of
	// the linear schedule, which a connection with data then resets.
	want := []time.Duration{0, 0, streamtest.NetworkStep, 0}
	if got := clock.Recorded(); !slices.Equal(got, want) {
		t.Errorf("waits: got %v, want %v", got, want)
	}
	if got := len(rec.Messages()); got != 3 {
		t.Errorf("messages: got %d, want 3", got)
	}
}

func TestXSource_TooManyConnectionsWaitsForTheRateLimitReset(t *testing.T) {
	reset := time.Now().Add(10 * time.Minute).Unix()
	srv := streamtest.NewBearerServer(t, xStreamPath, &xRulesAPI{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-rate-limit-reset", strconv.FormatInt(reset, 10))
		streamtest.Status(http.StatusTooManyRequests, `{"title":"ConnectionException","detail":"This stream is currently at the maximum allowed connection limit.","connection_issue":"TooManyConnections","type":"https://api.twitter.com/2/problems/streaming-connection"}`)(w, r)
	})
	clock := &streamtest.Clock{}
	src := newTestXSource(t, srv.URL, clock, nil)
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	streamtest.Eventually(t, "a wait", func() bool { return len(clock.Recorded()) == 1 })
	st := src.Status()
	if st.State != stream.StateBackoff || st.LastError != "too many connections (429)" {
		t.Errorf("status: got %s %q, want backoff \"too many connections (429)\"", st.State, st.LastError)
	}
	if got := clock.Recorded()[0]; got < 9*time.Minute || got > 10*time.Minute {
		t.Errorf("wait: got %v, want about 10m (until x-rate-limit-reset)", got)
	}
}

func TestXSource_StallIsDetectedAndReplaced(t *testing.T) {
	srv := streamtest.NewBearerServer(t, xStreamPath, &xRulesAPI{}, streamtest.Silent(xPostLine("1", "a", "golang")), streamtest.HoldOpen(20*time.Millisecond))
	clock := &streamtest.Clock{Auto: true}
	src := newTestXSource(t, srv.URL, clock, nil, func(c *Config) { c.StallTimeout = 300 * time.Millisecond })
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	streamtest.Eventually(t, "a second connection", func() bool { n, _, _ := srv.Stats(); return n >= 2 })
	if st := src.Status(); st.LastError != "stalled: no data for 300ms" {
		t.Errorf("last error: got %q, want the stall", st.LastError)
	}
	if got := clock.Recorded(); len(got) == 0 || got[0] != streamtest.NetworkStep {
		t.Errorf("waits: got %v, want %v first (the linear schedule)", got, streamtest.NetworkStep)
	}
}

func TestNewSource_ReportsEveryProblem(t *testing.T) {
	_, err := NewSource(Config{BaseURL: "ftp://x", Track: []string{"ok", " "}, StallTimeout: -1, MaxLine: -1})
	if err == nil {
		t.Fatal("NewSource: got nil error")
	}
	for _, want := range []string{"Config.BaseURL", "Config.Token is empty", "Config.Track[1] is empty", "StallTimeout is negative", "MaxLine is negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestXSource_RunTwiceIsRefused(t *testing.T) {
	srv := streamtest.NewBearerServer(t, xStreamPath, &xRulesAPI{}, streamtest.HoldOpen(20*time.Millisecond))
	src := newTestXSource(t, srv.URL, &streamtest.Clock{Auto: true}, nil)
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	streamtest.Eventually(t, "connected", func() bool { return src.Status().State == stream.StateConnected })
	if err := src.Run(context.Background(), (&streamtest.Recorder{}).Emit); err == nil {
		t.Error("second Run: got nil, want an error")
	}
}
