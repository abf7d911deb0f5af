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
// Most words of a tweet are no phrase's word. A small filter keyed on a word's length and its
// first two and last bytes (a one-hash Bloom filter of the phrase words) keeps most of them out
// of the buffer, the way production Aho-Corasick engines put a prefilter in front of the automaton: the
// scan stays short and touches few automaton states, which matters once 400 phrases make the
// automaton larger than the CPU caches. The filter can only say "maybe"; the automaton decides.
//
// A Matcher is immutable after NewMatcher and safe for concurrent use.
type Matcher struct {
	terms []string
	trie  *ahocorasick.Trie
	// maxWordLen is the length of the longest phrase word, in bytes: longer message words
	// cannot match and are not written to the buffer.
	maxWordLen int
	// filter has bit trackWordKey(w) set for every phrase word w.
	filter *trackWordFilter
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
		terms:  slices.Clone(terms),
		need:   make([]uint8, len(terms)),
		filter: new(trackWordFilter),
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
		m.filter.add([]byte(w))
		frame = append(append(append(frame[:0], 0), w...), 0)
		builder.AddPattern(frame)
	}
	m.trie = builder.Build()

	m.scratch.New = func() any {
		return &matchScratch{
			maxWordLen:  m.maxWordLen,
			filter:      m.filter,
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
	filter     *trackWordFilter
	lower      []byte // the current token, lower-cased
	spans      []trackSpan
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
	if cap(s.spans) > maxRetainedScratch/16 {
		s.spans = nil
	}
}

// addText adds the words of a text field: the tweet text, the quoted text or a URL.
func (s *matchScratch) addText(text string) {
	s.addField(0, text)
}

// addEntity adds a hashtag or mention entity, which Twitter gives without its '#' or '@'. It is
// tokenized as the text "#tag" would be, so it matches both "tag" and "#tag".
func (s *matchScratch) addEntity(sigil byte, name string) {
	if name != "" {
		s.addField(sigil, name)
	}
}

// addField lower-cases text (after sigil, if not 0), splits it on whitespace (and NUL, which
// frames words in the buffer) and adds each token's words. Lower-casing, splitting and
// classifying happen in one pass, and a token made only of word runes, most tokens of a tweet,
// is written as it is without the work addToken does for punctuation.
func (s *matchScratch) addField(sigil byte, text string) {
	tok := s.lower[:0]   // the current token, lower-cased
	spans := s.spans[:0] // the sub-words of tok: runs of word runes
	sub := -1            // where the current sub-word started in tok, or -1
	if sigil != 0 {
		tok = append(tok, sigil)
	}
	for i := 0; i < len(text); {
		var class uint8
		at := len(tok)
		if c := text[i]; c < utf8.RuneSelf {
			c = asciiLower[c]
			class = asciiClass[c]
			if class != classSpace {
				tok = append(tok, c)
			}
			i++
		} else if r, ok := decodeThreeByteRune(text, i); ok {
			// Most non-ASCII text of tweets (CJK, most other scripts, many symbols) is three
			// bytes a rune and has no case: decoded inline and copied as it is.
			lower := trackLower(r)
			class = trackRuneClass(lower)
			if class != classSpace {
				if lower == r {
					tok = append(tok, text[i:i+3]...)
				} else {
					tok = utf8.AppendRune(tok, lower)
				}
			}
			i += 3
		} else {
			r, size := utf8.DecodeRuneInString(text[i:])
			r = trackLower(r)
			class = trackRuneClass(r)
			if class != classSpace {
				tok = utf8.AppendRune(tok, r)
			}
			i += size
		}
		switch class {
		case classWord:
			if sub < 0 {
				sub = at
			}
		case classOther:
			if sub >= 0 {
				spans = append(spans, trackSpan{sub, at})
				sub = -1
			}
		case classSpace:
			if len(tok) > 0 {
				if sub >= 0 {
					spans = append(spans, trackSpan{sub, len(tok)})
				}
				s.addToken(tok, spans)
				tok, spans, sub = tok[:0], spans[:0], -1
			}
		}
	}
	if len(tok) > 0 {
		if sub >= 0 {
			spans = append(spans, trackSpan{sub, len(tok)})
		}
		s.addToken(tok, spans)
	}
	s.lower, s.spans = tok[:0], spans[:0]
}

// decodeThreeByteRune decodes the rune at text[i] when it is a well-formed three-byte sequence
// with a lead byte of E1-EC or EE-EF: the ones every pair of continuation bytes completes, so
// that the check is two masks. It gives what utf8.DecodeRuneInString would, without the call;
// ok is false for anything else, which takes utf8.DecodeRuneInString.
func decodeThreeByteRune(text string, i int) (r rune, ok bool) {
	if i+2 >= len(text) {
		return 0, false
	}
	c0, c1, c2 := text[i], text[i+1], text[i+2]
	if c0 < 0xE1 || c0 > 0xEF || c0 == 0xED || c1&0xC0 != 0x80 || c2&0xC0 != 0x80 {
		return 0, false
	}
	return rune(c0&0x0F)<<12 | rune(c1&0x3F)<<6 | rune(c2&0x3F), true
}

// trackSpan is a sub-word of a token: the bytes tok[start:end].
type trackSpan struct{ start, end int }

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
func (s *matchScratch) addToken(tok []byte, spans []trackSpan) {
	if len(spans) == 1 && spans[0].start == 0 && spans[0].end == len(tok) {
		// The token is all word runes, like most tokens of a tweet. Canonicalizing, trimming
		// and splitting all need a rune that is not a word rune, so it is its only word.
		s.emit(tok)
		return
	}
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

	// Sub-words of canon, which is tok without a prefix that ends in '/' or '.', so no sub-word
	// straddles the cut. The common plain word ("hello.") has one sub-word equal to a word
	// already written; skipping it keeps the buffer, and so the scan, short.
	cut := len(tok) - len(canon)
	for len(spans) > 0 && spans[0].start < cut {
		spans = spans[1:]
	}
	switch {
	case len(spans) == 1:
		if w := tok[spans[0].start:spans[0].end]; !bytes.Equal(w, single) && !bytes.Equal(w, canon) {
			s.emit(w)
		}
	case len(spans) > 1:
		for _, sp := range spans {
			s.emit(tok[sp.start:sp.end])
		}
	}
}

// emit writes one word, framed, unless it is surely no phrase's word.
func (s *matchScratch) emit(w []byte) {
	if len(w) == 0 || len(w) > s.maxWordLen || !s.filter.mayContain(w) {
		return
	}
	s.words = append(s.words, 0)
	s.words = append(s.words, w...)
	s.words = append(s.words, 0)
}

// trackWordFilter is a one-hash Bloom filter of the phrase words: 65,536 bits (8 KiB, which
// stays in the L1 cache). With 400 phrases of a few words each, about 1% of the bits are set, so
// about 1% of the other words pass.
type trackWordFilter [1 << 16 / 64]uint64

// trackWordKey hashes the length and the first two and last bytes of a non-empty word: cheap,
// and enough to tell most words apart, including CJK words whose first two bytes name a block
// of 64 characters.
func trackWordKey(w []byte) uint32 {
	h := uint32(len(w))*0x9e3779b1 ^ uint32(w[0])*0x85ebca6b ^ uint32(w[len(w)-1])*0xc2b2ae35
	if len(w) > 1 {
		h ^= uint32(w[1]) * 0x27d4eb2f
	}
	return (h ^ h>>16) & (1<<16 - 1)
}

func (f *trackWordFilter) add(w []byte) {
	k := trackWordKey(w)
	f[k/64] |= 1 << (k % 64)
}

func (f *trackWordFilter) mayContain(w []byte) bool {
	k := trackWordKey(w)
	return f[k/64]&(1<<(k%64)) != 0
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
	return trackRuneClass(r) == classWord
}

// isTrackSeparator reports whether r separates the words of a phrase or the tokens of a text.
// NUL counts as a separator because it frames the words in the buffer the automaton scans.
func isTrackSeparator(r rune) bool {
	return r == 0 || unicode.IsSpace(r)
}

// The classes of runes the tokenizer tells apart.
const (
	classOther uint8 = iota // punctuation, symbols, controls: trimmed, and split words
	classWord               // letters, marks and numbers
	classSpace              // whitespace and NUL: separate tokens
)

// trackRuneClasses and trackCasedRunes cache what the unicode package would answer for the runes below
// trackTableLimit, which covers every script of the Basic Multilingual Plane and the emoji, so
// that the hot path does no binary search through Unicode range tables (a tweet in Japanese is
// almost all such runes). The tables are derived from the unicode package's own range tables, so
// they agree with it by construction; a test checks that too.
var trackRuneClasses, trackCasedRunes = buildTrackRuneTables()

const trackTableLimit = 0x20000

// buildTrackRuneTables returns 2 bits per rune (classOther, classWord or classSpace) and 1 bit
// per rune that unicode.ToLower may change (a rune inside unicode.CaseRanges).
func buildTrackRuneTables() (class [trackTableLimit / 32]uint64, cased [trackTableLimit / 64]uint64) {
	setClass := func(c uint8, lo, hi, stride uint32) {
		for r := lo; r <= hi && r < trackTableLimit; r += stride {
			class[r/32] |= uint64(c) << (2 * (r % 32))
		}
	}
	for _, table := range []*unicode.RangeTable{unicode.Letter, unicode.Mark, unicode.Number, unicode.White_Space} {
		c := classWord
		if table == unicode.White_Space {
			c = classSpace // No rune is both a word rune and a space.
		}
		for _, rg := range table.R16 {
			setClass(c, uint32(rg.Lo), uint32(rg.Hi), uint32(rg.Stride))
		}
		for _, rg := range table.R32 {
			setClass(c, rg.Lo, rg.Hi, rg.Stride)
		}
	}
	setClass(classSpace, 0, 0, 1)
	for _, cr := range unicode.CaseRanges {
		for r := cr.Lo; r <= cr.Hi && r < trackTableLimit; r++ {
			cased[r/64] |= 1 << (r % 64)
		}
	}
	return class, cased
}

// trackRuneClass classifies a rune that is not ASCII (ASCII goes through asciiClass).
func trackRuneClass(r rune) uint8 {
	if u := uint32(r); u < trackTableLimit {
		return uint8(trackRuneClasses[u/32]>>(2*(u%32))) & 3
	}
	return trackRuneClassSlow(r)
}

func trackRuneClassSlow(r rune) uint8 {
	switch {
	case unicode.IsSpace(r):
		return classSpace
	case unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r):
		return classWord
	}
	return classOther
}

// trackLower lower-cases one rune exactly as unicode.ToLower does, skipping the search through
// unicode.CaseRanges for the many runes (all of CJK) that have no case.
func trackLower(r rune) rune {
	if u := uint32(r); u < trackTableLimit && trackCasedRunes[u/64]&(1<<(u%64)) == 0 {
		return r
	}
	return unicode.ToLower(r)
}

var asciiLower, asciiClass = func() (lower, class [utf8.RuneSelf]uint8) {
	for c := range uint8(utf8.RuneSelf) {
		lower[c] = c
		if 'A' <= c && c <= 'Z' {
			lower[c] = c + 'a' - 'A'
		}
		switch {
		case isTrackSeparator(rune(c)):
			class[c] = classSpace
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
			class[c] = classWord
		}
	}
	return lower, class
}()

// appendTrackLower appends s lower-cased with Unicode simple case mapping, the same for terms
// and messages. Invalid UTF-8 becomes U+FFFD, as with strings.ToLower.
func appendTrackLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			dst = append(dst, asciiLower[c])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		dst = utf8.AppendRune(dst, trackLower(r))
		i += size
	}
	return dst
}
