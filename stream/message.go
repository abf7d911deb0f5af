// Package stream is the core of streammatch: the domain types (Message, Match, Record and the
// skip reasons), the Source and Sink interfaces, the Secret type every source holds its
// credentials in, the track Matcher and the Worker that connects them. Each external stream is a
// package of its own (stream/twitter, stream/xv2, stream/mastodon) built on the connection
// plumbing in stream/conn; store/ and web/ import only this package. Every record a source takes
// off a stream is counted here: matched, unmatched or skipped with a reason.
package stream

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Message is one tweet (or post) reduced to what streammatch matches on and stores. The raw
// payload is never kept: a v1.1 tweet is 2-7 KB of JSON, and storing it would cost several
// DynamoDB write units per item.
type Message struct {
	// ID is the tweet's id_str.
	ID string
	// User is the author's screen name.
	User string
	// CreatedAt is the tweet's creation time, in UTC.
	CreatedAt time.Time
	// Text is the full text: extended_tweet.full_text when the tweet is truncated, and the
	// original's full text when the tweet is a retweet.
	Text string
	// Lang is the BCP 47 language Twitter detected, if any.
	Lang string
	// Source names the stream the message came from, e.g. "twitter" or "replay".
	Source string

	// Hashtags (without '#'), Mentions (screen names without '@') and URLs (expanded_url and
	// display_url) are the entities of the tweet and of any retweeted or quoted original:
	// Twitter's track matching looks at all of them, not only at the text.
	Hashtags []string
	Mentions []string
	URLs     []string
	// Quoted is the full text of a quoted original. It is matched, but not stored as Text.
	Quoted string
}

// Match is a message that matched at least one track term.
type Match struct {
	Message Message
	// Terms are the track phrases that matched, as configured (original spelling).
	Terms []string
}

// Sink receives matches. Write may block when the sink's queue is full: that back-pressure is
// what keeps memory bounded when DynamoDB is slow, so the worker stops reading instead of
// buffering without limit. Write returns an error only when ctx ends before the match was queued.
type Sink interface {
	Write(ctx context.Context, m Match) error
}

// State is the condition of a stream connection, as shown on the status page.
type State string

// The states a source moves through.
const (
	StateConnecting State = "connecting"
	StateConnected  State = "connected"
	StateBackoff    State = "backoff"
	StateStalled    State = "stalled"
	StateRejected   State = "rejected"
	StateStopped    State = "stopped"
)

// RecordKind says what a source took off the stream.
type RecordKind int

// The kinds of records a source emits.
const (
	// KindMessage is a tweet, to be matched.
	KindMessage RecordKind = iota + 1
	// KindNotice is a delete, limit, warning, disconnect or withheld notice: counted, never stored.
	KindNotice
	// KindSkipped is a record that could not be used (invalid JSON, a tweet without user or
	// text, invalid UTF-8, an oversized or partial line): counted with Reason.
	KindSkipped
)

// Record is one thing a source took off a stream. Keep-alive newlines are not records.
type Record struct {
	Kind    RecordKind
	Message Message
	// Notice is the notice type for KindNotice: "delete", "limit", "warning", "disconnect",
	// "status_withheld", "user_withheld", "scrub_geo" or "other".
	Notice string
	// LimitMissed is the undelivered count a limit notice reports ({"limit":{"track":N}}).
	LimitMissed int64
	// Reason says why a KindSkipped record was skipped, in snake_case ("invalid_json", ...).
	Reason string
}

// Skip reasons. They are snake_case words, never text taken from the payload, so they are safe
// to count by and to log. Every source gives its skips one of these.
const (
	// Framing: a line (v1.1, X) or a server-sent event (Mastodon) that could not be taken whole.
	ReasonLineTooLong  = "line_too_long"
	ReasonPartialLine  = "partial_line"
	ReasonEventTooLong = "event_too_long"
	ReasonPartialEvent = "partial_event"

	// Decoding: a complete record that is not a usable message or notice.
	ReasonInvalidJSON      = "invalid_json"
	ReasonInvalidUTF8      = "invalid_utf8"
	ReasonInvalidTweet     = "invalid_tweet"
	ReasonInvalidNotice    = "invalid_notice"
	ReasonMissingID        = "missing_id"
	ReasonMissingUser      = "missing_user"
	ReasonMissingText      = "missing_text"
	ReasonMissingCreatedAt = "missing_created_at"
	ReasonBadCreatedAt     = "bad_created_at"
)

// Skip is the record for something taken off a stream that cannot be used, with its reason.
func Skip(reason string) Record { return Record{Kind: KindSkipped, Reason: reason} }

// Notice is the record for a notice of the given kind ("delete", "limit", ...).
func Notice(kind string) Record { return Record{Kind: KindNotice, Notice: kind} }

// textUnescaper undoes the HTML escaping Twitter v1.1 and X v2 apply to post text. They escape only
// '&', '<' and '>', so only those three entities are decoded: a literal "&eacute;" a user typed
// arrives as "&amp;eacute;" and must come out as "&eacute;", not "é". A Replacer makes one pass,
// so "&amp;lt;" becomes "&lt;" and not "<". The page escapes the text again when it renders it.
var textUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// UnescapeText undoes Twitter's and X's escaping of "&", "<" and ">" in a post's text.
func UnescapeText(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return textUnescaper.Replace(s)
}

// AppendEntity appends s unless it is empty or already present. The lists are a handful of
// entries, so a linear scan beats a map.
func AppendEntity(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
