package stream

import (
	"slices"
	"strings"
	"testing"
	"unicode"
)

// FuzzMatcher checks, for any filter and message, that Match does not panic, returns a
// subsequence of the configured terms, does not change when the message's ASCII letters are
// upper-cased, and agrees with matcherReference, a slow map-based model of the same word rules
// that shares no code with the automaton (framing, word ids, postings, generations).
func FuzzMatcher(f *testing.F) {
	seeds := []struct{ filter, text, quoted, hashtag, mention, url string }{
		{"Twitter", "http://twitter.com", "", "", "", ""},
		{"Twitter's,@twitter", "Someday I'd like to visit @Twitter's office", "", "", "", ""},
		{"twitter api,twitter streaming", "Twitter has a streaming API", "", "", "", ""},
		{"example.com,example com", "There is no example.com/foobarbaz", "", "", "", ""},
		{"www.example.com/foobarbaz", "www.example.com/foobarbaz", "", "", "", "https://www.example.com/foobarbaz"},
		{"#newtwitter,twitter", "", "", "NewTwitter", "", ""},
		{"touché,ÉCOLE", "Touché à l'école", "quoted", "", "Jack", "example.com/foo…"},
		{"東京,x.", "東京タワー x.\x00\x00y.", "", "東京", "", ""},
		{"k", "\u212a", "", "", "", ""}, // KELVIN SIGN lower-cases to k.
		{"a\u0301", "A\u0301!", "", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.filter, s.text, s.quoted, s.hashtag, s.mention, s.url)
	}
	f.Fuzz(func(t *testing.T, filter, text, quoted, hashtag, mention, url string) {
		terms, err := ParseTrack(filter)
		if err != nil {
			return
		}
		m, err := NewMatcher(terms)
		if err != nil {
			t.Fatalf("NewMatcher(%q) after ParseTrack accepted it: %v", terms, err)
		}
		msg := Message{Text: text, Quoted: quoted, Hashtags: []string{hashtag}, Mentions: []string{mention}, URLs: []string{url}}
		got := m.Match(&msg)

		if !matcherIsSubsequence(got, terms) {
			t.Fatalf("Match = %q, not a subsequence of the terms %q", got, terms)
		}
		upper := Message{
			Text:     matcherUpperASCII(text),
			Quoted:   matcherUpperASCII(quoted),
			Hashtags: []string{matcherUpperASCII(hashtag)},
			Mentions: []string{matcherUpperASCII(mention)},
			URLs:     []string{matcherUpperASCII(url)},
		}
		if gotUpper := m.Match(&upper); !slices.Equal(gotUpper, got) {
			t.Fatalf("Match of the upper-cased message = %q, want %q (as for %+v)", gotUpper, got, msg)
		}
		if want := matcherReference(terms, &msg); !slices.Equal(got, want) {
			t.Fatalf("terms %q, message %+v: Match = %q, reference model = %q", terms, msg, got, want)
		}
	})
}

// matcherReference is the word model of Matcher written the slow, obvious way: a map of the
// message's words, and a phrase matches when all its words are in the map.
func matcherReference(terms []string, msg *Message) []string {
	isWord := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r) }
	isSep := func(r rune) bool { return r == 0 || unicode.IsSpace(r) }
	canonical := func(w string) string {
		if strings.HasPrefix(w, "https://") {
			w = w[len("https://"):]
		} else if strings.HasPrefix(w, "http://") {
			w = w[len("http://"):]
		}
		return strings.TrimPrefix(w, "www.")
	}
	words := make(map[string]bool)
	addText := func(text string) {
		for _, tok := range strings.FieldsFunc(strings.ToLower(text), isSep) {
			canon := canonical(tok)
			words[canon] = true
			trimmed := strings.TrimLeftFunc(tok, func(r rune) bool { return !isWord(r) && r != '#' && r != '@' })
			trimmed = strings.TrimRightFunc(trimmed, func(r rune) bool { return !isWord(r) })
			if strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "@") {
				name := trimmed[1:]
				if end := strings.IndexFunc(name, func(r rune) bool { return !isWord(r) && r != '_' }); end >= 0 {
					name = name[:end]
				}
				if name != "" {
					words[trimmed[:1]+name] = true
					words[name] = true
				}
			} else {
				words[canonical(trimmed)] = true
			}
			for _, sub := range strings.FieldsFunc(canon, func(r rune) bool { return !isWord(r) }) {
				words[sub] = true
			}
		}
	}
	addText(msg.Text)
	addText(msg.Quoted)
	for _, h := range msg.Hashtags {
		if h != "" {
			addText("#" + h)
		}
	}
	for _, u := range msg.Mentions {
		if u != "" {
			addText("@" + u)
		}
	}
	for _, u := range msg.URLs {
		addText(u)
	}
	delete(words, "")

	var out []string
	for _, term := range terms {
		all := true
		for _, w := range strings.FieldsFunc(strings.ToLower(term), isSep) {
			all = all && words[w]
		}
		if all {
			out = append(out, term)
		}
	}
	return out
}

func matcherIsSubsequence(sub, of []string) bool {
	i := 0
	for _, s := range of {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

func matcherUpperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
