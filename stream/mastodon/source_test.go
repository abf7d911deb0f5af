package mastodon

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streammatch/streammatch/internal/syncbuf"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/conn"
	"github.com/streammatch/streammatch/stream/internal/streamtest"
)

const mastodonPath = "/api/v1/streaming/public"

// statusJSON is a minimal Mastodon Status entity.
func statusJSON(id, acct, content string) string {
	b, _ := json.Marshal(map[string]any{
		"id": id, "created_at": "2025-03-01T10:00:00.000Z", "content": content, "spoiler_text": "",
		"language": "en", "account": map[string]any{"id": "1", "username": acct, "acct": acct},
		"tags": []any{}, "mentions": []any{}, "reblog": nil, "card": nil,
	})
	return string(b)
}

// sendSSE answers 200 as Mastodon's streaming server does (":)" first) and writes body.
func sendSSE(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, ":)\n"+body)
		w.(http.Flusher).Flush()
	}
}

// thumping answers 200 and writes body, then a ":thump" comment every interval until the
// client goes away.
func thumping(interval time.Duration, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sendSSE(body)(w, r)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := fmt.Fprint(w, ":thump\n"); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}
}

func newTestMastodonSource(t *testing.T, baseURL string, clock *streamtest.Clock, logs *syncbuf.Buffer, mutate ...func(*Config)) *Source {
	t.Helper()
	cfg := Config{BaseURL: baseURL, Token: streamtest.TestToken, After: clock.After}
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

// readEvents runs an sseReader over body and renders what it returns.
func readEvents(body string, max int) []string {
	r := newSSEReader(strings.NewReader(body), max)
	var out []string
	for {
		ev, reason, err := r.next()
		switch {
		case reason != "":
			out = append(out, "skip:"+reason)
		case err == nil:
			out = append(out, ev.name+"="+string(ev.data))
		}
		if err != nil {
			if err != io.EOF {
				out = append(out, "err:"+err.Error())
			}
			return out
		}
	}
}

func TestSSEReader_FramesEventsAsTheStandardSays(t *testing.T) {
	tests := []struct {
		name string
		body string
		max  int
		want []string
	}{
		{"mastodon's framing", ":)\nevent: update\ndata: {\"a\":1}\n\n:thump\nevent: delete\ndata: 42\n\n", 0, []string{`update={"a":1}`, "delete=42"}},
		{"CRLF", "event: update\r\ndata: x\r\n\r\n", 0, []string{"update=x"}},
		{"lone CR", "event: update\rdata: x\r\rdata: y\r\r", 0, []string{"update=x", "message=y"}},
		{"CRLF split across reads is one terminator", "data: a\r\n\r\ndata: b\n\n", 0, []string{"message=a", "message=b"}},
		{"multi-line data joined with LF", "event: update\ndata: line1\ndata:line2\ndata:  indented\n\n", 0, []string{"update=line1\nline2\n indented"}},
		{"colon in the value", "data: {\"url\":\"https://x\"}\n\n", 0, []string{`message={"url":"https://x"}`}},
		{"comments and unknown fields are ignored", ": hello\nid: 7\nretry: 100\nfoo: bar\nevent: update\ndata: x\n\n", 0, []string{"update=x"}},
		{"a field without colon", "data\n\n", 0, []string{"message="}},
		{"an event without data is not dispatched", "event: update\n\ndata: x\n\n", 0, []string{"message=x"}},
		{"blank lines alone are nothing", "\n\n\n:thump\n\n", 0, nil},
		{"the event name does not leak into the next event", "event: delete\ndata: 1\n\ndata: 2\n\n", 0, []string{"delete=1", "message=2"}},
		{"partial event at the end", "event: update\ndata: x\n\nevent: update\ndata: {\"cut", 0, []string{"update=x", "skip:partial_event"}},
		{"partial line at the end", "data: x\n\ndata", 0, []string{"message=x", "skip:partial_event"}},
		{"event over the limit is dropped, the next kept", "data: 0123456789\ndata: 0123456789\n\ndata: ok\n\n", 16, []string{"skip:event_too_long", "message=ok"}},
		{"line over the limit is dropped", "data: " + strings.Repeat("x", 100) + "\n\ndata: ok\n\n", 16, []string{"skip:event_too_long", "message=ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = conn.DefaultMaxLine
			}
			if got := readEvents(tt.body, max); !slices.Equal(got, tt.want) {
				t.Errorf("events:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct {
		name      string
		content   string
		want      string
		wantLinks []string
	}{
		{"paragraphs", "<p>first</p><p>second</p>", "first\n\nsecond", nil},
		{"line breaks", "<p>a<br>b<br/>c</p>", "a\nb\nc", nil},
		{"a run of breaks is one blank line", "a<br><br><br><br>b", "a\n\nb", nil},
		{"entities decoded once", "<p>Tom &amp; Jerry &lt;3 &quot;q&quot; &#39;s&#39; &amp;lt;</p>", `Tom & Jerry <3 "q" 's' &lt;`, nil},
		{"whitespace collapses", "<p>  a \n\t b  </p>", "a b", nil},
		{"inline tags keep words apart", "<p><b>bold</b> <i>it</i>alic</p>", "bold italic", nil},
		{"mention and hashtag links are not links", `<p><span class="h-card"><a class="u-url mention" href="https://m.example/@bob">@<span>bob</span></a></span> hi <a class="mention hashtag" href="https://m.example/tags/go" rel="tag">#<span>go</span></a></p>`, "@bob hi #go", nil},
		{"shortened link text is whole", `<p><a href="https://go.dev/blog/loopvar" rel="nofollow"><span class="invisible">https://</span><span class="ellipsis">go.dev/blog/loo</span><span class="invisible">pvar</span></a></p>`, "https://go.dev/blog/loopvar", []string{"https://go.dev/blog/loopvar"}},
		{"pre keeps whitespace", "<pre>a  b\n  c</pre><p>d</p>", "a  b\n  c\n\nd", nil},
		{"lists", "<ul><li>one</li><li>two</li></ul>", "one\ntwo", nil},
		{"script content is dropped", `<p>hi<script>alert("x")</script> there</p>`, "hi there", nil},
		{"style content is dropped", `<style>p{color:red}</style><p>x</p>`, "x", nil},
		{"event handlers vanish with their tags", `<p><img src=x onerror="alert(1)">ok<svg onload=alert(2)><script>alert(3)</script></svg></p>`, "ok", nil},
		{"javascript: links are not links", `<a href="javascript:alert(1)">click</a> <a href="data:text/html,x">d</a>`, "click d", nil},
		{"escaped markup stays text", `<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>`, "<script>alert(1)</script>", nil},
		{"unclosed and broken markup", `<p>a <b>b <a href="https://x.example/">c`, "a b c", []string{"https://x.example/"}},
		{"comments and doctype", `<!doctype html><!-- <script>x</script> --><p>t</p>`, "t", nil},
		{"script is raw text up to the first end tag", `<script><script>x</script>y</script>z`, "yz", nil},
		{"nested skipped elements", `<svg><svg><text>x</text></svg><text>y</text></svg>z`, "z", nil},
		{"empty", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, links := HTMLToText(tt.content)
			if got != tt.want {
				t.Errorf("text: got %q, want %q", got, tt.want)
			}
			if !slices.Equal(links, tt.wantLinks) {
				t.Errorf("links: got %q, want %q", links, tt.wantLinks)
			}
		})
	}
}

func TestHTMLToText_XSSPayloadsRenderAsPlainText(t *testing.T) {
	payloads := []string{
		`<script>alert(1)</script>`,
		`<img src=x onerror=alert(1)>`,
		`<a href="javascript:alert(1)">x</a>`,
		`<svg/onload=alert(1)>`,
		`<iframe src="javascript:alert(1)"></iframe>`,
		`&lt;img src=x onerror=alert(1)&gt;`,
		`<scr<script>ipt>alert(1)</script>`,
		`"><script>alert(1)</script>`,
		`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`,
		`<p style="background:url(javascript:alert(1))">x</p>`,
	}
	for _, p := range payloads {
		t.Run(p, func(t *testing.T) {
			text, links := HTMLToText("<p>before " + p + " after</p>")
			// Shown by html/template (or any escaper), the text is inert: no tag survives.
			if shown := html.EscapeString(text); strings.Contains(shown, "<") {
				t.Errorf("escaped text still holds markup: %q", shown)
			}
			if len(links) != 0 {
				t.Errorf("links: got %q, want none", links)
			}
			if !strings.HasPrefix(text, "before") {
				t.Errorf("text: got %q, want the surrounding words kept", text)
			}
		})
	}
}

func TestDecodeMastodonStatus(t *testing.T) {
	status := func(mutate func(m map[string]any)) string {
		var m map[string]any
		json.Unmarshal([]byte(statusJSON("109", "alice@remote.example", `<p>Hello <a class="mention hashtag" href="https://r/tags/golang">#<span>golang</span></a> &amp; <a href="https://go.dev/">go.dev</a></p>`)), &m)
		m["tags"] = []map[string]string{{"name": "golang", "url": "https://r/tags/golang"}}
		m["mentions"] = []map[string]string{{"acct": "bob", "username": "bob"}}
		if mutate != nil {
			mutate(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name  string
		data  string
		want  string
		check func(t *testing.T, m stream.Message)
	}{
		{"status", status(nil), "msg:109", func(t *testing.T, m stream.Message) {
			want := stream.Message{ID: "109", User: "alice@remote.example", CreatedAt: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), Text: "Hello #golang & go.dev", Lang: "en", Source: "mastodon",
				Hashtags: []string{"golang"}, Mentions: []string{"bob"}, URLs: []string{"https://go.dev/"}}
			if fmt.Sprint(m) != fmt.Sprint(want) {
				t.Errorf("got  %+v\nwant %+v", m, want)
			}
		}},
		{"content warning comes first", status(func(m map[string]any) { m["spoiler_text"] = "spoilers" }), "msg:109", func(t *testing.T, m stream.Message) {
			if m.Text != "spoilers\n\nHello #golang & go.dev" {
				t.Errorf("text: got %q", m.Text)
			}
		}},
		{"reblog stores the original's text", status(func(m map[string]any) {
			var orig map[string]any
			json.Unmarshal([]byte(statusJSON("5", "carol", "<p>original #rust</p>")), &orig)
			orig["tags"] = []map[string]string{{"name": "rust"}}
			m["content"] = ""
			m["reblog"] = orig
		}), "msg:109", func(t *testing.T, m stream.Message) {
			if m.Text != "original #rust" || m.User != "alice@remote.example" || !slices.Contains(m.Hashtags, "rust") {
				t.Errorf("got text %q user %q hashtags %v", m.Text, m.User, m.Hashtags)
			}
		}},
		{"quote", status(func(m map[string]any) {
			var q map[string]any
			json.Unmarshal([]byte(statusJSON("6", "dave", `<p>quoted <a href="https://q.example/">link</a></p>`)), &q)
			m["quote"] = map[string]any{"state": "accepted", "quoted_status": q}
		}), "msg:109", func(t *testing.T, m stream.Message) {
			if m.Quoted != "quoted link" || !slices.Contains(m.URLs, "https://q.example/") {
				t.Errorf("got quoted %q urls %v", m.Quoted, m.URLs)
			}
		}},
		{"a shallow quote is ignored", status(func(m map[string]any) { m["quote"] = map[string]any{"state": "pending", "quoted_status": nil} }), "msg:109", nil},
		{"null language", status(func(m map[string]any) { m["language"] = nil }), "msg:109", nil},
		{"media only", status(func(m map[string]any) { m["content"] = "" }), "skip:missing_text", nil},
		{"no account", status(func(m map[string]any) { delete(m, "account") }), "skip:missing_user", nil},
		{"no id", status(func(m map[string]any) { m["id"] = "" }), "skip:missing_id", nil},
		{"no date", status(func(m map[string]any) { m["created_at"] = "" }), "skip:missing_created_at", nil},
		{"bad date", status(func(m map[string]any) { m["created_at"] = "yesterday" }), "skip:bad_created_at", nil},
		{"type error", `{"id":109,"content":"x"}`, "skip:invalid_tweet", nil},
		{"not json", `undefined`, "skip:invalid_json", nil},
		{"truncated", `{"id":"1"`, "skip:invalid_json", nil},
		{"invalid utf-8", "{\"id\":\"\xff\"}", "skip:invalid_utf8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := decodeMastodonEvent("update", []byte(tt.data))
			if got := streamtest.RecordSummary(rec); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, rec.Message)
			}
		})
	}
	for name, want := range map[string]string{"delete": "notice:delete", "filters_changed": "notice:other", "announcement": "notice:other", "message": "notice:other"} {
		if got := streamtest.RecordSummary(decodeMastodonEvent(name, []byte("1"))); got != want {
			t.Errorf("event %s: got %s, want %s", name, got, want)
		}
	}
}

func TestMastodonSource_EmitsStatusesNoticesAndSkipsInStreamOrder(t *testing.T) {
	body := ":thump\n" +
		"event: update\ndata: " + statusJSON("1", "alice", "<p>golang <b>rocks</b></p>") + "\n\n" +
		"event: delete\ndata: 99\n\n" +
		"event: update\ndata: {not json\n\n" +
		"event: status.update\r\ndata: " + statusJSON("2", "bob@x.example", "<p>edited</p>") + "\r\n\r\n" +
		"event: filters_changed\ndata: undefined\n\n" +
		"event: update\ndata: " + statusJSON("3", "carol", "") + "\n\n" +
		"event: update\ndata: {\"id\":"
	srv := streamtest.NewBearerServer(t, mastodonPath, nil, sendSSE(body), thumping(20*time.Millisecond, ""))
	rec := &streamtest.Recorder{}
	logs := &syncbuf.Buffer{}
	src := newTestMastodonSource(t, srv.URL, &streamtest.Clock{Auto: true}, logs)
	stop := streamtest.RunSource(t, src, rec.Emit)
	streamtest.Eventually(t, "the second connection", func() bool { return src.Status().Connects == 2 })
	stop()
	want := []string{"msg:1", "notice:delete", "skip:invalid_json", "msg:2", "notice:other", "skip:missing_text", "skip:partial_event"}
	if got := rec.Summary(); !slices.Equal(got, want) {
		t.Errorf("records:\n got %q\nwant %q", got, want)
	}
	if msgs := rec.Messages(); len(msgs) != 2 || msgs[0].Text != "golang rocks" || msgs[1].User != "bob@x.example" || msgs[0].Source != "mastodon" {
		t.Errorf("messages: got %+v", msgs)
	}
	if _, maxLive, _ := srv.Stats(); maxLive != 1 {
		t.Errorf("connections open at once: got %d, want 1", maxLive)
	}
	streamtest.AssertNoToken(t, logs.String())
}

func TestMastodonSource_WrongTokenIsRejectedWith401(t *testing.T) {
	srv := streamtest.NewBearerServer(t, mastodonPath, nil, thumping(20*time.Millisecond, ""))
	srv.Check = streamtest.Bearer("the-right-token")
	clock := &streamtest.Clock{}
	logs := &syncbuf.Buffer{}
	src := newTestMastodonSource(t, srv.URL, clock, logs)
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	streamtest.Eventually(t, "the rejected state", func() bool { return src.Status().State == stream.StateRejected })
	if st := src.Status(); st.LastError != "credentials rejected (401)" || st.RetryIn != streamtest.HTTPInitial {
		t.Errorf("status: got %q retry in %v, want \"credentials rejected (401)\" and %v", st.LastError, st.RetryIn, streamtest.HTTPInitial)
	}
	streamtest.AssertNoToken(t, logs.String())
}

func TestMastodonSource_ReconnectsAfterDropsOneConnectionAtATime(t *testing.T) {
	one := func(id string) http.HandlerFunc {
		return sendSSE("event: update\ndata: " + statusJSON(id, "a", "<p>x</p>") + "\n\n")
	}
	srv := streamtest.NewBearerServer(t, mastodonPath, nil, one("1"), streamtest.Status(http.StatusBadGateway, "<html>"), one("2"), one("3"), thumping(20*time.Millisecond, ""))
	clock := &streamtest.Clock{Auto: true}
	rec := &streamtest.Recorder{}
	src := newTestMastodonSource(t, srv.URL, clock, nil)
	streamtest.RunSource(t, src, rec.Emit)
	streamtest.Eventually(t, "the last connection", func() bool { return src.Status().Connects == 4 && src.Status().State == stream.StateConnected })
	if _, maxLive, _ := srv.Stats(); maxLive != 1 {
		t.Errorf("connections open at once: got %d, want 1", maxLive)
	}
	if got, want := clock.Recorded(), []time.Duration{0, streamtest.HTTPInitial, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("waits: got %v, want %v", got, want)
	}
	if got := len(rec.Messages()); got != 3 {
		t.Errorf("messages: got %d, want 3", got)
	}
}

func TestMastodonSource_HeartbeatsKeepAQuietStreamAlive(t *testing.T) {
	// Heartbeats every 20 ms against a 1 s stall timeout, for longer than the timeout: the
	// connection must stay up. The server counts its heartbeats, so the test does not depend
	// on how fast this machine is.
	sent := make(chan struct{}, 1000)
	srv := streamtest.NewBearerServer(t, mastodonPath, nil, func(w http.ResponseWriter, r *http.Request) {
		sendSSE("")(w, r)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				fmt.Fprint(w, ":thump\n")
				w.(http.Flusher).Flush()
				sent <- struct{}{}
			}
		}
	})
	src := newTestMastodonSource(t, srv.URL, &streamtest.Clock{Auto: true}, nil, func(c *Config) { c.StallTimeout = time.Second })
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	start := time.Now()
	for n := 0; n < 100 || time.Since(start) < 1500*time.Millisecond; n++ {
		select {
		case <-sent:
		case <-time.After(10 * time.Second):
			t.Fatal("the server stopped sending heartbeats")
		}
	}
	if n, _, _ := srv.Stats(); n != 1 {
		t.Errorf("stream requests: got %d, want 1 (heartbeats reset the stall timer)", n)
	}
}

func TestMastodonSource_SilenceIsAStall(t *testing.T) {
	srv := streamtest.NewBearerServer(t, mastodonPath, nil, func(w http.ResponseWriter, r *http.Request) {
		sendSSE("")(w, r)
		<-r.Context().Done()
	}, thumping(20*time.Millisecond, ""))
	src := newTestMastodonSource(t, srv.URL, &streamtest.Clock{Auto: true}, nil, func(c *Config) { c.StallTimeout = 300 * time.Millisecond })
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	streamtest.Eventually(t, "a second connection", func() bool { return src.Status().Connects == 2 })
	if st := src.Status(); st.LastError != "stalled: no data for 300ms" {
		t.Errorf("last error: got %q, want the stall", st.LastError)
	}
}

func TestMastodonSource_SendsTheTokenOnlyInTheHeader(t *testing.T) {
	srv := streamtest.NewBearerServer(t, mastodonPath, nil, thumping(20*time.Millisecond, ""))
	src := newTestMastodonSource(t, srv.URL+"/", &streamtest.Clock{Auto: true}, nil)
	streamtest.RunSource(t, src, (&streamtest.Recorder{}).Emit)
	streamtest.Eventually(t, "connected", func() bool { return src.Status().State == stream.StateConnected })
	q := srv.LastRawQuery()
	if q != "" {
		t.Errorf("query: got %q, want none (the token goes in the Authorization header)", q)
	}
	if err := src.Run(context.Background(), (&streamtest.Recorder{}).Emit); err == nil {
		t.Error("second Run: got nil, want an error")
	}
}

func TestNewSource_ReportsEveryProblem(t *testing.T) {
	_, err := NewSource(Config{BaseURL: "https://user:pw@m.example", StallTimeout: -1, MaxEvent: -1})
	if err == nil {
		t.Fatal("NewSource: got nil error")
	}
	for _, want := range []string{"Config.BaseURL must not contain user info", "Config.Token is empty", "StallTimeout is negative", "MaxEvent is negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "pw") {
		t.Errorf("error quotes the URL's password: %v", err)
	}
}
