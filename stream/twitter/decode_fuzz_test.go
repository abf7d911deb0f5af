package twitter

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dghubble/go-twitter/twitter"

	"github.com/streammatch/streammatch/stream"
)

// FuzzDecodeLine checks that DecodeLine never panics, that its result is consistent with its
// kind, and that whenever it accepts a tweet, go-twitter's decoding of the same bytes gives the
// same stream.Message through DecodeTweet (the Twitter source relies on that: it validates with
// DecodeLine, then converts go-twitter's Tweet).
//
//	go test ./stream -run '^$' -fuzz FuzzDecodeLine -fuzztime 30s
func FuzzDecodeLine(f *testing.F) {
	tweet := `{` + decodeCreated + `,"id_str":"1","text":"hi &amp; bye","user":{"screen_name":"a"},"retweet_count":0,` +
		`"entities":{"hashtags":[{"text":"go"}],"urls":[{"expanded_url":"http://x.com/a","display_url":"x.com/a"}]},` +
		`"extended_tweet":{"full_text":"hi and more"},"quoted_status":{"id_str":"2","text":"q","user":{"screen_name":"b"}},` +
		`"retweeted_status":{"id_str":"3","full_text":"orig","user":{"screen_name":"c"}}}`
	for _, seed := range []string{
		tweet,
		`{"delete":{"status":{"id":1}}}`, `{"limit":{"track":12}}`, `{"limit":{"track":"x"}}`, `{"warning":{}}`,
		`{"disconnect":null}`, `{"scrub_geo":5}`, `{"status_withheld":{}}`, `{"user_withheld":{}}`,
		`{"retweet_count":0,"id_str":1}`, `{"retweet_count":0}`, `[]`, `null`, ``, `{`, "{\"text\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	for i, l := range testdataLines(f, false) {
		if i%10 == 0 {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		rec := DecodeLine(line, "fuzz")
		switch rec.Kind {
		case stream.KindMessage:
			m := rec.Message
			if m.ID == "" || m.User == "" || strings.TrimSpace(m.Text) == "" || m.Source != "fuzz" {
				t.Fatalf("message with an empty required field: %+v", m)
			}
			if m.CreatedAt.Location() != time.UTC {
				t.Fatalf("CreatedAt not in UTC: %v", m.CreatedAt)
			}
			if !utf8.ValidString(m.Text) || !utf8.ValidString(m.Quoted) {
				t.Fatalf("invalid UTF-8 in a message")
			}
			var tw twitter.Tweet
			_ = json.Unmarshal(line, &tw) // go-twitter ignores this error, so do we
			got, reason := DecodeTweet(&tw, "fuzz")
			if reason != "" || !reflect.DeepEqual(got, m) {
				t.Fatalf("go-twitter path disagrees:\nDecodeTweet: %q %#v\nDecodeLine:  %#v", reason, got, m)
			}
		case stream.KindNotice:
			if rec.Notice == "" || rec.LimitMissed < 0 || rec.LimitMissed > 0 && rec.Notice != "limit" {
				t.Fatalf("inconsistent notice: %+v", rec)
			}
		case stream.KindSkipped:
			if rec.Reason == "" || rec.Message.ID != "" {
				t.Fatalf("inconsistent skip: %+v", rec)
			}
		default:
			t.Fatalf("unknown kind %d", rec.Kind)
		}
	})
}
