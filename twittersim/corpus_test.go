package twittersim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Three tweets and a notice: the first and third carry "golang" (in the text, and only in the
// retweeted original's hashtags), the second does not.
const corpusNDJSON = `{"id":1,"id_str":"1","text":"I love Golang!","retweet_count":0,"user":{"id":10,"id_str":"10","screen_name":"ana"},"entities":{"hashtags":[]}}

{"id":2,"id_str":"2","text":"nothing to see","retweet_count":0,"user":{"id":11,"id_str":"11","screen_name":"bo"}}
{"delete":{"status":{"id":7,"id_str":"7","user_id":10,"user_id_str":"10"}}}
{"id":3,"id_str":"3","text":"RT @ana: so good","retweet_count":5,"user":{"id":12,"id_str":"12","screen_name":"cy"},"retweeted_status":{"id":4,"id_str":"4","text":"so good #GoLang","retweet_count":5,"user":{"id":10,"id_str":"10","screen_name":"ana"},"entities":{"hashtags":[{"text":"GoLang","indices":[8,15]}]}}}
`

func TestLoadCorpus_Formats(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(corpusNDJSON, "\n\n", "\n")), "\n")
	tests := []struct {
		name, content string
	}{
		{"ndjson", corpusNDJSON},
		{"json array", "[\n" + strings.Join(lines, ",\n") + "\n]"},
		{"search result", `{"statuses": [` + strings.Join(lines, ",") + `], "search_metadata": {}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := loadCorpus(writeFile(t, "corpus", tt.content))
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != 4 {
				t.Fatalf("items: got %d, want 4", len(items))
			}
			for i, want := range []string{"1", "2", "", "3"} {
				got := ""
				if items[i].msg != nil {
					got = items[i].msg.ID
				}
				if got != want {
					t.Errorf("item %d: got tweet id %q, want %q", i, got, want)
				}
				if bytes.ContainsAny(items[i].line, "\r\n") {
					t.Errorf("item %d is not on one line: %q", i, items[i].line)
				}
			}
			if got := items[3].msg.Hashtags; len(got) != 1 || got[0] != "GoLang" {
				t.Errorf("retweet hashtags: got %v, want the original's [GoLang]", got)
			}
			if got := items[3].msg.Text; got != "so good #GoLang" {
				t.Errorf("retweet text: got %q, want the original's text", got)
			}
		})
	}
}

func TestLoadCorpus_ReportsProblems(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"empty file", "  \n", "no messages"},
		{"invalid line", "{\"id\":1}\n{oops\n", "line 2: not a JSON object"},
		{"not an object", "[1]", "message[0]: not a JSON object"},
		{"statuses not an array", `{"statuses": {"id": 1}}`, "statuses is not a JSON array"},
		{"tweet of the wrong shape", `{"id":"one","retweet_count":0}`, "line 1: not a v1.1 tweet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "bad.json", tt.content)
			_, err := loadCorpus(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, path, tt.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "absent.json")
		_, err := New(Config{Credentials: testCreds, Corpus: path})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("got %v, want an error naming %s", err, path)
		}
	})
}

func TestServer_ReplaysCorpusInOrderFilteredByTrack(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run(map[bool]string{false: "once", true: "looped"}[loop], func(t *testing.T) {
			s, ts := newSim(t, Config{Rate: 1000, KeepAlive: time.Hour, Loop: loop,
				Corpus: writeFile(t, "corpus.ndjson", corpusNDJSON)})
			lr := newLineReader(openStream(t, ts, testCreds, "golang").Body)
			want := []string{`"id_str":"1"`, `"delete"`, `"id_str":"3"`}
			if loop {
				want = append(want, want...)
			}
			for i, w := range want {
				if got := lr.nextData(t); !bytes.Contains(got, []byte(w)) {
					t.Fatalf("message %d: got %s, want one with %s", i, got, w)
				}
			}
			if !loop {
				// The corpus is exhausted: the next line is whatever Send writes.
				waitFor(t, "the corpus to run out", func() bool { return s.Stats().Messages == 2 })
				s.Send([]byte("marker"))
				if got := lr.nextData(t); string(got) != "marker" {
					t.Fatalf("after the corpus: got %s, want the marker", got)
				}
			}
		})
	}
}

func TestServer_ReplaysSharedTwitterJSON(t *testing.T) {
	path := sharedTwitterJSON(t)
	items, err := loadCorpus(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 100 {
		t.Fatalf("items: got %d, want 100", len(items))
	}
	for i, it := range items {
		if it.msg == nil || it.msg.User == "" || it.msg.ID == "" || !utf8.Valid(it.line) {
			t.Fatalf("item %d: got %+v, want a tweet with a user and an id", i, it.msg)
		}
	}

	// Most of these tweets are Japanese, which track does not word-match; 58 of them mention
	// @shiawaseomamori, and a mention counts.
	s, ts := newSim(t, Config{Rate: 5000, KeepAlive: time.Hour, Corpus: path})
	lr := newLineReader(openStream(t, ts, testCreds, "ShiawaseOmamori").Body)
	for i := range 20 {
		tw := decodeTweet(t, lr.nextData(t))
		if !strings.Contains(texts(tw), "shiawaseomamori") {
			t.Fatalf("replayed tweet %d (%s) does not carry the track word", i, tw.IDStr)
		}
	}
	waitFor(t, "the corpus to run out", func() bool { return s.Stats().Messages >= 20 })
	if got := s.Stats().Messages; got > 58 {
		t.Errorf("messages: got %d, want at most the 58 tweets that mention the term", got)
	}
}
