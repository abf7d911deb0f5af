package stream

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseTrack(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{name: "one phrase", filter: "twitter", want: []string{"twitter"}},
		{name: "phrases are trimmed", filter: " twitter api ,\tgolang ", want: []string{"twitter api", "golang"}},
		{name: "inner spaces stay", filter: "twitter  api", want: []string{"twitter  api"}},
		{name: "case and punctuation stay", filter: "Twitter's,hello.", want: []string{"Twitter's", "hello."}},
		{name: "60 bytes", filter: strings.Repeat("a", 60), want: []string{strings.Repeat("a", 60)}},
		{name: "60 bytes of UTF-8", filter: strings.Repeat("日", 20), want: []string{strings.Repeat("日", 20)}},
		{name: "400 terms", filter: matcherTestTerms(400), want: strings.Split(matcherTestTerms(400), ",")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTrack(tt.filter)
			if err != nil {
				t.Fatalf("ParseTrack(%q) error: %v", tt.filter, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseTrack(%q) = %q, want %q", tt.filter, got, tt.want)
			}
		})
	}
}

func TestParseTrack_ReportsEveryProblem(t *testing.T) {
	long := strings.Repeat("a", 61)
	tests := []struct {
		name   string
		filter string
		// want are the messages of the joined errors, in order.
		want []string
	}{
		{name: "empty filter", filter: "", want: []string{"no track terms"}},
		{name: "blank filter", filter: " \t ", want: []string{"no track terms"}},
		{
			name:   "empty term",
			filter: "a,,b",
			want:   []string{"term 2 is empty; each term must be 1-60 bytes (look for a doubled or trailing comma)"},
		},
		{
			name:   "trailing comma",
			filter: "a,b,",
			want:   []string{"term 3 is empty; each term must be 1-60 bytes (look for a doubled or trailing comma)"},
		},
		{
			name:   "61 bytes",
			filter: "a,b," + long,
			want:   []string{`term 3 ("` + long + `") is 61 bytes; each term must be 1-60 bytes`},
		},
		{
			name:   "63 bytes of UTF-8",
			filter: strings.Repeat("日", 21),
			want:   []string{`term 1 ("` + strings.Repeat("日", 21) + `") is 63 bytes; each term must be 1-60 bytes`},
		},
		{
			name:   "401 terms",
			filter: matcherTestTerms(401),
			want:   []string{"401 terms; track allows at most 400 terms"},
		},
		{
			name:   "invalid UTF-8",
			filter: "ok,a\xffb",
			want:   []string{`term 2 ("a\xffb") is not valid UTF-8; terms must be UTF-8 text`},
		},
		{
			name:   "control character",
			filter: "a\x00b",
			want:   []string{`term 1 ("a\x00b") contains control character U+0000; terms must be printable text`},
		},
		{
			name:   "several problems at once",
			filter: matcherTestTerms(400) + ",," + long,
			want: []string{
				"402 terms; track allows at most 400 terms",
				"term 401 is empty; each term must be 1-60 bytes (look for a doubled or trailing comma)",
				`term 402 ("` + long + `") is 61 bytes; each term must be 1-60 bytes`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTrack(tt.filter)
			if err == nil {
				t.Fatalf("ParseTrack(%q) = %q, want error %q", tt.filter, got, tt.want)
			}
			if msgs := matcherErrorMessages(err); !slices.Equal(msgs, tt.want) {
				t.Errorf("ParseTrack(%q) errors:\n got %q\nwant %q", tt.filter, msgs, tt.want)
			}
		})
	}
}

func TestNewMatcher_ValidatesTerms(t *testing.T) {
	tests := []struct {
		name  string
		terms []string
		want  string
	}{
		{name: "no terms", terms: nil, want: "no track terms"},
		{name: "blank term", terms: []string{"a", " "}, want: "term 2 is empty"},
		{name: "too long", terms: []string{strings.Repeat("x", 61)}, want: "is 61 bytes; each term must be 1-60 bytes"},
		{name: "too many", terms: strings.Split(matcherTestTerms(401), ","), want: "401 terms; track allows at most 400 terms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMatcher(tt.terms)
			if err == nil {
				t.Fatalf("NewMatcher(%q) = %v, want error containing %q", tt.terms, m, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewMatcher(%q) error = %q, want it to contain %q", tt.terms, err, tt.want)
			}
		})
	}
}

// TestMatcher_DocumentationExamples encodes every row of the example table in Twitter's track
// documentation (shared/notes/facts.md): each "matches" and each "does not match" cell is a case.
func TestMatcher_DocumentationExamples(t *testing.T) {
	tests := []struct {
		track string
		text  string
		match bool
	}{
		{"Twitter", "TWITTER", true},
		{"Twitter", "twitter", true},
		{"Twitter", `"Twitter"`, true},
		{"Twitter", "twitter.", true},
		{"Twitter", "#twitter", true},
		{"Twitter", "@twitter", true},
		{"Twitter", "http://twitter.com", true},
		{"Twitter", "TwitterTracker", false},
		{"Twitter", "#newtwitter", false},

		{"Twitter's", "I like Twitter's new design", true},
		{"Twitter's", "Someday I'd like to visit @Twitter's office", false},

		{"twitter api,twitter streaming", "The Twitter API is awesome", true},
		{"twitter api,twitter streaming", "The twitter streaming service is fast", true},
		{"twitter api,twitter streaming", "Twitter has a streaming API", true},
		{"twitter api,twitter streaming", "I'm new to Twitter", false},

		{"example.com", "Someday I will visit example.com", true},
		{"example.com", "There is no example.com/foobarbaz", false},

		{"example.com/foobarbaz", "example.com/foobarbaz", true},
		{"example.com/foobarbaz", "www.example.com/foobarbaz", true},
		{"example.com/foobarbaz", "example.com", false},

		{"www.example.com/foobarbaz", "www.example.com/foobarbaz", false},

		{"example com", "example.com", true},
		{"example com", "www.example.com", true},
		{"example com", "foo.example.com", true},
		{"example com", "foo.example.com/bar", true},
		{"example com", "I hope my startup isn't merely another example of a dot com boom!", true},
	}
	for _, tt := range tests {
		verb := "matches"
		if !tt.match {
			verb = "does not match"
		}
		t.Run(tt.track+" "+verb+" "+tt.text, func(t *testing.T) {
			m := matcherMustNew(t, tt.track)
			got := m.Match(&Message{Text: tt.text})
			if (len(got) > 0) != tt.match {
				t.Errorf("track %q, text %q: Match = %q, want match=%v", tt.track, tt.text, got, tt.match)
			}
		})
	}
}

// TestMatcher_Rules has one case (or a few) per documented rule, including the fields other than
// the text.
func TestMatcher_Rules(t *testing.T) {
	tests := []struct {
		name  string
		track string
		msg   Message
		want  []string
	}{
		{
			name:  "comma is OR and results keep configured order and spelling",
			track: "Golang,TWITTER API,nothing here",
			msg:   Message{Text: "the twitter api is written in golang"},
			want:  []string{"Golang", "TWITTER API"},
		},
		{
			name:  "space is AND in any order",
			track: "api twitter",
			msg:   Message{Text: "API docs for Twitter"},
			want:  []string{"api twitter"},
		},
		{
			name:  "space is AND: one word missing",
			track: "twitter api",
			msg:   Message{Text: "twitter streaming"},
		},
		{
			name:  "a word repeated in a phrase counts once",
			track: "go go",
			msg:   Message{Text: "let's go"},
			want:  []string{"go go"},
		},
		{
			name:  "case-insensitive beyond ASCII",
			track: "ÉCOLE",
			msg:   Message{Text: "à l'école."},
			want:  []string{"ÉCOLE"},
		},
		{
			name:  "UTF-8 exact: accent in term",
			track: "touché",
			msg:   Message{Text: "touche"},
		},
		{
			name:  "UTF-8 exact: accent in tweet",
			track: "touche",
			msg:   Message{Text: "touché"},
		},
		{
			name:  "UTF-8 exact: same spelling",
			track: "touché",
			msg:   Message{Text: "Touché!"},
			want:  []string{"touché"},
		},
		{
			name:  "no substring match",
			track: "twitter",
			msg:   Message{Text: "twitters retwitter"},
		},
		{
			name:  "punctuation in a term is part of it",
			track: "hello.",
			msg:   Message{Text: "hello there"},
		},
		{
			name:  "punctuation in a term matches the same punctuation",
			track: "hello.",
			msg:   Message{Text: "I said hello."},
			want:  []string{"hello."},
		},
		{
			name:  "punctuation in the tweet is ignored",
			track: "hello",
			msg:   Message{Text: "my brother says hello."},
			want:  []string{"hello"},
		},
		{
			name:  "punctuation is never part of a mention",
			track: "@twitter",
			msg:   Message{Text: "visit @Twitter's office"},
			want:  []string{"@twitter"},
		},
		{
			name:  "punctuation is never part of a hashtag",
			track: "#golang",
			msg:   Message{Text: "(#golang)!"},
			want:  []string{"#golang"},
		},
		{
			name:  "a hashtag term does not match the bare word",
			track: "#golang",
			msg:   Message{Text: "golang"},
		},
		{
			name:  "hashtag entity matches as a word",
			track: "twitter",
			msg:   Message{Text: "no words here", Hashtags: []string{"Twitter"}},
			want:  []string{"twitter"},
		},
		{
			name:  "hashtag entity matches as #tag",
			track: "#twitter",
			msg:   Message{Hashtags: []string{"Twitter"}},
			want:  []string{"#twitter"},
		},
		{
			name:  "hashtag entity is a whole word",
			track: "twitter",
			msg:   Message{Hashtags: []string{"NewTwitter"}},
		},
		{
			name:  "mention entity matches as a word and as @name",
			track: "jack,@jack",
			msg:   Message{Mentions: []string{"Jack"}},
			want:  []string{"jack", "@jack"},
		},
		{
			name:  "expanded URL matches with www. and scheme dropped",
			track: "example.com/foobarbaz",
			msg:   Message{Text: "look https://t.co/abc", URLs: []string{"https://www.example.com/foobarbaz"}},
			want:  []string{"example.com/foobarbaz"},
		},
		{
			name:  "URL term needs the whole path",
			track: "example.com",
			msg:   Message{URLs: []string{"https://example.com/foobarbaz"}},
		},
		{
			name:  "display URL counts, and its trailing ellipsis is punctuation",
			track: "example com",
			msg:   Message{URLs: []string{"example.com/foobarbaz…"}},
			want:  []string{"example com"},
		},
		{
			name:  "URL with a trailing slash",
			track: "twitter.com",
			msg:   Message{Text: "see https://twitter.com/"},
			want:  []string{"twitter.com"},
		},
		{
			name:  "quoted text counts",
			track: "quoted",
			msg:   Message{Text: "my comment", Quoted: "the quoted tweet"},
			want:  []string{"quoted"},
		},
		{
			name:  "languages without spaces are not word-matched",
			track: "東京",
			msg:   Message{Text: "東京タワーに行った"},
		},
		{
			name:  "a whole whitespace-delimited token matches",
			track: "東京",
			msg:   Message{Text: "東京 タワー"},
			want:  []string{"東京"},
		},
		{
			name:  "non-breaking space separates tokens",
			track: "golang",
			msg:   Message{Text: "I\u00a0like\u00a0golang"},
			want:  []string{"golang"},
		},
		{
			name:  "a NUL in the tweet separates, never frames a false word",
			track: "x.,y.",
			msg:   Message{Text: "x.\x00\x00y.z"},
			want:  []string{"x."},
		},
		{
			name:  "duplicate phrases are both reported",
			track: "go,GO",
			msg:   Message{Text: "go"},
			want:  []string{"go", "GO"},
		},
		{
			name:  "empty message",
			track: "go",
			msg:   Message{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := matcherMustNew(t, tt.track)
			if got := m.Match(&tt.msg); !slices.Equal(got, tt.want) {
				t.Errorf("track %q, message %+v: Match = %q, want %q", tt.track, tt.msg, got, tt.want)
			}
		})
	}
}

func TestMatcher_NilMessageMatchesNothing(t *testing.T) {
	m := matcherMustNew(t, "go")
	if got := m.Match(nil); got != nil {
		t.Errorf("Match(nil) = %q, want nil", got)
	}
}

func TestMatcher_AppendMatchAppendsToDst(t *testing.T) {
	m := matcherMustNew(t, "a,b,c")
	dst := []string{"earlier"}
	got := m.AppendMatch(dst, &Message{Text: "c a"})
	if want := []string{"earlier", "a", "c"}; !slices.Equal(got, want) {
		t.Errorf("AppendMatch = %q, want %q", got, want)
	}
	got = m.AppendMatch(got[:0], &Message{Text: "none"})
	if len(got) != 0 {
		t.Errorf("AppendMatch with no match = %q, want empty", got)
	}
}

// TestMatcher_ConcurrentUse runs one Matcher from several goroutines (meaningful under -race)
// and checks every result against a sequential run.
func TestMatcher_ConcurrentUse(t *testing.T) {
	m := matcherMustNew(t, "twitter api,golang,#go,example com,@jack")
	msgs := []Message{
		{Text: "The Twitter API"},
		{Text: "golang and #go", Mentions: []string{"jack"}},
		{URLs: []string{"https://www.example.com/x"}},
		{Text: "nothing"},
	}
	want := make([][]string, len(msgs))
	for i := range msgs {
		want[i] = m.Match(&msgs[i])
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			var dst []string
			for i := range 500 {
				k := (i + g) % len(msgs)
				dst = m.AppendMatch(dst[:0], &msgs[k])
				if !slices.Equal(dst, want[k]) {
					errs <- strings.Join(dst, ",") + " want " + strings.Join(want[k], ",")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent Match = %s", e)
	}
}

// TestMatcher_RealTweetsMatchTheirOwnEntities uses the 100 real tweets in
// shared/testdata/twitter.json: every tweet must match the terms "#tag" and "tag" for each of
// its hashtags, and "@name" for each of its mentions.
func TestMatcher_RealTweetsMatchTheirOwnEntities(t *testing.T) {
	msgs, err := matcherLoadTweets()
	if err != nil {
		t.Fatal(err)
	}
	if msgs == nil {
		t.Skip("../shared/testdata/twitter.json not found beside the repository")
	}
	checked := 0
	for _, msg := range msgs {
		var terms []string
		for _, h := range msg.Hashtags {
			terms = append(terms, "#"+h, h)
		}
		for _, u := range msg.Mentions {
			terms = append(terms, "@"+u)
		}
		terms = slices.DeleteFunc(terms, func(s string) bool { return len(s) > MaxTrackTermBytes })
		if len(terms) == 0 {
			continue
		}
		m, err := NewMatcher(terms)
		if err != nil {
			t.Fatalf("NewMatcher(%q): %v", terms, err)
		}
		if got := m.Match(&msg); !slices.Equal(got, terms) {
			t.Errorf("tweet %s: Match = %q, want %q", msg.ID, got, terms)
		}
		checked++
	}
	if checked == 0 {
		t.Error("no tweet in twitter.json has a hashtag or mention")
	}
}

// TestMatcher_RuneTablesAgreeWithUnicode checks the cached rune classes and case mapping
// against the unicode package for every rune the tables cover and a few beyond.
func TestMatcher_RuneTablesAgreeWithUnicode(t *testing.T) {
	for r := rune(0); r < trackTableLimit+0x1000; r++ {
		var want uint8
		switch {
		case r == 0 || unicode.IsSpace(r):
			want = classSpace
		case unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r):
			want = classWord
		}
		got := trackRuneClass(r)
		if r < utf8.RuneSelf {
			got = asciiClass[r]
		}
		if got != want {
			t.Fatalf("class of %U = %d, want %d", r, got, want)
		}
		if got, want := trackLower(r), unicode.ToLower(r); got != want {
			t.Fatalf("trackLower(%U) = %U, want %U", r, got, want)
		}
	}
}

func matcherMustNew(t *testing.T, filter string) *Matcher {
	t.Helper()
	terms, err := ParseTrack(filter)
	if err != nil {
		t.Fatalf("ParseTrack(%q): %v", filter, err)
	}
	m, err := NewMatcher(terms)
	if err != nil {
		t.Fatalf("NewMatcher(%q): %v", terms, err)
	}
	return m
}

// matcherTestTerms returns a filter of n distinct terms.
func matcherTestTerms(n int) string {
	terms := make([]string, n)
	for i := range terms {
		terms[i] = "t" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
	}
	return strings.Join(terms, ",")
}

// matcherErrorMessages flattens an errors.Join tree into its leaf messages.
func matcherErrorMessages(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, matcherErrorMessages(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// matcherLoadTweets reads ../shared/testdata/twitter.json relative to the repository root (the
// directory holding go.mod) and reduces each status to a Message the way the stream decoder
// does. It returns nil, nil when the file is absent.
func matcherLoadTweets() ([]Message, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, nil
		}
		dir = parent
	}
	data, err := os.ReadFile(filepath.Join(dir, "..", "shared", "testdata", "twitter.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Statuses []matcherTweetJSON `json:"statuses"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, len(doc.Statuses))
	for _, tw := range doc.Statuses {
		msgs = append(msgs, tw.message())
	}
	return msgs, nil
}

// matcherTweetJSON is the part of a v1.1 status the matcher tests need.
type matcherTweetJSON struct {
	IDStr         string `json:"id_str"`
	Text          string `json:"text"`
	Truncated     bool   `json:"truncated"`
	ExtendedTweet *struct {
		FullText string              `json:"full_text"`
		Entities matcherEntitiesJSON `json:"entities"`
	} `json:"extended_tweet"`
	Entities        matcherEntitiesJSON `json:"entities"`
	RetweetedStatus *matcherTweetJSON   `json:"retweeted_status"`
	QuotedStatus    *matcherTweetJSON   `json:"quoted_status"`
}

type matcherEntitiesJSON struct {
	Hashtags []struct {
		Text string `json:"text"`
	} `json:"hashtags"`
	UserMentions []struct {
		ScreenName string `json:"screen_name"`
	} `json:"user_mentions"`
	URLs  []matcherURLJSON `json:"urls"`
	Media []matcherURLJSON `json:"media"`
}

type matcherURLJSON struct {
	ExpandedURL string `json:"expanded_url"`
	DisplayURL  string `json:"display_url"`
}

func (tw *matcherTweetJSON) fullText() (string, *matcherEntitiesJSON) {
	if tw.Truncated && tw.ExtendedTweet != nil {
		return tw.ExtendedTweet.FullText, &tw.ExtendedTweet.Entities
	}
	return tw.Text, &tw.Entities
}

func (tw *matcherTweetJSON) message() Message {
	text, ents := tw.fullText()
	msg := Message{ID: tw.IDStr, Text: text}
	add := func(e *matcherEntitiesJSON) {
		for _, h := range e.Hashtags {
			msg.Hashtags = append(msg.Hashtags, h.Text)
		}
		for _, u := range e.UserMentions {
			msg.Mentions = append(msg.Mentions, u.ScreenName)
		}
		for _, u := range append(e.URLs, e.Media...) {
			msg.URLs = append(msg.URLs, u.ExpandedURL, u.DisplayURL)
		}
	}
	add(ents)
	if rt := tw.RetweetedStatus; rt != nil {
		msg.Text, ents = rt.fullText()
		add(ents)
	}
	if q := tw.QuotedStatus; q != nil {
		msg.Quoted, ents = q.fullText()
		add(ents)
	}
	return msg
}

// TestDecodeThreeByteRune_AgreesWithUTF8 checks the matcher's inline decoder against
// utf8.DecodeRuneInString on every three bytes with a lead byte of E0-EF, and at the end of text.
func TestDecodeThreeByteRune_AgreesWithUTF8(t *testing.T) {
	decoded := 0
	for c0 := 0xE0; c0 <= 0xEF; c0++ {
		for c1 := 0; c1 <= 0xFF; c1++ {
			for c2 := 0; c2 <= 0xFF; c2++ {
				text := string([]byte{byte(c0), byte(c1), byte(c2)})
				for _, s := range []string{text, text[:2]} {
					r, ok := decodeThreeByteRune(s, 0)
					if !ok {
						continue
					}
					decoded++
					if want, size := utf8.DecodeRuneInString(s); r != want || size != 3 {
						t.Fatalf("decodeThreeByteRune(% x) = %U; utf8.DecodeRuneInString gives %U, %d bytes", s, r, want, size)
					}
				}
			}
		}
	}
	// Lead bytes E1-EC and EE-EF, each with 64 x 64 continuation pairs.
	if want := 14 * 64 * 64; decoded != want {
		t.Errorf("decoded %d sequences inline, want %d", decoded, want)
	}
}
