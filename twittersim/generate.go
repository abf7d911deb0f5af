package twittersim

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// twitterEpoch is the Snowflake epoch (2010-11-04T01:42:54.657Z) in Unix milliseconds. Tweet ids
// are built like Twitter's so that they exceed 2^53, as real ids do: a client that reads id as
// a float64 instead of id_str gets them wrong, here as in production.
const twitterEpoch = 1288834974657

// The shares of the synthetic stream. They are fixed rather than configurable: tests need the
// variety, not the knobs.
const (
	shareMatching = 0.8  // candidates that carry a track phrase; the rest are filtered out
	shareRetweet  = 0.15 // retweets, with the original in retweeted_status
	shareQuote    = 0.10 // quotes, with the original in quoted_status
	shareLong     = 0.15 // extended tweets: truncated text, full text in extended_tweet
)

// Vocabularies. They mix ASCII, accented Latin, Greek, Cyrillic, emoji (some with a variation
// selector or skin-tone modifier) and Japanese, so that every synthetic tweet exercises the
// UTF-8 path of whatever stores it.
var (
	wordsMixed = []string{
		"the", "stream", "is", "fast", "today", "we", "ship", "a", "new", "build", "with", "coffee",
		"and", "friends", "café", "naïve", "touché", "Zürich", "São", "Paulo", "jalapeño", "über",
		"résumé", "Ελλάδα", "Привет", "🚀", "😀", "🎉", "❤️", "👍🏽", "ok", "lol", "wow", "really",
		"weekend", "deploy", "night", "crème", "brûlée", "mañana", "straße", "Kraków", "đẹp",
	}
	wordsJapanese = []string{
		"こんにちは", "ありがとう", "今日は", "東京", "ラーメン", "美味しい", "世界", "新しい",
		"🍜", "✨", "です", "かわいい", "明日",
	}
	hashtagsExtra = []string{"café", "東京", "GoLang", "Fargate", "día", "🎉party", "ねこ"}
	langsMixed    = []string{"en", "fr", "es", "de", "und"}
	screenNames   = []string{
		"ayuu0123", "jose_alvarez", "zoe_bloom", "yamada_taro", "gopher", "ana_luisa",
		"mkowalski", "streamfan", "noemi", "k_tanaka", "bjorn", "cafe_owner",
	}
	displayNames = []string{
		"AYUMI", "José Álvarez", "Zoë 🌸", "山田太郎", "Gopher", "Ana Luísa",
		"Michał Kowalski", "Stream Fan 🚀", "Noémi", "田中 健", "Björn", "Café Owner ☕",
	}
	punctuation = []string{"", "", "", ",", "!", ".", "?", ":", "…", "!!"}
)

// generator makes deterministic synthetic tweets: the same seed, clock and sequence of track
// phrases give the same tweets. It is not safe for concurrent use; Server serialises it.
type generator struct {
	rng    *rand.Rand
	now    func() time.Time
	seq    int64
	lastID int64
	users  []userJSON
}

func newGenerator(seed int64, now func() time.Time) *generator {
	g := &generator{rng: rand.New(rand.NewPCG(uint64(seed), 0x7477697474657273)), now: now}
	for i, sn := range screenNames {
		id := int64(1186275104 + 7919*i)
		g.users = append(g.users, userJSON{
			ID: id, IDStr: strconv.FormatInt(id, 10), ScreenName: sn, Name: displayNames[i],
		})
	}
	return g
}

// next makes one candidate tweet. phrases are the track phrases (each a list of terms, AND-ed);
// most candidates carry one of them in varied spelling, the others carry none.
func (g *generator) next(phrases [][]string) *tweetJSON {
	matching := len(phrases) > 0 && g.rng.Float64() < shareMatching
	switch r := g.rng.Float64(); {
	case r < shareRetweet:
		orig := g.base(phrases, matching, g.rng.Float64() < shareLong)
		return g.retweet(orig)
	case r < shareRetweet+shareQuote:
		orig := g.base(phrases, matching, false)
		return g.quote(orig)
	default:
		return g.base(phrases, matching, g.rng.Float64() < shareLong)
	}
}

func (g *generator) newID() (int64, time.Time) {
	now := g.now()
	g.seq++
	id := (now.UnixMilli()-twitterEpoch)<<22 | g.seq&0x3fffff
	if id <= g.lastID {
		id = g.lastID + 1
	}
	g.lastID = id
	return id, now
}

func (g *generator) user() userJSON { return g.users[g.rng.IntN(len(g.users))] }

func (g *generator) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// shell fills the fields every tweet has.
func (g *generator) shell(lang string) *tweetJSON {
	id, now := g.newID()
	u := g.user()
	return &tweetJSON{
		CreatedAt:     now.UTC().Format(createdAtLayout),
		ID:            id,
		IDStr:         strconv.FormatInt(id, 10),
		Source:        `<a href="https://twittersim.invalid" rel="nofollow">twittersim</a>`,
		User:          &u,
		RetweetCount:  g.rng.IntN(500),
		FavoriteCount: g.rng.IntN(2000),
		FilterLevel:   "low",
		Lang:          lang,
		TimestampMs:   strconv.FormatInt(now.UnixMilli(), 10),
	}
}

// base makes an original tweet. With long set it is an extended tweet: more than 140
// characters, so text is cut and the full text is only in extended_tweet.
func (g *generator) base(phrases [][]string, matching, long bool) *tweetJSON {
	vocab, lang := wordsMixed, g.pick(langsMixed)
	if g.rng.Float64() < 0.2 {
		vocab, lang = wordsJapanese, "ja"
	}
	t := g.shell(lang)

	n := 3 + g.rng.IntN(8)
	if long {
		n = 30 + g.rng.IntN(12)
	}
	items := make([]func(*textBuilder), 0, n+4)
	for range n {
		w := g.pick(vocab)
		items = append(items, func(tb *textBuilder) { tb.plain(w) })
	}
	insert := func(f func(*textBuilder)) {
		i := g.rng.IntN(len(items) + 1)
		items = append(items[:i], append([]func(*textBuilder){f}, items[i:]...)...)
	}
	if matching {
		for _, term := range phrases[g.rng.IntN(len(phrases))] {
			insert(g.renderTerm(term))
		}
	}
	if g.rng.Float64() < 0.25 {
		tag := g.pick(hashtagsExtra)
		insert(func(tb *textBuilder) { tb.hashtag(tag, "") })
	}
	if g.rng.Float64() < 0.2 {
		u := g.user()
		insert(func(tb *textBuilder) { tb.mention(u, "") })
	}
	if g.rng.Float64() < 0.2 {
		path := g.pick([]string{"blog/post", "café", "news/2014/08", "a?b=c"})
		tco := g.tco()
		items = append(items, func(tb *textBuilder) {
			tb.link(tco, "https://www.example.com/"+path, "example.com/"+path)
		})
	}
	tb := &textBuilder{}
	for _, f := range items {
		f(tb)
	}
	full, ents := tb.b.String(), tb.ents
	t.Text, t.Entities = full, ents.orEmpty()
	if long && tb.n > 140 {
		g.truncate(t, full, ents)
	}
	return t
}

// renderTerm writes a track term the way people do: in any case, glued to punctuation, or as a
// hashtag or a mention when the term can be one.
func (g *generator) renderTerm(term string) func(*textBuilder) {
	spelled := g.spell(term)
	after := g.pick(punctuation)
	r := g.rng.Float64()
	switch {
	case r < 0.2 && isHashtagText(term):
		return func(tb *textBuilder) { tb.hashtag(spelled, after) }
	case r < 0.3 && isScreenName(term):
		u := userJSON{ID: 42, IDStr: "42", ScreenName: spelled, Name: term}
		return func(tb *textBuilder) { tb.mention(u, after) }
	case r < 0.4:
		return func(tb *textBuilder) { tb.plain("“" + spelled + "”" + after) }
	case r < 0.5:
		return func(tb *textBuilder) { tb.plain("(" + spelled + ")" + after) }
	default:
		return func(tb *textBuilder) { tb.plain(spelled + after) }
	}
}

// spell changes the case of a term: Twitter's track matching is case-insensitive.
func (g *generator) spell(term string) string {
	switch g.rng.IntN(4) {
	case 0:
		return strings.ToUpper(term)
	case 1:
		return strings.ToLower(term)
	case 2:
		r, size := utf8.DecodeRuneInString(term)
		return string(unicode.ToUpper(r)) + strings.ToLower(term[size:])
	default:
		return term
	}
}

// truncate turns t into an extended tweet in compatibility mode, as the streaming API sent it:
// text holds the first 113 characters, an ellipsis and a link to the tweet; the complete text
// and entities are in extended_tweet.
func (g *generator) truncate(t *tweetJSON, full string, ents entitiesJSON) {
	cut := 113
	visible := strings.TrimRight(string([]rune(full)[:cut]), " ")
	tb := &textBuilder{}
	tb.write(visible + "…")
	short := entitiesJSON{}
	for _, h := range ents.Hashtags {
		if h.Indices[1] <= cut {
			short.Hashtags = append(short.Hashtags, h)
		}
	}
	for _, m := range ents.UserMentions {
		if m.Indices[1] <= cut {
			short.UserMentions = append(short.UserMentions, m)
		}
	}
	tb.ents = short
	tb.link(g.tco(), "https://twitter.com/i/web/status/"+t.IDStr, "twitter.com/i/web/status/1…")
	t.Text, t.Entities, t.Truncated = tb.b.String(), tb.ents.orEmpty(), true
	t.ExtendedTweet = &extendedJSON{
		FullText:         full,
		DisplayTextRange: [2]int{0, utf8.RuneCountInString(full)},
		Entities:         ents.orEmpty(),
	}
}

// retweet wraps orig the way the stream delivers a retweet: "RT @user: " and the original's
// text cut to 140 characters, and the original itself in retweeted_status.
func (g *generator) retweet(orig *tweetJSON) *tweetJSON {
	t := g.shell(orig.Lang)
	for t.User.ScreenName == orig.User.ScreenName {
		u := g.user()
		t.User = &u
	}
	tb := &textBuilder{}
	tb.write("RT")
	tb.mention(*orig.User, ":")
	text := orig.fullText()
	if rest := 140 - tb.n - 1; utf8.RuneCountInString(text) > rest {
		text = string([]rune(text)[:rest-1]) + "…"
	}
	tb.plain(text)
	t.Text, t.Entities = tb.b.String(), tb.ents.orEmpty()
	t.RetweetCount, t.FavoriteCount = orig.RetweetCount, 0
	t.RetweetedStatus = orig
	return t
}

// quote makes a tweet that comments on orig and links to it; the original is in quoted_status.
func (g *generator) quote(orig *tweetJSON) *tweetJSON {
	t := g.shell(orig.Lang)
	tb := &textBuilder{}
	for range 2 + g.rng.IntN(4) {
		tb.plain(g.pick(wordsMixed))
	}
	link := "twitter.com/" + orig.User.ScreenName + "/status/" + orig.IDStr
	tb.link(g.tco(), "https://"+link, link)
	t.Text, t.Entities = tb.b.String(), tb.ents.orEmpty()
	t.IsQuoteStatus = true
	t.QuotedStatusID, t.QuotedStatusIDStr, t.QuotedStatus = orig.ID, orig.IDStr, orig
	return t
}

// tco makes a t.co short link.
func (g *generator) tco() string {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 10)
	for i := range b {
		b[i] = alnum[g.rng.IntN(len(alnum))]
	}
	return "https://t.co/" + string(b)
}

// textBuilder writes tweet text and records entity indices, counted in characters (code
// points) as Twitter counts them.
type textBuilder struct {
	b    strings.Builder
	n    int
	ents entitiesJSON
}

func (tb *textBuilder) write(s string) {
	tb.b.WriteString(s)
	tb.n += utf8.RuneCountInString(s)
}

func (tb *textBuilder) sep() {
	if tb.n > 0 {
		tb.write(" ")
	}
}

func (tb *textBuilder) plain(s string) {
	tb.sep()
	tb.write(s)
}

func (tb *textBuilder) hashtag(tag, after string) {
	tb.sep()
	start := tb.n
	tb.write("#" + tag)
	tb.ents.Hashtags = append(tb.ents.Hashtags, hashtagJSON{Text: tag, Indices: [2]int{start, tb.n}})
	tb.write(after)
}

func (tb *textBuilder) mention(u userJSON, after string) {
	tb.sep()
	start := tb.n
	tb.write("@" + u.ScreenName)
	tb.ents.UserMentions = append(tb.ents.UserMentions, mentionJSON{
		ScreenName: u.ScreenName, Name: u.Name, ID: u.ID, IDStr: u.IDStr, Indices: [2]int{start, tb.n},
	})
	tb.write(after)
}

func (tb *textBuilder) link(tco, expanded, display string) {
	tb.sep()
	start := tb.n
	tb.write(tco)
	tb.ents.URLs = append(tb.ents.URLs, urlJSON{
		URL: tco, ExpandedURL: expanded, DisplayURL: display, Indices: [2]int{start, tb.n},
	})
}

// orEmpty returns a copy whose nil lists are empty, because Twitter sends [] and never null.
func (e entitiesJSON) orEmpty() *entitiesJSON {
	if e.Hashtags == nil {
		e.Hashtags = []hashtagJSON{}
	}
	if e.URLs == nil {
		e.URLs = []urlJSON{}
	}
	if e.UserMentions == nil {
		e.UserMentions = []mentionJSON{}
	}
	if e.Symbols == nil {
		e.Symbols = []hashtagJSON{}
	}
	return &e
}

// isHashtagText reports whether s can follow '#': letters, digits, marks and underscores.
func isHashtagText(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && r != '_' {
			return false
		}
	}
	return true
}

// isScreenName reports whether s can be a Twitter screen name: 1-15 ASCII letters, digits or
// underscores.
func isScreenName(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
