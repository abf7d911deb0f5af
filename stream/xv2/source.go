// Package xv2 is the X API v2 filtered-stream source: rules synced from FILTER, an app-only
// bearer token, and the stream read and decoded once per line.
package xv2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/conn"
)

// SourceName is the X source's Name, and the Source of its messages.
const SourceName = "x"

// DefaultStallTimeout is how long the X stream may be silent before it is replaced. X sends a
// heartbeat ("\r\n") every 20 s and its documentation says to reconnect after 20 s without
// one; a timeout equal to the interval turns every late heartbeat into a reconnect, and
// connection attempts are rate limited. Three intervals, the ratio Twitter itself used for v1.1
// (30 s keep-alives, 90 s stall), tolerates two lost heartbeats. STALL_TIMEOUT=20s restores
// the documented value.
const DefaultStallTimeout = 60 * time.Second

const (
	// xRuleTagPrefix marks the filtered-stream rules this app added. Only rules with this tag
	// are ever deleted: the rules belong to the X project, which other apps may share.
	xRuleTagPrefix = "streammatch:"
	// xMaxRuleLength is the shortest rule-length limit of X's filtered-stream tiers (512
	// characters; pay-per-use and Pro allow 1,024). A track phrase is at most 60 bytes, so a
	// translated rule stays far below it; the check guards the translation, not the user.
	xMaxRuleLength = 512
	// xRulesTimeout bounds one call to the rules endpoint, which is ordinary REST.
	xRulesTimeout = 30 * time.Second
	// xMaxRulesBody bounds a rules answer: 1,000 rules of at most 1,024 characters.
	xMaxRulesBody = 4 << 20
	// xMaxRulePages bounds the pagination of the rule list.
	xMaxRulePages = 100
	// xMaxErrorBody bounds what is kept of a failed rules call to classify it.
	xMaxErrorBody = 4 << 10
)

// xStreamQuery asks for what stream.Message needs: the author's username (expansion author_id), the
// originals of retweets and quotes (referenced_tweets.id, delivered in includes.tweets), and
// the full text of long posts (note_tweet).
var xStreamQuery = url.Values{
	"expansions":   {"author_id,referenced_tweets.id"},
	"tweet.fields": {"author_id,created_at,lang,entities,note_tweet,referenced_tweets"},
	"user.fields":  {"username"},
}.Encode()

// Config configures an Source.
type Config struct {
	// BaseURL is the API host: requests go to BaseURL + /2/tweets/search/stream and
	// BaseURL + /2/tweets/search/stream/rules. X's is https://api.x.com.
	BaseURL string
	// Token is the app-only bearer token (OAuth 2.0 App-Only) of an app in an X project.
	Token stream.Secret
	// Track holds the FILTER phrases, in Twitter v1.1 track syntax. Each becomes one rule.
	Track []string
	// StallTimeout is how long a read may wait for a byte; zero means DefaultStallTimeout.
	StallTimeout time.Duration
	// MaxLine is the longest message accepted, in bytes; zero means conn.DefaultMaxLine.
	MaxLine int
	// Logger receives one line per state change. Nil discards.
	Logger *slog.Logger
	// After is the clock for reconnect waits; nil means time.After.
	After func(time.Duration) <-chan time.Time
	// Transport carries the requests; nil means a default without keep-alives.
	Transport http.RoundTripper
}

// Source reads the X API v2 filtered stream (GET /2/tweets/search/stream) with an app-only
// bearer token. The filter lives on X's side as rules: before it first connects, Run makes
// the project's rules tagged by this app equal to one rule per track phrase, leaving every
// other rule alone. Matching is still done locally by the Matcher, so what is stored follows
// Twitter's track semantics whatever X's rule language matches.
type Source struct {
	conn    *conn.Stream
	token   stream.Secret
	rest    *http.Client
	base    *url.URL
	track   []string
	maxLine int
	// synced is set once the rules are in place; only Run's goroutine touches it.
	synced bool
}

var _ stream.Source = (*Source)(nil)

// NewSource checks cfg; every problem is reported at once, naming its field and never the
// token. Nothing connects until Run.
func NewSource(cfg Config) (*Source, error) {
	var problems []error
	base, err := conn.ParseBaseURL("Config.BaseURL", "https://api.x.com", cfg.BaseURL)
	if err != nil {
		problems = append(problems, err)
	}
	if cfg.Token.Empty() {
		problems = append(problems, errors.New("Config.Token is empty"))
	}
	if len(cfg.Track) == 0 {
		problems = append(problems, errors.New("Config.Track is empty; want at least one phrase"))
	}
	for i, phrase := range cfg.Track {
		if strings.TrimSpace(phrase) == "" {
			problems = append(problems, fmt.Errorf("Config.Track[%d] is empty", i))
		} else if v := xRuleValue(phrase); len(v) > xMaxRuleLength {
			problems = append(problems, fmt.Errorf("Config.Track[%d] makes a rule of %d characters; X allows %d", i, len(v), xMaxRuleLength))
		}
	}
	if cfg.StallTimeout < 0 {
		problems = append(problems, errors.New("Config.StallTimeout is negative; want a duration like 60s, or 0 for the default"))
	}
	if cfg.MaxLine < 0 {
		problems = append(problems, errors.New("Config.MaxLine is negative; want a size in bytes, or 0 for the default"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("x source: %w", errors.Join(problems...))
	}
	stall := conn.OrDefault(cfg.StallTimeout, DefaultStallTimeout)
	c := conn.New(conn.Config{Name: SourceName, StallTimeout: stall, Transport: cfg.Transport, Logger: cfg.Logger, After: cfg.After})
	return &Source{
		conn:    c,
		token:   cfg.Token,
		rest:    &http.Client{Transport: c.Transport(), Timeout: xRulesTimeout},
		base:    base,
		track:   append([]string(nil), cfg.Track...),
		maxLine: conn.OrDefault(cfg.MaxLine, conn.DefaultMaxLine),
	}, nil
}

// Name returns "x".
func (s *Source) Name() string { return SourceName }

// Status returns a snapshot of the connection state.
func (s *Source) Status() stream.SourceStatus { return s.conn.Status() }

// Run syncs the rules, connects, emits every record and reconnects by the v1.1 schedules (which
// X's v2 documentation repeats: at once after a drop, linear 250 ms to 16 s for network errors,
// exponential 5 s to 320 s for HTTP errors, exponential from 1 minute for 429) until ctx ends.
// A failed rule sync is retried on the same schedules before any stream connection is made.
func (s *Source) Run(ctx context.Context, emit func(context.Context, stream.Record)) error {
	return s.conn.Run(ctx, func(ctx context.Context) conn.End {
		if !s.synced {
			if end := s.syncRules(ctx); end != nil {
				return *end
			}
			s.synced = true
		}
		return s.stream(ctx, emit)
	}, s.adjust)
}

// stream makes one connection and emits its records until it ends.
func (s *Source) stream(ctx context.Context, emit func(context.Context, stream.Record)) conn.End {
	u := s.base.JoinPath("2/tweets/search/stream")
	u.RawQuery = xStreamQuery
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return conn.End{Kind: conn.EndNetwork, Err: err, Phase: "stream"}
	}
	req.Header.Set("Authorization", "Bearer "+string(s.token))
	end := s.conn.Do(ctx, req, func(body io.Reader) (int64, error) {
		lines := conn.NewLineReader(body, s.maxLine)
		var n int64
		for {
			line, reason, err := lines.Next()
			switch {
			case reason != "":
				emit(ctx, stream.Skip(reason))
			case line != nil:
				n++
				rec := decodeXLine(line)
				if rec.Kind == stream.KindNotice && rec.Notice == "disconnect" {
					s.conn.Logger().Warn("x disconnect notice")
				}
				emit(ctx, rec)
			}
			if err != nil {
				return n, err
			}
		}
	})
	end.Phase = "stream"
	return end
}

// adjust refines the policy's wait and reason with what X said.
func (s *Source) adjust(end conn.End, wait time.Duration, reason string) (time.Duration, string) {
	if end.Kind == conn.EndHTTP {
		if xConnectionIssue(end.Body) == "TooManyConnections" {
			reason = fmt.Sprintf("too many connections (%d)", end.Status)
		}
		if end.Status == http.StatusTooManyRequests {
			wait = max(wait, conn.RateLimitWait(end.Header, s.conn.Now()))
		}
	}
	if end.Phase == "rules" {
		reason = "rule sync: " + reason
	}
	return wait, reason
}

// xConnectionIssue reads connection_issue from X's problem body, e.g.
// {"title":"ConnectionException","connection_issue":"TooManyConnections",...}.
func xConnectionIssue(body []byte) string {
	var p struct {
		ConnectionIssue string `json:"connection_issue"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	return p.ConnectionIssue
}

// Rule is one filtered-stream rule as the rules endpoint lists it.
type Rule struct {
	ID    string `json:"id,omitempty"`
	Value string `json:"value"`
	Tag   string `json:"tag,omitempty"`
}

// syncRules makes this app's rules equal to one rule per track phrase: it deletes the rules
// tagged by this app that are no longer wanted (an older FILTER), then adds the missing ones.
// Rules without the app's tag are never deleted; one whose value equals a wanted rule already
// delivers those posts, so no duplicate is added (X would refuse it). It returns nil on success.
func (s *Source) syncRules(ctx context.Context) *conn.End {
	existing, end := s.listRules(ctx)
	if end != nil {
		return end
	}
	wanted := make([]Rule, 0, len(s.track))
	wantedTag := map[string]string{}
	for _, phrase := range s.track {
		v := xRuleValue(phrase)
		if _, dup := wantedTag[v]; dup {
			continue
		}
		wantedTag[v] = xRuleTag(v)
		wanted = append(wanted, Rule{Value: v, Tag: wantedTag[v]})
	}
	present := map[string]bool{}
	var stale []string
	for _, r := range existing {
		ours := strings.HasPrefix(r.Tag, xRuleTagPrefix)
		switch {
		case ours && wantedTag[r.Value] == r.Tag && !present[r.Value]:
			present[r.Value] = true
		case ours:
			stale = append(stale, r.ID)
		case wantedTag[r.Value] != "":
			present[r.Value] = true
		}
	}
	var add []Rule
	for _, r := range wanted {
		if !present[r.Value] {
			add = append(add, r)
		}
	}
	if len(stale) > 0 {
		var out xRulesAnswer
		if end := s.rulesCall(ctx, http.MethodPost, nil, map[string]any{"delete": map[string]any{"ids": stale}}, &out); end != nil {
			return end
		}
	}
	if len(add) > 0 {
		var out xRulesAnswer
		if end := s.rulesCall(ctx, http.MethodPost, nil, map[string]any{"add": add}, &out); end != nil {
			return end
		}
		for _, p := range out.Errors {
			if p.Title == "DuplicateRule" {
				continue // the value exists already, so its posts are delivered
			}
			s.conn.Logger().Error("x rule not created", "value", p.Value, "title", p.Title)
		}
	}
	s.conn.Logger().Info("x rules synced", "rules", len(wanted), "added", len(add), "deleted", len(stale))
	return nil
}

// xRulesAnswer is the body of the rules endpoint's answers.
type xRulesAnswer struct {
	Data []Rule `json:"data"`
	Meta struct {
		NextToken string `json:"next_token"`
	} `json:"meta"`
	Errors []struct {
		Value string `json:"value"`
		Title string `json:"title"`
	} `json:"errors"`
}

// listRules reads every rule of the project, following next_token.
func (s *Source) listRules(ctx context.Context) ([]Rule, *conn.End) {
	var rules []Rule
	q := url.Values{"max_results": {"1000"}}
	for range xMaxRulePages {
		var page xRulesAnswer
		if end := s.rulesCall(ctx, http.MethodGet, q, nil, &page); end != nil {
			return nil, end
		}
		rules = append(rules, page.Data...)
		if page.Meta.NextToken == "" {
			break
		}
		q.Set("pagination_token", page.Meta.NextToken)
	}
	return rules, nil
}

// rulesCall makes one request to the rules endpoint and decodes a 2xx answer into out. A
// failure comes back as an attempt end of phase "rules", classified like a stream's.
func (s *Source) rulesCall(ctx context.Context, method string, query url.Values, in, out any) *conn.End {
	fail := func(end conn.End) *conn.End { end.Phase = "rules"; return &end }
	u := s.base.JoinPath("2/tweets/search/stream/rules")
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fail(conn.End{Kind: conn.EndNetwork, Err: err})
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fail(conn.End{Kind: conn.EndNetwork, Err: err})
	}
	req.Header.Set("Authorization", "Bearer "+string(s.token))
	req.Header.Set("User-Agent", "streammatch")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.rest.Do(req)
	if err != nil {
		return fail(conn.End{Kind: conn.EndNetwork, Err: err})
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, xMaxRulesBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail(conn.End{Kind: conn.EndHTTP, Status: resp.StatusCode, Header: resp.Header, Body: b[:min(len(b), xMaxErrorBody)]})
	}
	if err != nil {
		return fail(conn.End{Kind: conn.EndNetwork, Err: err})
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fail(conn.End{Kind: conn.EndNetwork, Err: errors.New("rules answer is not the documented JSON")})
	}
	return nil
}

// xRuleTag names a rule this app added: the prefix and a hash of the value, so that a rule
// whose value changed is recognised as stale even if someone edited it by hand.
func xRuleTag(value string) string {
	sum := sha256.Sum256([]byte(value))
	return xRuleTagPrefix + hex.EncodeToString(sum[:8])
}

// xRuleValue translates one track phrase into a filtered-stream rule. In both languages a space
// is AND, so each word of the phrase becomes one clause. Each word is quoted, which makes
// punctuation and operator words (OR, a leading '-') literal, and widened to what track
// matches beyond the text: a word that could be a hashtag or a username also matches #word
// and @word, and a word with a dot or slash also matches url:"word". A word that is a
// hashtag or mention in the phrase keeps X's operator. The result is a superset of what track
// matches; the Matcher then keeps exactly what track would.
func xRuleValue(phrase string) string {
	words := strings.Fields(phrase)
	clauses := make([]string, 0, len(words))
	plain := make([]string, 0, len(words))
	for _, w := range words {
		plain = append(plain, xQuote(w))
		clauses = append(clauses, xWordClause(w))
	}
	if v := strings.Join(clauses, " "); len(v) <= xMaxRuleLength {
		return v
	}
	// Widening every word of a long phrase could pass the limit; quoted words alone cannot
	// (60 bytes of phrase make at most 120 bytes of rule).
	return strings.Join(plain, " ")
}

func xWordClause(w string) string {
	switch {
	case len(w) > 1 && w[0] == '#' && isHashtagBody(w[1:]):
		return w
	case len(w) > 1 && w[0] == '@' && isUsername(w[1:]):
		return w
	}
	alts := []string{xQuote(w)}
	if isHashtagBody(w) {
		alts = append(alts, "#"+w)
	}
	if isUsername(w) {
		alts = append(alts, "@"+w)
	}
	if strings.ContainsAny(w, "./") {
		alts = append(alts, "url:"+xQuote(w))
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return "(" + strings.Join(alts, " OR ") + ")"
}

// xQuote quotes a keyword for X's rule language, escaping backslashes and double quotes.
func xQuote(w string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`
}

// isHashtagBody reports whether s can follow '#': letters, digits, marks and '_', not only digits.
func isHashtagBody(s string) bool {
	letter := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsMark(r) || r == '_':
			letter = true
		case unicode.IsDigit(r):
		default:
			return false
		}
	}
	return letter
}

// isUsername reports whether s is a valid X username: 1-15 of A-Z, a-z, 0-9 and '_'.
func isUsername(s string) bool {
	if len(s) == 0 || len(s) > 15 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// xLine is one message of the v2 stream: a post with its expansions, or problems only.
type xLine struct {
	Data     *xPost `json:"data"`
	Includes struct {
		Users  []xUser `json:"users"`
		Tweets []xPost `json:"tweets"`
	} `json:"includes"`
	Errors []xProblem `json:"errors"`
}

type xPost struct {
	ID        string     `json:"id"`
	Text      string     `json:"text"`
	AuthorID  string     `json:"author_id"`
	CreatedAt string     `json:"created_at"`
	Lang      string     `json:"lang"`
	Entities  *xEntities `json:"entities"`
	NoteTweet *struct {
		Text     string     `json:"text"`
		Entities *xEntities `json:"entities"`
	} `json:"note_tweet"`
	ReferencedTweets []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"referenced_tweets"`
}

type xUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

type xEntities struct {
	Hashtags []struct {
		Tag string `json:"tag"`
	} `json:"hashtags"`
	Mentions []struct {
		Username string `json:"username"`
	} `json:"mentions"`
	URLs []struct {
		ExpandedURL string `json:"expanded_url"`
		DisplayURL  string `json:"display_url"`
	} `json:"urls"`
}

type xProblem struct {
	Title string `json:"title"`
	Type  string `json:"type"`
}

// decodeXLine decodes one v2 stream message (without its "\r\n") into a stream.Record. A post becomes
// a message; a line of problems only is a notice ("disconnect" for X's operational-disconnect,
// after which X closes the stream; "other" for any other problem). Problems beside data (an
// expansion X could not resolve, such as a deleted original) do not stop the post. A type error
// ("id": 123) skips the post as invalid_tweet rather than storing it half-empty.
func decodeXLine(line []byte) stream.Record {
	if !utf8.Valid(line) {
		return stream.Skip(stream.ReasonInvalidUTF8)
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return stream.Skip(stream.ReasonInvalidJSON)
	}
	var w xLine
	err := json.Unmarshal(trimmed, &w)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return stream.Skip(stream.ReasonInvalidJSON)
	}
	if w.Data == nil {
		if err != nil {
			return stream.Skip(stream.ReasonInvalidNotice)
		}
		for _, p := range w.Errors {
			if p.Title == "operational-disconnect" || strings.HasSuffix(p.Type, "/operational-disconnect") {
				return stream.Notice("disconnect")
			}
		}
		return stream.Notice("other")
	}
	if err != nil {
		return stream.Skip(stream.ReasonInvalidTweet)
	}
	m, reason := buildXMessage(&w)
	if reason != "" {
		return stream.Skip(reason)
	}
	return stream.Record{Kind: stream.KindMessage, Message: m}
}

func buildXMessage(w *xLine) (stream.Message, string) {
	t := w.Data
	if t.ID == "" {
		return stream.Message{}, stream.ReasonMissingID
	}
	var user string
	for _, u := range w.Includes.Users {
		if u.ID == t.AuthorID {
			user = u.Username
			break
		}
	}
	if t.AuthorID == "" || user == "" {
		return stream.Message{}, stream.ReasonMissingUser
	}
	original := func(id string) *xPost {
		for i := range w.Includes.Tweets {
			if w.Includes.Tweets[i].ID == id {
				return &w.Includes.Tweets[i]
			}
		}
		return nil
	}
	text := xFullText(t)
	var retweeted, quoted *xPost
	for _, ref := range t.ReferencedTweets {
		switch ref.Type {
		case "retweeted":
			retweeted = original(ref.ID)
		case "quoted":
			quoted = original(ref.ID)
		}
	}
	if retweeted != nil {
		// A retweet's own text is "RT @user: " plus a truncated copy; the original has it whole.
		if full := xFullText(retweeted); full != "" {
			text = full
		}
		if quoted == nil {
			for _, ref := range retweeted.ReferencedTweets {
				if ref.Type == "quoted" {
					quoted = original(ref.ID)
				}
			}
		}
	}
	if strings.TrimSpace(text) == "" {
		return stream.Message{}, stream.ReasonMissingText
	}
	if t.CreatedAt == "" {
		return stream.Message{}, stream.ReasonMissingCreatedAt
	}
	created, err := time.Parse(time.RFC3339, t.CreatedAt)
	if err != nil {
		return stream.Message{}, stream.ReasonBadCreatedAt
	}
	m := stream.Message{
		ID:        t.ID,
		User:      user,
		CreatedAt: created.UTC(),
		Text:      text,
		Lang:      t.Lang,
		Source:    SourceName,
	}
	if quoted != nil {
		m.Quoted = xFullText(quoted)
	}
	for _, p := range []*xPost{t, retweeted, quoted} {
		if p == nil {
			continue
		}
		addXEntities(&m, p.Entities)
		if p.NoteTweet != nil {
			addXEntities(&m, p.NoteTweet.Entities)
		}
	}
	return m, ""
}

// xFullText is a post's whole text: note_tweet.text for a long post (text then holds only the
// first 280 characters), else text. Like v1.1, v2 escapes '&', '<' and '>' in text.
func xFullText(p *xPost) string {
	text := p.Text
	if p.NoteTweet != nil && p.NoteTweet.Text != "" {
		text = p.NoteTweet.Text
	}
	return stream.UnescapeText(text)
}

func addXEntities(m *stream.Message, e *xEntities) {
	if e == nil {
		return
	}
	for _, h := range e.Hashtags {
		m.Hashtags = stream.AppendEntity(m.Hashtags, h.Tag)
	}
	for _, u := range e.Mentions {
		m.Mentions = stream.AppendEntity(m.Mentions, u.Username)
	}
	for _, u := range e.URLs {
		m.URLs = stream.AppendEntity(m.URLs, u.ExpandedURL)
		m.URLs = stream.AppendEntity(m.URLs, u.DisplayURL)
	}
}
