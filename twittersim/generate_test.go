package twittersim

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestGenerator_IsDeterministic(t *testing.T) {
	clock := func() time.Time { return time.Date(2014, 8, 31, 0, 29, 15, 0, time.UTC) }
	ph := [][]string{{"golang"}, {"twitter", "api"}}
	a, b := newGenerator(42, clock), newGenerator(42, clock)
	other := newGenerator(43, clock)
	same := true
	for i := range 50 {
		la, lb := marshalLine(a.next(ph)), marshalLine(b.next(ph))
		if !bytes.Equal(la, lb) {
			t.Fatalf("tweet %d differs for the same seed:\n%s\n%s", i, la, lb)
		}
		if !bytes.Equal(la, marshalLine(other.next(ph))) {
			same = false
		}
	}
	if same {
		t.Error("seeds 42 and 43 gave the same tweets, want different ones")
	}
}

// The synthetic stream must exercise what real tweets do: every shape the decoder handles and
// UTF-8 beyond ASCII, always valid.
func TestGenerator_CoversTweetShapes(t *testing.T) {
	g := newGenerator(1, time.Now)
	ph := [][]string{{"golang"}, {"café"}}
	counts := map[string]int{}
	for range 1000 {
		tw := g.next(ph)
		line := marshalLine(tw)
		if !utf8.Valid(line) {
			t.Fatalf("invalid UTF-8: %q", line)
		}
		if !bytes.Contains(line, []byte(`"retweet_count":`)) {
			t.Fatalf("no retweet_count (go-twitter would not see a tweet): %s", line)
		}
		if tw.ID < 1<<53 || tw.IDStr == "" {
			t.Fatalf("id %d (%q): want above 2^53, as real ids are", tw.ID, tw.IDStr)
		}
		if _, err := time.Parse(createdAtLayout, tw.CreatedAt); err != nil {
			t.Fatalf("created_at %q: %v", tw.CreatedAt, err)
		}
		if utf8.RuneCountInString(tw.Text) > 140 {
			t.Fatalf("text over 140 characters: %q", tw.Text)
		}
		all := texts(tw)
		switch {
		case tw.RetweetedStatus != nil:
			counts["retweet"]++
		case tw.QuotedStatus != nil:
			counts["quote"]++
		case tw.Truncated:
			counts["extended"]++
			if tw.ExtendedTweet == nil || utf8.RuneCountInString(tw.ExtendedTweet.FullText) <= 140 {
				t.Fatalf("truncated tweet without a longer extended_tweet: %s", line)
			}
		}
		if strings.Contains(all, "golang") || strings.Contains(all, "café") {
			counts["matching"]++
		}
		if len(tw.Entities.Hashtags) > 0 {
			counts["hashtag"]++
		}
		if len(tw.Entities.UserMentions) > 0 {
			counts["mention"]++
		}
		if len(tw.Entities.URLs) > 0 {
			counts["url"]++
		}
		if tw.Lang == "ja" {
			counts["japanese"]++
		}
		for _, r := range tw.Text {
			if r >= 0x1F300 {
				counts["emoji"]++
				break
			}
		}
		for _, h := range tw.Entities.Hashtags {
			if !strings.HasPrefix(string([]rune(tw.Text)[h.Indices[0]:h.Indices[1]]), "#"+h.Text) {
				t.Fatalf("hashtag %q indices %v do not point at it in %q", h.Text, h.Indices, tw.Text)
			}
		}
	}
	for _, k := range []string{"retweet", "quote", "extended", "matching", "hashtag", "mention", "url", "japanese", "emoji"} {
		if counts[k] < 20 {
			t.Errorf("%s: got %d of 1000 tweets, want at least 20", k, counts[k])
		}
	}
	if counts["matching"] > 950 {
		t.Errorf("matching: got %d of 1000, want some candidates that track filters out", counts["matching"])
	}
}
