package stream

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// The benchmarks measure one Match per op on realistic tweets: the 100 real v1.1 statuses of
// shared/testdata/twitter.json (mostly Japanese) when present, else synthetic English tweets,
// and synthetic English tweets always (the *English variants), which have more words per byte.
// Terms are drawn from the corpus's own words (so some tweets match) and from random words.
// 10,000 terms is beyond Twitter's limit of 400; it shows that the cost of a scan does not grow
// with the number of terms. The two baselines are what the automaton replaces: a regexp
// alternation of every term word, and a strings.Contains loop over the lower-cased text.

var matcherBenchSizes = []int{10, 400, 10000}

func BenchmarkMatcher(b *testing.B) { matcherBenchAhoCorasick(b, matcherBenchCorpus(b)) }

func BenchmarkMatcherEnglish(b *testing.B) { matcherBenchAhoCorasick(b, matcherEnglishTweets()) }

func BenchmarkRegexpBaseline(b *testing.B) { matcherBenchRegexp(b, matcherBenchCorpus(b)) }

func BenchmarkRegexpBaselineEnglish(b *testing.B) { matcherBenchRegexp(b, matcherEnglishTweets()) }

func BenchmarkContainsBaseline(b *testing.B) { matcherBenchContains(b, matcherBenchCorpus(b)) }

func BenchmarkContainsBaselineEnglish(b *testing.B) {
	matcherBenchContains(b, matcherEnglishTweets())
}

// BenchmarkNewMatcher measures building the automaton, which happens once at start-up.
func BenchmarkNewMatcher(b *testing.B) {
	msgs := matcherEnglishTweets()
	for _, n := range matcherBenchSizes {
		terms := matcherBenchTerms(n, msgs)
		b.Run(fmt.Sprintf("terms=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := newMatcher(terms, len(terms)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func matcherBenchAhoCorasick(b *testing.B, msgs []Message) {
	for _, n := range matcherBenchSizes {
		terms := matcherBenchTerms(n, msgs)
		m, err := newMatcher(terms, len(terms))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("terms=%d", n), func(b *testing.B) {
			matched := 0
			for i := range msgs {
				if m.Match(&msgs[i]) != nil {
					matched++
				}
			}
			b.ReportAllocs()
			var dst []string
			i := 0
			for b.Loop() {
				dst = m.AppendMatch(dst[:0], &msgs[i])
				if i++; i == len(msgs) {
					i = 0
				}
			}
			matcherBenchReport(b, matched, len(msgs))
		})
	}
}

func matcherBenchRegexp(b *testing.B, msgs []Message) {
	for _, n := range matcherBenchSizes {
		terms := matcherBenchTerms(n, msgs)
		base, err := newMatcherRegexpBaseline(terms)
		if err != nil {
			b.Logf("regexp baseline with %d terms: %v", n, err)
			continue
		}
		b.Run(fmt.Sprintf("terms=%d", n), func(b *testing.B) {
			matched := 0
			for i := range msgs {
				if base.match(&msgs[i]) != nil {
					matched++
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				base.match(&msgs[i])
				if i++; i == len(msgs) {
					i = 0
				}
			}
			matcherBenchReport(b, matched, len(msgs))
		})
	}
}

func matcherBenchContains(b *testing.B, msgs []Message) {
	for _, n := range matcherBenchSizes {
		terms := matcherBenchTerms(n, msgs)
		phrases := make([][]string, len(terms))
		for i, t := range terms {
			phrases[i] = strings.Fields(strings.ToLower(t))
		}
		b.Run(fmt.Sprintf("terms=%d", n), func(b *testing.B) {
			matched := 0
			for i := range msgs {
				if matcherContainsBaseline(terms, phrases, &msgs[i]) != nil {
					matched++
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				matcherContainsBaseline(terms, phrases, &msgs[i])
				if i++; i == len(msgs) {
					i = 0
				}
			}
			matcherBenchReport(b, matched, len(msgs))
		})
	}
}

func matcherBenchReport(b *testing.B, matched, total int) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tweets/s")
	b.ReportMetric(float64(matched)/float64(total), "matched-frac")
}

// matcherRegexpBaseline is the obvious design the automaton replaces: one case-insensitive
// alternation of every term word between \b, then a map from found word to phrases.
type matcherRegexpBaseline struct {
	re      *regexp.Regexp
	terms   []string
	wordIDs map[string]int
	phrases [][]int
}

func newMatcherRegexpBaseline(terms []string) (*matcherRegexpBaseline, error) {
	base := &matcherRegexpBaseline{terms: terms, wordIDs: make(map[string]int), phrases: make([][]int, len(terms))}
	var alts []string
	for p, t := range terms {
		for _, w := range strings.Fields(strings.ToLower(t)) {
			id, ok := base.wordIDs[w]
			if !ok {
				id = len(alts)
				base.wordIDs[w] = id
				alts = append(alts, regexp.QuoteMeta(w))
			}
			base.phrases[p] = append(base.phrases[p], id)
		}
	}
	re, err := regexp.Compile(`(?i)\b(?:` + strings.Join(alts, "|") + `)\b`)
	if err != nil {
		return nil, err
	}
	base.re = re
	return base, nil
}

func (base *matcherRegexpBaseline) match(msg *Message) []string {
	found := make(map[int]bool)
	scan := func(s string) {
		for _, loc := range base.re.FindAllStringIndex(s, -1) {
			found[base.wordIDs[strings.ToLower(s[loc[0]:loc[1]])]] = true
		}
	}
	scan(msg.Text)
	scan(msg.Quoted)
	for _, fields := range [][]string{msg.Hashtags, msg.Mentions, msg.URLs} {
		for _, f := range fields {
			scan(f)
		}
	}
	var out []string
	for p, words := range base.phrases {
		all := true
		for _, w := range words {
			all = all && found[w]
		}
		if all {
			out = append(out, base.terms[p])
		}
	}
	return out
}

// matcherContainsBaseline is the naive per-term loop: substring search of every phrase word in
// the lower-cased message (which is not even whole-word matching).
func matcherContainsBaseline(terms []string, phrases [][]string, msg *Message) []string {
	var sb strings.Builder
	sb.WriteString(msg.Text)
	sb.WriteByte(' ')
	sb.WriteString(msg.Quoted)
	for _, fields := range [][]string{msg.Hashtags, msg.Mentions, msg.URLs} {
		for _, f := range fields {
			sb.WriteByte(' ')
			sb.WriteString(f)
		}
	}
	lower := strings.ToLower(sb.String())
	var out []string
	for p, words := range phrases {
		all := true
		for _, w := range words {
			if !strings.Contains(lower, w) {
				all = false
				break
			}
		}
		if all {
			out = append(out, terms[p])
		}
	}
	return out
}

// matcherBenchCorpus returns the real tweets of twitter.json, or synthetic English tweets when
// the file is absent.
func matcherBenchCorpus(b *testing.B) []Message {
	msgs, err := matcherLoadTweets()
	if err != nil {
		b.Fatal(err)
	}
	if msgs == nil {
		b.Log("../shared/testdata/twitter.json not found; using synthetic English tweets")
		return matcherEnglishTweets()
	}
	return msgs
}

// matcherBenchTerms returns n distinct phrases: 8 (or n/2 if fewer) are words of the corpus,
// one or two, and the rest are random words, a third of them paired with one of 16 corpus words.
// So about the same share of tweets match at every size, as in production, where the stream
// delivers only tweets that match; and the few corpus words that are in many phrases make the
// matcher count partial matches too, as common words in real track lists do. (Pairing with any
// corpus word would make nearly every word of the small synthetic English vocabulary a phrase
// word, which no real track list does.)
func matcherBenchTerms(n int, msgs []Message) []string {
	vocab := make(map[string]bool)
	for _, msg := range msgs {
		for _, tok := range strings.Fields(strings.ToLower(msg.Text)) {
			tok = strings.TrimFunc(tok, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
			if len(tok) >= 2 && len(tok) <= 28 {
				vocab[tok] = true
			}
		}
	}
	words := make([]string, 0, len(vocab))
	for w := range vocab {
		words = append(words, w)
	}
	slices.Sort(words)

	r := rand.New(rand.NewPCG(1, uint64(n)))
	corpusWord := func() string { return words[r.IntN(len(words))] }
	common := make([]string, 16)
	for i := range common {
		common[i] = corpusWord()
	}
	randomWord := func() string {
		b := make([]byte, 4+r.IntN(7))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	seen := make(map[string]bool)
	terms := make([]string, 0, n)
	for len(terms) < n {
		var t string
		switch {
		case len(terms) < min(n/2, 8) && len(terms)%2 == 0:
			t = corpusWord()
		case len(terms) < min(n/2, 8):
			t = corpusWord() + " " + corpusWord()
		case r.IntN(3) == 0:
			t = randomWord() + " " + common[r.IntN(len(common))]
		default:
			t = randomWord()
		}
		if len(t) <= MaxTrackTermBytes && !seen[t] {
			seen[t] = true
			terms = append(terms, t)
		}
	}
	return terms
}

// matcherEnglishTweets returns 200 synthetic English tweets of 8-40 words with punctuation,
// capitals, hashtags, mentions and links, the same every run.
func matcherEnglishTweets() []Message {
	vocab := strings.Fields(`the be to of and a in that have I it for not on with he as you do at
		this but his by from they we say her she or an will my one all would there their what so up
		out if about who get which go me when make can like time no just him know take people into
		year your good some could them see other than then now look only come its over think also
		back after use two how our work first well way even new want because any these give day
		most us golang twitter stream api cloud aws docker music game news football election
		weather coffee breaking launch update release today tomorrow great awesome love hate
		service fast slow design startup example data`)
	tags := []string{"golang", "AWS", "NowPlaying", "breaking", "MondayMotivation", "tech"}
	users := []string{"golang", "TwitterAPI", "jack", "aws", "news_bot"}
	links := []string{"https://www.example.com/foobarbaz", "https://go.dev/doc", "http://news.example.org/2013/08/peak"}
	punct := []string{"", "", "", "", ",", ".", "!", "?", "'s", ":"}

	r := rand.New(rand.NewPCG(2013, 143199))
	msgs := make([]Message, 200)
	for i := range msgs {
		var sb strings.Builder
		msg := &msgs[i]
		for j := range 8 + r.IntN(33) {
			if j > 0 {
				sb.WriteByte(' ')
			}
			w := vocab[r.IntN(len(vocab))]
			if r.IntN(8) == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			sb.WriteString(w + punct[r.IntN(len(punct))])
		}
		if r.IntN(3) == 0 {
			tag := tags[r.IntN(len(tags))]
			sb.WriteString(" #" + tag)
			msg.Hashtags = append(msg.Hashtags, tag)
		}
		if r.IntN(3) == 0 {
			user := users[r.IntN(len(users))]
			msg.Text = "@" + user + " "
			msg.Mentions = append(msg.Mentions, user)
		}
		if r.IntN(4) == 0 {
			link := links[r.IntN(len(links))]
			sb.WriteString(" https://t.co/" + fmt.Sprint(r.IntN(1e9)))
			msg.URLs = append(msg.URLs, link, strings.TrimPrefix(strings.TrimPrefix(link, "https://www."), "http://"))
		}
		msg.Text += sb.String()
	}
	return msgs
}
