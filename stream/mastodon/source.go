// Package mastodon is the Mastodon streaming source: server-sent events from an instance's
// federated timeline, with a user access token, each status decoded once.
package mastodon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/streammatch/streammatch/stream"
	"github.com/streammatch/streammatch/stream/conn"
)

// SourceName is the Mastodon source's Name, and the Source of its messages.
const SourceName = "mastodon"

// DefaultStallTimeout is how long the Mastodon stream may be silent before it is
// replaced. Mastodon's streaming server writes a ":thump" comment every 15 s; three intervals
// is the ratio Twitter used for v1.1 (30 s keep-alives, 90 s stall).
const DefaultStallTimeout = 45 * time.Second

// mastodonStreamPath is the federated timeline: every public post the instance knows of, local
// and remote. The hashtag stream would take one connection per tag and sees hashtags only,
// while track also matches words, mentions and links in the text; public:local and
// public:remote would each miss half of what the instance sees. So the source reads the whole
// federated timeline on one connection and the Matcher keeps what FILTER selects.
const mastodonStreamPath = "api/v1/streaming/public"

// maxMastodonDepth bounds how far a status's reblog and quote are followed.
const maxMastodonDepth = 3

// Config configures a Source.
type Config struct {
	// BaseURL is the instance, e.g. https://mastodon.social; the stream is read from
	// BaseURL + /api/v1/streaming/public.
	BaseURL string
	// Token is a user access token with the read:statuses scope. Since Mastodon 4.2 the public
	// streams require one; it travels in the Authorization header, never in the URL.
	Token stream.Secret
	// StallTimeout is how long a read may wait for a byte; zero means
	// DefaultStallTimeout.
	StallTimeout time.Duration
	// MaxEvent is the largest event accepted, in bytes of data; zero means conn.DefaultMaxLine.
	MaxEvent int
	// Logger receives one line per state change. Nil discards.
	Logger *slog.Logger
	// After is the clock for reconnect waits; nil means time.After.
	After func(time.Duration) <-chan time.Time
	// Transport carries the requests; nil means a default without keep-alives.
	Transport http.RoundTripper
}

// Source reads a Mastodon instance's federated timeline as server-sent events. Statuses
// (update and status.update events) become messages, their HTML content turned into plain
// text; delete events are notices. It reconnects with the same schedules as the other sources.
type Source struct {
	conn     *conn.Stream
	token    stream.Secret
	base     *url.URL
	maxEvent int
}

var _ stream.Source = (*Source)(nil)

// NewSource checks cfg; every problem is reported at once, naming its field and never
// the token. Nothing connects until Run.
func NewSource(cfg Config) (*Source, error) {
	var problems []error
	base, err := conn.ParseBaseURL("Config.BaseURL", "https://mastodon.social", cfg.BaseURL)
	if err != nil {
		problems = append(problems, err)
	}
	if cfg.Token.Empty() {
		problems = append(problems, errors.New("Config.Token is empty"))
	}
	if cfg.StallTimeout < 0 {
		problems = append(problems, errors.New("Config.StallTimeout is negative; want a duration like 45s, or 0 for the default"))
	}
	if cfg.MaxEvent < 0 {
		problems = append(problems, errors.New("Config.MaxEvent is negative; want a size in bytes, or 0 for the default"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("mastodon source: %w", errors.Join(problems...))
	}
	stall := conn.OrDefault(cfg.StallTimeout, DefaultStallTimeout)
	return &Source{
		conn:     conn.New(conn.Config{Name: SourceName, StallTimeout: stall, Transport: cfg.Transport, Logger: cfg.Logger, After: cfg.After}),
		token:    cfg.Token,
		base:     base,
		maxEvent: conn.OrDefault(cfg.MaxEvent, conn.DefaultMaxLine),
	}, nil
}

// Name returns "mastodon".
func (s *Source) Name() string { return SourceName }

// Status returns a snapshot of the connection state.
func (s *Source) Status() stream.SourceStatus { return s.conn.Status() }

// Run connects, emits every record and reconnects until ctx ends. Every byte, the ":thump"
// heartbeat comments included, restarts the stall timer.
func (s *Source) Run(ctx context.Context, emit func(context.Context, stream.Record)) error {
	return s.conn.Run(ctx, func(ctx context.Context) conn.End {
		req, err := http.NewRequest(http.MethodGet, s.base.JoinPath(mastodonStreamPath).String(), nil)
		if err != nil {
			return conn.End{Kind: conn.EndNetwork, Err: err, Phase: "stream"}
		}
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+string(s.token))
		end := s.conn.Do(ctx, req, func(body io.Reader) (int64, error) {
			events := newSSEReader(body, s.maxEvent)
			var n int64
			for {
				ev, reason, err := events.next()
				switch {
				case reason != "":
					emit(ctx, stream.Skip(reason))
				case err == nil:
					n++
					emit(ctx, decodeMastodonEvent(ev.name, ev.data))
				}
				if err != nil {
					return n, err
				}
			}
		})
		end.Phase = "stream"
		return end
	}, func(end conn.End, wait time.Duration, reason string) (time.Duration, string) {
		if end.Kind == conn.EndHTTP && end.Status == http.StatusTooManyRequests {
			wait = max(wait, conn.RateLimitWait(end.Header, s.conn.Now()))
		}
		return wait, reason
	})
}

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// sseReader parses a text/event-stream body as the HTML standard defines it: lines end with
// CRLF, LF or CR; a line starting with ':' is a comment (Mastodon's heartbeat); "field: value"
// with one optional space after the colon; data lines are joined with "\n"; a blank line
// dispatches the event, unless it has no data. id and retry are read and ignored: Mastodon does
// not replay missed events, so there is nothing to resume from. An event over max bytes is
// dropped as it streams past, never held whole.
type sseReader struct {
	br  *bufio.Reader
	max int

	line     []byte
	lineOver bool
	afterCR  bool

	name    string
	data    []byte
	started bool // a field of the current event has been seen
	over    bool // the current event passed max and is being discarded
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(r, conn.ReadBufferSize), max: max}
}

// next returns the next event with data. reason is non-empty (and ev empty) for an event that
// was dropped; err is the body's error (io.EOF at a clean end), after which next must not be
// called again.
func (r *sseReader) next() (ev sseEvent, reason string, err error) {
	for {
		line, err := r.readLine()
		if err != nil {
			if r.started || len(line) > 0 || r.lineOver {
				// The standard discards an event the stream ends inside of.
				r.reset()
				return sseEvent{}, stream.ReasonPartialEvent, err
			}
			return sseEvent{}, "", err
		}
		if r.lineOver {
			r.over, r.started = true, true
			r.lineOver = false
			continue
		}
		if len(line) == 0 {
			ev, over, started := sseEvent{name: r.name, data: r.data}, r.over, r.started
			r.reset()
			switch {
			case over:
				return sseEvent{}, stream.ReasonEventTooLong, nil
			case !started || ev.data == nil:
				continue
			}
			ev.data = ev.data[:len(ev.data)-1] // the last data line's "\n"
			if ev.name == "" {
				ev.name = "message"
			}
			return ev, "", nil
		}
		if line[0] == ':' {
			continue // comment: a heartbeat
		}
		r.started = true
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			r.name = string(value)
		case "data":
			if r.over || len(r.data)+len(value)+1 > r.max {
				r.over, r.data = true, nil
				continue
			}
			if r.data == nil {
				r.data = make([]byte, 0, len(value)+1)
			}
			r.data = append(append(r.data, value...), '\n')
		}
	}
}

func (r *sseReader) reset() {
	r.name, r.data, r.started, r.over = "", nil, false, false
}

// readLine returns the next line without its terminator. A line longer than max is consumed
// but not kept: lineOver is set and the returned line is empty.
func (r *sseReader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			return r.line, err
		}
		if r.afterCR {
			r.afterCR = false
			if b == '\n' {
				continue // the LF of a CRLF
			}
		}
		switch b {
		case '\r':
			r.afterCR = true
			return r.line, nil
		case '\n':
			return r.line, nil
		}
		if r.lineOver {
			continue
		}
		if len(r.line) >= r.max+len("data: ") {
			r.lineOver, r.line = true, r.line[:0]
			continue
		}
		r.line = append(r.line, b)
	}
}

// decodeMastodonEvent turns one event into a stream.Record: update and status.update (an edit, whose
// new text may match) carry a Status; delete is a notice; every other event is the notice
// "other".
func decodeMastodonEvent(name string, data []byte) stream.Record {
	switch name {
	case "update", "status.update":
		return decodeMastodonStatus(data)
	case "delete":
		return stream.Notice("delete")
	}
	return stream.Notice("other")
}

// mastodonStatus is the part of a Mastodon Status entity streammatch uses.
type mastodonStatus struct {
	ID          string `json:"id"`
	CreatedAt   string `json:"created_at"`
	Content     string `json:"content"`
	SpoilerText string `json:"spoiler_text"`
	Language    string `json:"language"`
	Account     *struct {
		Acct string `json:"acct"`
	} `json:"account"`
	Tags []struct {
		Name string `json:"name"`
	} `json:"tags"`
	Mentions []struct {
		Acct string `json:"acct"`
	} `json:"mentions"`
	Card *struct {
		URL string `json:"url"`
	} `json:"card"`
	Reblog *mastodonStatus `json:"reblog"`
	// Quote is Mastodon 4.4's quote post; quoted_status is absent unless the quote was accepted.
	Quote *struct {
		QuotedStatus *mastodonStatus `json:"quoted_status"`
	} `json:"quote"`
}

// decodeMastodonStatus decodes an update event's Status into a stream.Record. A reblog is stored like
// a v1.1 retweet: the reblogger as User, the original's text as Text.
func decodeMastodonStatus(data []byte) stream.Record {
	if !utf8.Valid(data) {
		return stream.Skip(stream.ReasonInvalidUTF8)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return stream.Skip(stream.ReasonInvalidJSON)
	}
	var st mastodonStatus
	err := json.Unmarshal(trimmed, &st)
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		return stream.Skip(stream.ReasonInvalidTweet)
	case err != nil:
		return stream.Skip(stream.ReasonInvalidJSON)
	case st.ID == "":
		return stream.Skip(stream.ReasonMissingID)
	case st.Account == nil || st.Account.Acct == "":
		return stream.Skip(stream.ReasonMissingUser)
	}
	shown := &st
	if st.Reblog != nil {
		shown = st.Reblog
	}
	text, links := mastodonText(shown)
	if strings.TrimSpace(text) == "" {
		return stream.Skip(stream.ReasonMissingText)
	}
	if st.CreatedAt == "" {
		return stream.Skip(stream.ReasonMissingCreatedAt)
	}
	created, err := time.Parse(time.RFC3339, st.CreatedAt)
	if err != nil {
		return stream.Skip(stream.ReasonBadCreatedAt)
	}
	m := stream.Message{
		ID:        st.ID,
		User:      st.Account.Acct,
		CreatedAt: created.UTC(),
		Text:      text,
		Lang:      shown.Language,
		Source:    SourceName,
	}
	for _, u := range links {
		m.URLs = stream.AppendEntity(m.URLs, u)
	}
	if q := shown.Quote; q != nil && q.QuotedStatus != nil {
		m.Quoted, _ = mastodonText(q.QuotedStatus)
	}
	addMastodonEntities(&m, &st, 0)
	return stream.Record{Kind: stream.KindMessage, Message: m}
}

// mastodonText is a status's plain text: the content warning, if any, then the content.
func mastodonText(st *mastodonStatus) (text string, links []string) {
	text, links = HTMLToText(st.Content)
	if cw := strings.TrimSpace(st.SpoilerText); cw != "" {
		text = strings.TrimSpace(cw + "\n\n" + text)
	}
	return text, links
}

func addMastodonEntities(m *stream.Message, st *mastodonStatus, depth int) {
	if st == nil || depth > maxMastodonDepth {
		return
	}
	for _, t := range st.Tags {
		m.Hashtags = stream.AppendEntity(m.Hashtags, t.Name)
	}
	for _, u := range st.Mentions {
		m.Mentions = stream.AppendEntity(m.Mentions, u.Acct)
	}
	if st.Card != nil {
		m.URLs = stream.AppendEntity(m.URLs, st.Card.URL)
	}
	if depth > 0 {
		// A quoted or reblogged original's links count too, as its entities do on Twitter.
		_, links := HTMLToText(st.Content)
		for _, u := range links {
			m.URLs = stream.AppendEntity(m.URLs, u)
		}
	}
	addMastodonEntities(m, st.Reblog, depth+1)
	if st.Quote != nil {
		addMastodonEntities(m, st.Quote.QuotedStatus, depth+1)
	}
}

// maxLinks bounds the links taken from one status: a real post has a handful, and the list
// is deduplicated by a linear scan.
const maxLinks = 100

// htmlSkipped are elements whose content is never text: a status never legitimately holds
// them (Mastodon sanitises content), so one that does is hostile and its content is dropped.
var htmlSkipped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Template: true, atom.Noscript: true,
	atom.Iframe: true, atom.Object: true, atom.Svg: true, atom.Math: true, atom.Title: true,
	atom.Textarea: true, atom.Noembed: true, atom.Noframes: true, atom.Head: true,
}

// HTMLToText turns a status's HTML content into plain text, the way a reader sees it: tags
// are dropped, entities decoded (so "&lt;b&gt;" becomes the text "<b>"), <br> becomes a line
// break and paragraphs are separated by a blank line; runs of other whitespace become one
// space, as HTML renders them (except inside <pre>). Script, style and similar elements lose
// their content. links are the href of every http(s) link that is not a mention or hashtag
// link (Mastodon marks those with the classes "mention" and "hashtag"). The text is plain:
// whoever shows it as HTML must escape it again, as html/template does.
func HTMLToText(content string) (text string, links []string) {
	var buf []byte
	z := html.NewTokenizer(strings.NewReader(content))
	var skip atom.Atom
	skipDepth, pre := 0, 0
	// breakLine ends the text with n line breaks (at most two: a run of <br> makes one blank
	// line, which also keeps every step here constant-time on hostile input).
	breakLine := func(n int) {
		buf = bytes.TrimRight(buf, " ")
		if len(buf) == 0 {
			return
		}
		have := 0
		for have < 2 && have < len(buf) && buf[len(buf)-1-have] == '\n' {
			have++
		}
		for ; have < min(n, 2); have++ {
			buf = append(buf, '\n')
		}
	}
	trailingBreaks := func() int {
		n := 0
		for n < 2 && n < len(buf) && buf[len(buf)-1-n] == '\n' {
			n++
		}
		return n
	}
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		if skipDepth > 0 {
			switch {
			case tt == html.StartTagToken && tok.DataAtom == skip:
				skipDepth++
			case tt == html.EndTagToken && tok.DataAtom == skip:
				skipDepth--
			}
			continue
		}
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			if htmlSkipped[tok.DataAtom] {
				if tt == html.StartTagToken {
					skip, skipDepth = tok.DataAtom, 1
				}
				continue
			}
			switch tok.DataAtom {
			case atom.Br:
				breakLine(trailingBreaks() + 1)
			case atom.P, atom.Blockquote, atom.Ul, atom.Ol, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
				breakLine(2)
			case atom.Pre:
				breakLine(2)
				pre++
			case atom.Li, atom.Div:
				breakLine(1)
			case atom.A:
				if href := linkOf(tok); href != "" && len(links) < maxLinks {
					links = stream.AppendEntity(links, href)
				}
			}
		case html.EndTagToken:
			switch tok.DataAtom {
			case atom.P, atom.Blockquote, atom.Ul, atom.Ol, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
				breakLine(2)
			case atom.Pre:
				pre = max(pre-1, 0)
				breakLine(2)
			}
		case html.TextToken:
			t := tok.Data // the tokenizer has decoded the entities
			if pre == 0 {
				t = collapseSpace(t)
				if len(buf) == 0 || buf[len(buf)-1] == '\n' || buf[len(buf)-1] == ' ' {
					t = strings.TrimLeft(t, " ")
				}
			}
			buf = append(buf, t...)
		}
	}
	return strings.TrimSpace(string(buf)), links
}

// collapseSpace replaces each run of HTML whitespace with one space, keeping a leading or
// trailing one, so that "a <b>b</b>" stays two words.
func collapseSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// linkOf returns an <a>'s href when it is an http(s) link other than a mention or hashtag.
func linkOf(tok html.Token) string {
	var href, class string
	for _, a := range tok.Attr {
		switch a.Key {
		case "href":
			href = a.Val
		case "class":
			class = a.Val
		}
	}
	for _, c := range strings.Fields(class) {
		if c == "mention" || c == "hashtag" {
			return ""
		}
	}
	u, err := url.Parse(href)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return href
}
