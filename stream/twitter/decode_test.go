package twitter

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gotwitter "github.com/dghubble/go-twitter/twitter"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/internal/streamtest"
)

// decodeCreated is the created_at every test tweet carries unless it says otherwise.
const decodeCreated = `"created_at":"Wed Oct 10 20:19:24 +0000 2018"`

var decodeCreatedAt = time.Date(2018, 10, 10, 20, 19, 24, 0, time.UTC)

func TestDecodeTweet(t *testing.T) {
	tests := []struct {
		name       string
		json       string
		want       stream.Message
		wantReason string
	}{
		{
			name: "plain tweet, created_at converted to UTC",
			json: `{"created_at":"Wed Oct 10 22:19:24 +0200 2018","id_str":"10","text":"hello","lang":"en","user":{"screen_name":"alice"}}`,
			want: stream.Message{ID: "10", User: "alice", CreatedAt: decodeCreatedAt, Text: "hello", Lang: "en", Source: "twitter"},
		},
		{
			name: "truncated: extended_tweet.full_text and its entities",
			json: `{` + decodeCreated + `,"id_str":"11","text":"the start…","truncated":true,"user":{"screen_name":"alice"},
				"entities":{"urls":[{"expanded_url":"https://twitter.com/i/web/status/11","display_url":"twitter.com/i/web/status/1…"}]},
				"extended_tweet":{"full_text":"the start and the end #golang","entities":{"hashtags":[{"text":"golang"}]},
				"extended_entities":{"media":[{"expanded_url":"https://twitter.com/alice/status/11/photo/1","display_url":"pic.twitter.com/x"}]}}}`,
			want: stream.Message{ID: "11", User: "alice", CreatedAt: decodeCreatedAt, Text: "the start and the end #golang", Source: "twitter",
				Hashtags: []string{"golang"},
				URLs: []string{"https://twitter.com/i/web/status/11", "twitter.com/i/web/status/1…",
					"https://twitter.com/alice/status/11/photo/1", "pic.twitter.com/x"}},
		},
		{
			name: "extended mode: full_text",
			json: `{` + decodeCreated + `,"id_str":"12","full_text":"all of it","user":{"screen_name":"alice"}}`,
			want: stream.Message{ID: "12", User: "alice", CreatedAt: decodeCreatedAt, Text: "all of it", Source: "twitter"},
		},
		{
			name: "retweet: the original's full text, entities of both",
			json: `{` + decodeCreated + `,"id_str":"13","text":"RT @bob: the orig…","user":{"screen_name":"alice"},
				"entities":{"user_mentions":[{"screen_name":"bob"}]},
				"retweeted_status":{` + decodeCreated + `,"id_str":"1","text":"the orig…","truncated":true,"user":{"screen_name":"bob"},
				"extended_tweet":{"full_text":"the original, whole #go @carol","entities":{"hashtags":[{"text":"go"}],"user_mentions":[{"screen_name":"carol"}]}}}}`,
			want: stream.Message{ID: "13", User: "alice", CreatedAt: decodeCreatedAt, Text: "the original, whole #go @carol", Source: "twitter",
				Hashtags: []string{"go"}, Mentions: []string{"bob", "carol"}},
		},
		{
			name: "quote: own text, quoted full text and its entities",
			json: `{` + decodeCreated + `,"id_str":"14","text":"look at this","user":{"screen_name":"alice"},
				"quoted_status":{` + decodeCreated + `,"id_str":"2","text":"quoted #thing http://t.co/x","user":{"screen_name":"bob"},
				"entities":{"hashtags":[{"text":"thing"}],"urls":[{"expanded_url":"https://example.com/a","display_url":"example.com/a"}]}}}`,
			want: stream.Message{ID: "14", User: "alice", CreatedAt: decodeCreatedAt, Text: "look at this", Source: "twitter",
				Quoted: "quoted #thing http://t.co/x", Hashtags: []string{"thing"}, URLs: []string{"https://example.com/a", "example.com/a"}},
		},
		{
			name: "retweet of a quote: quoted text from the original",
			json: `{` + decodeCreated + `,"id_str":"15","text":"RT @bob: comment","user":{"screen_name":"alice"},
				"retweeted_status":{` + decodeCreated + `,"id_str":"3","text":"comment","user":{"screen_name":"bob"},
				"quoted_status":{` + decodeCreated + `,"id_str":"4","text":"the quoted one","user":{"screen_name":"carol"}}}}`,
			want: stream.Message{ID: "15", User: "alice", CreatedAt: decodeCreatedAt, Text: "comment", Source: "twitter", Quoted: "the quoted one"},
		},
		{
			name: "entities: hashtags, mentions, urls and media, each once",
			json: `{` + decodeCreated + `,"id_str":"16","text":"#a #a @b x","user":{"screen_name":"alice"},
				"entities":{"hashtags":[{"text":"a"},{"text":"a"}],"user_mentions":[{"screen_name":"b"}],
				"urls":[{"expanded_url":"http://www.example.com/x","display_url":"example.com/x"}],
				"media":[{"expanded_url":"https://twitter.com/p/1","display_url":"pic.twitter.com/1"}]},
				"extended_entities":{"media":[{"expanded_url":"https://twitter.com/p/1","display_url":"pic.twitter.com/1"}]}}`,
			want: stream.Message{ID: "16", User: "alice", CreatedAt: decodeCreatedAt, Text: "#a #a @b x", Source: "twitter",
				Hashtags: []string{"a"}, Mentions: []string{"b"},
				URLs: []string{"http://www.example.com/x", "example.com/x", "https://twitter.com/p/1", "pic.twitter.com/1"}},
		},
		{
			name: "Twitter's HTML escaping is undone once",
			json: `{` + decodeCreated + `,"id_str":"17","text":"a &lt;b&gt; &amp; c &amp;lt; d &eacute;","user":{"screen_name":"alice"}}`,
			want: stream.Message{ID: "17", User: "alice", CreatedAt: decodeCreatedAt, Text: "a <b> & c &lt; d &eacute;", Source: "twitter"},
		},
		{
			name: "UTF-8 kept intact",
			json: `{` + decodeCreated + `,"id_str":"18","text":"touché 名前 😋","user":{"screen_name":"alice"}}`,
			want: stream.Message{ID: "18", User: "alice", CreatedAt: decodeCreatedAt, Text: "touché 名前 😋", Source: "twitter"},
		},
		{name: "missing id", json: `{` + decodeCreated + `,"text":"x","user":{"screen_name":"alice"}}`, wantReason: "missing_id"},
		{name: "missing user", json: `{` + decodeCreated + `,"id_str":"1","text":"x"}`, wantReason: "missing_user"},
		{name: "user without screen name", json: `{` + decodeCreated + `,"id_str":"1","text":"x","user":{"id":5}}`, wantReason: "missing_user"},
		{name: "missing text", json: `{` + decodeCreated + `,"id_str":"1","text":"  ","user":{"screen_name":"a"}}`, wantReason: "missing_text"},
		{name: "retweet without any text", json: `{` + decodeCreated + `,"id_str":"1","user":{"screen_name":"a"},"retweeted_status":{"id_str":"2"}}`, wantReason: "missing_text"},
		{name: "missing created_at", json: `{"id_str":"1","text":"x","user":{"screen_name":"a"}}`, wantReason: "missing_created_at"},
		{name: "bad created_at", json: `{"created_at":"2018-10-10T20:19:24Z","id_str":"1","text":"x","user":{"screen_name":"a"}}`, wantReason: "bad_created_at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tw gotwitter.Tweet
			if err := json.Unmarshal([]byte(tc.json), &tw); err != nil {
				t.Fatalf("test JSON: %v", err)
			}
			got, reason := DecodeTweet(&tw, "twitter")
			if reason != tc.wantReason {
				t.Fatalf("reason = %q, want %q", reason, tc.wantReason)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("message =\n%#v\nwant\n%#v", got, tc.want)
			}
			// DecodeLine must build the same message from the same JSON.
			line := `{"retweet_count":0,` + tc.json[1:]
			rec := DecodeLine([]byte(line), "twitter")
			if tc.wantReason != "" {
				if rec.Kind != stream.KindSkipped || rec.Reason != tc.wantReason {
					t.Errorf("DecodeLine = %s, want skip:%s", streamtest.RecordSummary(rec), tc.wantReason)
				}
				return
			}
			if rec.Kind != stream.KindMessage || !reflect.DeepEqual(rec.Message, tc.want) {
				t.Errorf("DecodeLine = %s %#v, want the same message", streamtest.RecordSummary(rec), rec.Message)
			}
		})
	}
	if _, reason := DecodeTweet(nil, "twitter"); reason != "invalid_tweet" {
		t.Errorf("DecodeTweet(nil) reason = %q, want invalid_tweet", reason)
	}
}

func TestDecodeLine(t *testing.T) {
	tweet := `{` + decodeCreated + `,"id_str":"1","text":"hi","user":{"screen_name":"a"},"retweet_count":0}`
	tests := []struct {
		name        string
		line        string
		want        string // recordSummary form
		wantMissing int64
	}{
		{name: "tweet", line: tweet, want: "msg:1"},
		{name: "tweet with surrounding whitespace", line: " \n" + tweet + "\t", want: "msg:1"},
		{name: "delete", line: `{"delete":{"status":{"id":1,"id_str":"1","user_id":3,"user_id_str":"3"}}}`, want: "notice:delete"},
		{name: "delete with null body", line: `{"delete":null}`, want: "notice:delete"},
		{name: "scrub_geo", line: `{"scrub_geo":{"user_id":1,"user_id_str":"1","up_to_status_id":2,"up_to_status_id_str":"2"}}`, want: "notice:scrub_geo"},
		{name: "limit", line: `{"limit":{"track":1234,"timestamp_ms":"1539202764000"}}`, want: "notice:limit", wantMissing: 1234},
		{name: "limit with negative count", line: `{"limit":{"track":-5}}`, want: "notice:limit"},
		{name: "limit with a string count", line: `{"limit":{"track":"1234"}}`, want: "skip:invalid_notice"},
		{name: "status_withheld", line: `{"status_withheld":{"id":1,"user_id":2,"withheld_in_countries":["DE"]}}`, want: "notice:status_withheld"},
		{name: "user_withheld", line: `{"user_withheld":{"id":2,"withheld_in_countries":["DE"]}}`, want: "notice:user_withheld"},
		{name: "disconnect", line: `{"disconnect":{"code":4,"stream_name":"x","reason":"stall"}}`, want: "notice:disconnect"},
		{name: "warning", line: `{"warning":{"code":"FALLING_BEHIND","message":"behind","percent_full":60}}`, want: "notice:warning"},
		{name: "direct_message", line: `{"direct_message":{"id":1}}`, want: "notice:other"},
		{name: "friends", line: `{"friends":[1,2,3]}`, want: "notice:other"},
		{name: "event", line: `{"event":"favorite"}`, want: "notice:other"},
		{name: "unknown object", line: `{"something":"new"}`, want: "notice:other"},
		{name: "a notice whose body is not an object", line: `{"delete":5}`, want: "skip:invalid_notice"},
		{name: "retweet_count wins over notice keys, as in go-twitter", line: `{"delete":{},` + tweet[1:], want: "msg:1"},
		{name: "invalid JSON", line: `{"retweet_count":0,"text":`, want: "skip:invalid_json"},
		{name: "trailing garbage", line: tweet + ` x`, want: "skip:invalid_json"},
		{name: "array", line: `[1,2]`, want: "skip:invalid_json"},
		{name: "null", line: `null`, want: "skip:invalid_json"},
		{name: "string", line: `"tweet"`, want: "skip:invalid_json"},
		{name: "empty", line: ``, want: "skip:invalid_json"},
		{name: "id_str a number", line: strings.Replace(tweet, `"id_str":"1"`, `"id_str":1`, 1), want: "skip:invalid_tweet"},
		{name: "text a number", line: strings.Replace(tweet, `"text":"hi"`, `"text":7`, 1), want: "skip:invalid_tweet"},
		{name: "screen_name a number", line: strings.Replace(tweet, `"screen_name":"a"`, `"screen_name":42`, 1), want: "skip:invalid_tweet"},
		{name: "entities a string", line: strings.Replace(tweet, `"retweet_count"`, `"entities":"x","retweet_count"`, 1), want: "skip:invalid_tweet"},
		{name: "a number in a retweeted original", line: strings.Replace(tweet, `"retweet_count"`, `"retweeted_status":{"id_str":2},"retweet_count"`, 1), want: "skip:invalid_tweet"},
		{name: "invalid UTF-8", line: strings.Replace(tweet, "hi", "h\xffi", 1), want: "skip:invalid_utf8"},
		{name: "missing user", line: `{` + decodeCreated + `,"id_str":"1","text":"hi","retweet_count":0}`, want: "skip:missing_user"},
		{name: "missing text", line: `{` + decodeCreated + `,"id_str":"1","user":{"screen_name":"a"},"retweet_count":0}`, want: "skip:missing_text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := DecodeLine([]byte(tc.line), "replay")
			if got := streamtest.RecordSummary(rec); got != tc.want {
				t.Errorf("DecodeLine = %s, want %s", got, tc.want)
			}
			if rec.LimitMissed != tc.wantMissing {
				t.Errorf("LimitMissed = %d, want %d", rec.LimitMissed, tc.wantMissing)
			}
			if rec.Kind == stream.KindMessage && rec.Message.Source != "replay" {
				t.Errorf("Source = %q, want replay", rec.Message.Source)
			}
		})
	}
}

// TestDecodeLine_AgreesWithGoTwitter sends lines through go-twitter's own stream reader and
// decoder, and checks that every line DecodeLine accepts (the only lines the Twitter source
// lets through to go-twitter) comes out as the same record.
func TestDecodeLine_AgreesWithGoTwitter(t *testing.T) {
	lines := [][]byte{
		[]byte(tweetLine("1", "alice", "hello")),
		[]byte(`{"delete":{"status":{"id":1,"id_str":"1"}}}`),
		[]byte(`{"delete":null}`),
		[]byte(`{"scrub_geo":{"user_id":1}}`),
		[]byte(`{"limit":{"track":42}}`),
		[]byte(`{"limit":null}`),
		[]byte(`{"status_withheld":{"id":1}}`),
		[]byte(`{"user_withheld":{"id":1}}`),
		[]byte(`{"disconnect":{"code":7}}`),
		[]byte(`{"warning":{"code":"FALLING_BEHIND"}}`),
		[]byte(`{"friends":[1]}`),
		[]byte(`{"event":"follow"}`),
		[]byte(`{"unknown":1}`),
	}
	lines = append(lines, testdataLines(t, false)...)
	var body bytes.Buffer
	var want []stream.Record
	for _, l := range lines {
		rec := DecodeLine(l, SourceName)
		if rec.Kind == stream.KindSkipped {
			t.Fatalf("test line rejected (%s): %.80s", rec.Reason, l)
		}
		want = append(want, rec)
		body.Write(l)
		body.WriteString("\r\n")
	}

	var served atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Swap(true) { // go-twitter reconnects by itself after a body ends; stop it
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write(body.Bytes())
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	client := gotwitter.NewClient(&http.Client{Transport: rewriteHost{base: base}})
	gts, err := client.Streams.Filter(&gotwitter.StreamFilterParams{Track: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []stream.Record
	for msg := range gts.Messages {
		if rec, ok := goTwitterRecord(msg); ok {
			got = append(got, rec)
		}
	}
	gts.Stop()
	if len(got) != len(want) {
		t.Fatalf("go-twitter gave %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("line %d: go-twitter path = %s %+v\nDecodeLine       = %s %+v", i, streamtest.RecordSummary(got[i]), got[i], streamtest.RecordSummary(want[i]), want[i])
		}
	}
}

// testdataLines returns the tweets of ../shared/testdata/twitter.json (beside the repository)
// as compact stream lines, skipping the test when the file is absent.
func testdataLines(tb testing.TB, required bool) [][]byte {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
	data, err := os.ReadFile(filepath.Join(dir, "..", "shared", "testdata", "twitter.json"))
	if errors.Is(err, os.ErrNotExist) {
		if required {
			tb.Skip("../shared/testdata/twitter.json is absent")
		}
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	var file struct {
		Statuses []json.RawMessage `json:"statuses"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		tb.Fatal(err)
	}
	lines := make([][]byte, 0, len(file.Statuses))
	for _, s := range file.Statuses {
		var b bytes.Buffer
		if err := json.Compact(&b, s); err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, b.Bytes())
	}
	return lines
}

func BenchmarkDecodeLine(b *testing.B) {
	lines := testdataLines(b, true)
	var size int64
	for _, l := range lines {
		size += int64(len(l))
	}
	b.Run("DecodeLine", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range lines {
				DecodeLine(l, "bench")
			}
		}
	})
	// go-twitter's getMessage: a map to find the type, then the struct (its error ignored).
	goTwitterDecode := func(l []byte) {
		var data map[string]any
		if json.Unmarshal(l, &data) != nil {
			return
		}
		if _, ok := data["retweet_count"]; ok {
			tw := new(gotwitter.Tweet)
			_ = json.Unmarshal(l, tw)
			DecodeTweet(tw, "bench")
		}
	}
	b.Run("GoTwitterDoubleDecode", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range lines {
				goTwitterDecode(l)
			}
		}
	})
	b.Run("GoTwitterStructOnly", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range lines {
				var tw gotwitter.Tweet
				_ = json.Unmarshal(l, &tw)
			}
		}
	})
}
