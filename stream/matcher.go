package stream

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	// BobuSumisu/aho-corasick was chosen over the two other Aho-Corasick libraries in go.mod after
	// benchmarking all three on the framed word buffer this matcher scans (see
	// matcher_bench_test.go for the matcher itself):
	//   - BobuSumisu: Trie.Walk takes a callback and allocates nothing per call; the built Trie is
	//     read-only, so one Trie serves every goroutine; ~4 µs per KiB whatever the pattern count;
	//     ~5 MiB for 400 terms. It has no dependencies and a small, readable code base; its last
	//     tag is from 2020, which is acceptable for a finished algorithm with a stable API.
	//   - cloudflare/ahocorasick: similar speed, but MatchThreadSafe allocates its result and
	//     takes a map from a pool on every call, and every trie node holds two [256]*node arrays
	//     (~14 MiB for 400 terms, ~340 MiB for 10,000): too much for a 512 MiB Fargate task.
	//   - petar-dambovaliev/aho-corasick: the most recently updated and the most compact (a DFA
	//     over byte classes), but its iterator allocates per call and per match and dispatches
	//     through an interface per byte: 3-5 times slower here.
	ahocorasick "github.com/BobuSumisu/aho-corasick"
)

// Twitter's limits on the track parameter of statuses/filter.
const (
	// MaxTrackTerms is the largest number of comma-separated phrases track accepts.
	MaxTrackTerms = 400
	// MaxTrackTermBytes is the longest phrase track accepts, in bytes of UTF-8.
	MaxTrackTermBytes = 60
)

// ParseTrack splits a FILTER value (Twitter's track parameter: comma-separated phrases) into
// trimmed phrases. Every problem is reported at once, as an errors.Join of one error per
// problem, each naming the phrase by its position and saying what is expected. FILTER is not a
// secret, so the errors quote the phrases.
func ParseTrack(filter string) ([]string, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, errors.New("no track terms")
	}
	parts := strings.Split(filter, ",")
	terms := make([]string, len(parts))
	for i, p := range parts {
		terms[i] = strings.TrimSpace(p)
	}
	if err := validateTrackTerms(terms, MaxTrackTerms); err != nil {
		return nil, err
	}
	return terms, nil
}

// validateTrackTerms checks Twitter's limits (at most maxTerms terms) and that every term can be
// matched at all.
func validateTrackTerms(terms []string, maxTerms int) error {
	if len(terms) == 0 {
		return errors.New("no track terms")
	}
	var errs []error
	if len(terms) > maxTerms {
		errs = append(errs, fmt.Errorf("%d terms; track allows at most %d terms", len(terms), maxTerms))
	}
	for i, t := range terms {
		n := i + 1
		switch {
		case strings.TrimSpace(t) == "":
			errs = append(errs, fmt.Errorf("term %d is empty; each term must be 1-%d bytes (look for a doubled or trailing comma)", n, MaxTrackTermBytes))
		case len(t) > MaxTrackTermBytes:
			errs = append(errs, fmt.Errorf("term %d (%q) is %d bytes; each term must be 1-%d bytes", n, t, len(t), MaxTrackTermBytes))
		case !utf8.ValidString(t):
			errs = append(errs, fmt.Errorf("term %d (%q) is not valid UTF-8; terms must be UTF-8 text", n, t))
		default:
			// A control character could never match, because the tokenizer treats NUL as a
			// separator and Twitter strips the others; reject it rather than track nothing.
			for _, r := range t {
				if unicode.IsControl(r) && !unicode.IsSpace(r) {
					errs = append(errs, fmt.Errorf("term %d (%q) contains control character %U; terms must be printable text", n, t, r))
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Matcher matches messages against track phrases with Twitter's documented semantics: a comma
// separates alternative phrases, the words of a phrase must all occur (in any order), matching
// is case-insensitive and by whole word, and the text, quoted text, hashtags, mentions and URLs
// of a message all count.
//
// A message is reduced to a set of words (see appendTokenWords), written into a buffer as
// "\x00word\x00" frames. One Aho-Corasick automaton over the framed words of every phrase finds,
// in a single pass whose cost does not depend on the number of phrases, which phrase words the
// message contains: the framing makes a pattern match only a whole word. A per-call counter per
// phrase then tells which phrases have all their words.
//
// A Matcher is immutable after NewMatcher and safe for concurrent use.
type Matcher struct {
	terms []string
	trie  *ahocorasick.Trie
	// maxWordLen is the longest phrase word, in bytes: longer message words cannot match and are
	// not written to the buffer.
	maxWordLen int
	// need is, per phrase, its number of distinct words.
	need []uint8
	// The phrases containing word w are postings[postStart[w]:postStart[w+1]].
	postStart []int32
	postings  []int32
	// scratch holds *matchScratch values, so that Match allocates nothing in the steady state.
	scratch sync.Pool
}

// NewMatcher builds the automaton for terms, phrases as returned by ParseTrack. It checks the
// terms again (1-60 bytes each, at most 400), since a Matcher may be built from any source.
func NewMatcher(terms []string) (*Matcher, error) {
	return newMatcher(terms, MaxTrackTerms)
}

// newMatcher is NewMatcher with another limit on the number of terms: the benchmarks use it to
// show how the matcher scales far beyond Twitter's 400.
func newMatcher(terms []string, maxTerms int) (*Matcher, error) {
	if err := validateTrackTerms(terms, maxTerms); err != nil {
		return nil, err
	}
	m := &Matcher{
		terms: slices.Clone(terms),
		need:  make([]uint8, len(terms)),
	}
	wordIDs := make(map[string]int32)
	var words []string
	phraseWords := make([][]int32, len(terms))
	for p, t := range terms {
		lower := string(appendTrackLower(nil, t))
		for _, w := range strings.FieldsFunc(lower, isTrackSeparator) {
			id, ok := wordIDs[w]
			if !ok {
				id = int32(len(words))
				wordIDs[w] = id
				words = append(words, w)
				m.maxWordLen = max(m.maxWordLen, len(w))
			}
			if !slices.Contains(phraseWords[p], id) {
				phraseWords[p] = append(phraseWords[p], id)
			}
		}
		// A 60-byte phrase has at most 30 words, so the count fits in a uint8.
		m.need[p] = uint8(len(phraseWords[p]))
	}

	// Invert phrase -> words into word -> phrases, in phrase order.
	m.postStart = make([]int32, len(words)+1)
	for _, ws := range phraseWords {
		for _, w := range ws {
			m.postStart[w+1]++
		}
	}
	for w := range words {
		m.postStart[w+1] += m.postStart[w]
	}
	m.postings = make([]int32, m.postStart[len(words)])
	fill := slices.Clone(m.postStart[:len(words)])
	for p, ws := range phraseWords {
		for _, w := range ws {
			m.postings[fill[w]] = int32(p)
			fill[w]++
		}
	}

	// Pattern i of the trie is word i, so a hit's pattern number is the word id.
	builder := ahocorasick.NewTrieBuilder()
	frame := make([]byte, 0, m.maxWordLen+2)
	for _, w := range words {
		frame = append(append(append(frame[:0], 0), w...), 0)
		builder.AddPattern(frame)
	}
	m.trie = builder.Build()

	m.scratch.New = func() any {
		return &matchScratch{
			maxWordLen:  m.maxWordLen,
			wordGen:     make([]uint32, len(words)),
			phraseGen:   make([]uint32, len(terms)),
			phraseCount: make([]uint8, len(terms)),
		}
	}
	return m, nil
}

// Terms returns the configured phrases, in configured order.
func (m *Matcher) Terms() []string {
	return slices.Clone(m.terms)
}

// Match returns the phrases (in their configured spelling and order) that msg matches, or nil
// if none does. It is safe for concurrent use.
func (m *Matcher) Match(msg *Message) []string {
	return m.AppendMatch(nil, msg)
}

// AppendMatch appends the phrases that msg matches to dst and returns the extended slice; dst
// is returned unchanged when none matches. With a reused dst it allocates nothing, which is what
// the worker's hot loop wants.
func (m *Matcher) AppendMatch(dst []string, msg *Message) []string {
	if msg == nil {
		return dst
	}
	s := m.scratch.Get().(*matchScratch)
	s.reset()
	s.addText(msg.Text)
	s.addText(msg.Quoted)
	for _, h := range msg.Hashtags {
		s.addEntity('#', h)
	}
	for _, u := range msg.Mentions {
		s.addEntity('@', u)
	}
	for _, u := range msg.URLs {
		s.addText(u)
	}
	m.trie.Walk(s.words, func(_, _, pattern int64) bool {
		m.hitWord(s, int32(pattern))
		return true
	})
	if len(s.hits) > 0 {
		slices.Sort(s.hits)
		for _, p := range s.hits {
			dst = append(dst, m.terms[p])
		}
	}
	s.release()
	m.scratch.Put(s)
	return dst
}

// hitWord records that the message contains word w, and any phrase it completes.
func (m *Matcher) hitWord(s *matchScratch, w int32) {
	if s.wordGen[w] == s.gen {
		return // The word occurred earlier in this message.
	}
	s.wordGen[w] = s.gen
	for _, p := range m.postings[m.postStart[w]:m.postStart[w+1]] {
		if s.phraseGen[p] != s.gen {
			s.phraseGen[p] = s.gen
			s.phraseCount[p] = 0
		}
		s.phraseCount[p]++
		if s.phraseCount[p] == m.need[p] {
			s.hits = append(s.hits, p)
		}
	}
}

// matchScratch is the per-call state of AppendMatch. The per-word and per-phrase marks carry a
// generation number instead of being cleared, so a call costs time in proportion to the message
// and its hits, not to the number of phrases.
type matchScratch struct {
	maxWordLen int
	lower      []byte // the current field, lower-cased
	words      []byte // the message's words, each framed as "\x00word\x00"
	hits       []int32
	gen        uint32
	wordGen    []uint32
	phraseGen  []uint32
	// phraseCount is how many distinct words of a phrase the message has; valid where
	// phraseGen equals gen.
	phraseCount []uint8
}

// maxRetainedScratch bounds the buffers kept in the pool, so one huge message does not pin its
// buffers for the life of the process.
const maxRetainedScratch = 64 << 10

func (s *matchScratch) reset() {
	s.words = s.words[:0]
	s.hits = s.hits[:0]
	s.gen++
	if s.gen == 0 {
		clear(s.wordGen)
		clear(s.phraseGen)
		s.gen = 1
	}
}

func (s *matchScratch) release() {
	if cap(s.words) > maxRetainedScratch {
		s.words = nil
	}
	if cap(s.lower) > maxRetainedScratch {
		s.lower = nil
	}
}

// addText adds the words of a text field: the tweet text, the quoted text or a URL.
func (s *matchScratch) addText(text string) {
	if text == "" {
		return
	}
	s.lower = appendTrackLower(s.lower[:0], text)
	s.addTokens(s.lower)
}

// addEntity adds a hashtag or mention entity, which Twitter gives without its '#' or '@'. It is
// tokenized as the text "#tag" would be, so it matches both "tag" and "#tag".
func (s *matchScratch) addEntity(sigil byte, name string) {
	if name == "" {
		return
	}
	s.lower = appendTrackLower(append(s.lower[:0], sigil), name)
	s.addTokens(s.lower)
}

// addTokens splits b on whitespace (and NUL, which frames words) and adds each token's words.
func (s *matchScratch) addTokens(b []byte) {
	start := -1
	for i := 0; i < len(b); {
		c, size := b[i], 1
		var sep bool
		if c < utf8.RuneSelf {
			sep = asciiSeparator[c]
		} else {
			var r rune
			r, size = utf8.DecodeRune(b[i:])
			sep = unicode.IsSpace(r)
		}
		if sep {
			if start >= 0 {
				s.addToken(b[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		i += size
	}
	if start >= 0 {
		s.addToken(b[start:])
	}
}

// addToken adds the words one whitespace-delimited, lower-cased token contributes:
//
//   - the token itself, canonicalized (a leading "http://", "https://" and "www." dropped), so
//     that a term with punctuation ("hello.", "example.com/foobarbaz") matches exactly;
//   - the token with leading and trailing punctuation trimmed ("hello." -> "hello"), because
//     punctuation in a tweet is ignored; or, when the trimmed token starts with '#' or '@', the
//     entity ("#" or "@" followed by letters, marks, digits and '_') and its bare name, because
//     punctuation is never part of a hashtag or mention ("@twitter's" -> "@twitter", "twitter",
//     but never "twitter's");
//   - the sub-words between runes that are not letters, marks or digits ("example.com/bar" ->
//     "example", "com", "bar"), which is how "example com" matches "www.example.com".
//
// A text without spaces (Japanese, Chinese) stays one token, so it is not word-matched.
func (s *matchScratch) addToken(tok []byte) {
	canon := trackCanonical(tok)
	s.emit(canon)

	trimmed := trimTrackToken(tok)
	var single []byte // the word a lone sub-word would repeat
	if len(trimmed) > 0 && (trimmed[0] == '#' || trimmed[0] == '@') {
		name := trimmed[1:]
		n := 0
		for n < len(name) {
			r, size := utf8.DecodeRune(name[n:])
			if !isTrackWordRune(r) && r != '_' {
				break
			}
			n += size
		}
		if n > 0 {
			s.emit(trimmed[:1+n])
			s.emit(name[:n])
			single = name[:n]
		}
	} else {
		trimmed = trackCanonical(trimmed)
		if !bytes.Equal(trimmed, canon) {
			s.emit(trimmed)
		}
		single = trimmed
	}

	// Sub-words. The common plain word ("hello", "hello.") has one sub-word equal to a word
	// already written; skipping it keeps the buffer, and so the scan, short.
	var first []byte
	count := 0
	for i := 0; i < len(canon); {
		for i < len(canon) {
			r, size := utf8.DecodeRune(canon[i:])
			if isTrackWordRune(r) {
				break
			}
			i += size
		}
		start := i
		for i < len(canon) {
			r, size := utf8.DecodeRune(canon[i:])
			if !isTrackWordRune(r) {
				break
			}
			i += size
		}
		if i == start {
			break
		}
		count++
		switch count {
		case 1:
			first = canon[start:i]
		case 2:
			s.emit(first)
			s.emit(canon[start:i])
		default:
			s.emit(canon[start:i])
		}
	}
	if count == 1 && !bytes.Equal(first, single) && !bytes.Equal(first, canon) {
		s.emit(first)
	}
}

// emit writes one word, framed, unless it is too long to be any phrase's word.
func (s *matchScratch) emit(w []byte) {
	if len(w) == 0 || len(w) > s.maxWordLen {
		return
	}
	s.words = append(s.words, 0)
	s.words = append(s.words, w...)
	s.words = append(s.words, 0)
}

// trackCanonical drops a leading scheme and "www.", as Twitter does before matching URLs: the
// term "example.com/foobarbaz" matches "https://www.example.com/foobarbaz".
func trackCanonical(w []byte) []byte {
	if bytes.HasPrefix(w, []byte("https://")) {
		w = w[len("https://"):]
	} else if bytes.HasPrefix(w, []byte("http://")) {
		w = w[len("http://"):]
	}
	return bytes.TrimPrefix(w, []byte("www."))
}

// trimTrackToken trims leading runes that are neither word runes nor '#'/'@' (so "(#tag)"
// keeps its hashtag) and trailing runes that are not word runes.
func trimTrackToken(w []byte) []byte {
	for len(w) > 0 {
		r, size := utf8.DecodeRune(w)
		if isTrackWordRune(r) || r == '#' || r == '@' {
			break
		}
		w = w[size:]
	}
	for len(w) > 0 {
		r, size := utf8.DecodeLastRune(w)
		if isTrackWordRune(r) {
			break
		}
		w = w[:len(w)-size]
	}
	return w
}

// isTrackWordRune reports whether r is part of a word: a letter, a combining mark (so a
// decomposed "touché" stays one word) or a number.
func isTrackWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiWord[r]
	}
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r)
}

// isTrackSeparator reports whether r separates the words of a phrase or the tokens of a text.
// NUL counts as a separator because it frames the words in the buffer the automaton scans.
func isTrackSeparator(r rune) bool {
	return r == 0 || unicode.IsSpace(r)
}

var asciiSeparator, asciiWord = func() (sep, word [utf8.RuneSelf]bool) {
	for c := range rune(utf8.RuneSelf) {
		sep[c] = isTrackSeparator(c)
		word[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	return sep, word
}()

// appendTrackLower appends s lower-cased with Unicode simple case mapping, the same for terms
// and messages. Invalid UTF-8 becomes U+FFFD, as with strings.ToLower.
func appendTrackLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		i += size
	}
	return dst
}
