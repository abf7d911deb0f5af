package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dghubble/go-twitter/twitter"
)

// TwitterTimeLayout is the layout of created_at in Twitter v1.1 payloads (Ruby's date format).
const TwitterTimeLayout = "Mon Jan 02 15:04:05 -0700 2006"

// maxTweetDepth bounds how far DecodeTweet and DecodeLine follow retweeted_status and
// quoted_status. Twitter nests at most a retweet of a quote (depth 2); the bound keeps a
// hostile, deeply nested line from costing more than a real one.
const maxTweetDepth = 3

// Skip reasons a decoder gives. They are snake_case words, never text taken from the payload,
// so they are safe to count by and to log.
const (
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

// wireTweet is the part of a v1.1 tweet streammatch uses. DecodeLine decodes into it, and
// DecodeTweet converts go-twitter's Tweet into it, so that both paths build a Message with the
// same code and cannot drift apart.
type wireTweet struct {
	IDStr            string        `json:"id_str"`
	CreatedAt        string        `json:"created_at"`
	Text             string        `json:"text"`
	FullText         string        `json:"full_text"`
	Truncated        bool          `json:"truncated"`
	Lang             string        `json:"lang"`
	User             *wireUser     `json:"user"`
	Entities         *wireEntities `json:"entities"`
	ExtendedEntities *wireEntities `json:"extended_entities"`
	ExtendedTweet    *wireExtended `json:"extended_tweet"`
	RetweetedStatus  *wireTweet    `json:"retweeted_status"`
	QuotedStatus     *wireTweet    `json:"quoted_status"`
}

type wireUser struct {
	ScreenName string `json:"screen_name"`
}

type wireExtended struct {
	FullText         string        `json:"full_text"`
	Entities         *wireEntities `json:"entities"`
	ExtendedEntities *wireEntities `json:"extended_entities"`
}

type wireEntities struct {
	Hashtags     []wireHashtag `json:"hashtags"`
	UserMentions []wireMention `json:"user_mentions"`
	URLs         []wireURL     `json:"urls"`
	Media        []wireURL     `json:"media"`
}

type wireHashtag struct {
	Text string `json:"text"`
}

type wireMention struct {
	ScreenName string `json:"screen_name"`
}

type wireURL struct {
	ExpandedURL string `json:"expanded_url"`
	DisplayURL  string `json:"display_url"`
}

// wireLine is one stream line: a tweet's fields plus the keys that name a notice. It is decoded
// in a single pass; the notice keys stay raw because only the limit notice's count is needed.
type wireLine struct {
	wireTweet
	RetweetCount   json.RawMessage `json:"retweet_count"`
	DirectMessage  json.RawMessage `json:"direct_message"`
	Delete         json.RawMessage `json:"delete"`
	ScrubGeo       json.RawMessage `json:"scrub_geo"`
	Limit          json.RawMessage `json:"limit"`
	StatusWithheld json.RawMessage `json:"status_withheld"`
	UserWithheld   json.RawMessage `json:"user_withheld"`
	Disconnect     json.RawMessage `json:"disconnect"`
	Warning        json.RawMessage `json:"warning"`
}

// DecodeLine decodes one raw line of a v1.1 stream (without its "\r\n") into a Record. It is
// what the replay source uses, and what the Twitter source runs on every line before go-twitter
// sees it, so that go-twitter only ever decodes well-typed lines.
//
// A line is classified the way go-twitter classifies it, by the first key present in this
// order: retweet_count (a tweet), direct_message, delete, scrub_geo, limit, status_withheld,
// user_withheld, disconnect, warning, friends, event; anything else is the notice "other".
// Unlike go-twitter, a type error ("id_str": 123) is not ignored: the tweet is skipped as
// invalid_tweet rather than stored half-empty.
//
// The work is done by a selective decoder (fastdecode.go) that gives exactly the Record
// encoding/json would, about ten times faster; the few lines it leaves to encoding/json (keys
// that only match case-insensitively, duplicate fields, very deep nesting) go to decodeLineStd.
func DecodeLine(line []byte, source string) Record {
	if rec, ok := decodeLineFast(line, source); ok {
		return rec
	}
	return decodeLineStd(line, source)
}

// decodeLineStd is DecodeLine by encoding/json: the definition the fast decoder is tested
// against, and its fallback.
func decodeLineStd(line []byte, source string) Record {
	if !utf8.Valid(line) {
		return skipRecord(ReasonInvalidUTF8)
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		// go-twitter decodes into a map, so anything but an object is a decode error there too.
		return skipRecord(ReasonInvalidJSON)
	}
	var w wireLine
	err := json.Unmarshal(trimmed, &w)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return skipRecord(ReasonInvalidJSON)
	}
	switch {
	case w.RetweetCount != nil:
		if err != nil {
			return skipRecord(ReasonInvalidTweet)
		}
		m, reason := buildMessage(&w.wireTweet, source)
		if reason != "" {
			return skipRecord(reason)
		}
		return Record{Kind: KindMessage, Message: m}
	case w.DirectMessage != nil:
		return noticeRecord("other")
	case w.Delete != nil:
		return noticeOf("delete", w.Delete)
	case w.ScrubGeo != nil:
		return noticeOf("scrub_geo", w.ScrubGeo)
	case w.Limit != nil:
		var limit struct {
			Track int64 `json:"track"`
		}
		if json.Unmarshal(w.Limit, &limit) != nil {
			return skipRecord(ReasonInvalidNotice)
		}
		return Record{Kind: KindNotice, Notice: "limit", LimitMissed: max(limit.Track, 0)}
	case w.StatusWithheld != nil:
		return noticeOf("status_withheld", w.StatusWithheld)
	case w.UserWithheld != nil:
		return noticeOf("user_withheld", w.UserWithheld)
	case w.Disconnect != nil:
		return noticeOf("disconnect", w.Disconnect)
	case w.Warning != nil:
		return noticeOf("warning", w.Warning)
	}
	return noticeRecord("other")
}

// noticeOf accepts a notice whose body is an object or null, as go-twitter does (it decodes
// each into a pointer); any other body is not a notice Twitter sends.
func noticeOf(kind string, raw json.RawMessage) Record {
	if raw[0] != '{' && !bytes.Equal(raw, []byte("null")) {
		return skipRecord(ReasonInvalidNotice)
	}
	return noticeRecord(kind)
}

func noticeRecord(kind string) Record { return Record{Kind: KindNotice, Notice: kind} }

func skipRecord(reason string) Record { return Record{Kind: KindSkipped, Reason: reason} }

// DecodeTweet turns a tweet decoded by go-twitter into a Message. reason is non-empty (and the
// Message zero) when the tweet cannot be used: go-twitter ignores type errors, so a tweet can
// arrive without its id, user, text or date, and such a tweet is skipped, not stored.
func DecodeTweet(t *twitter.Tweet, source string) (Message, string) {
	if t == nil {
		return Message{}, ReasonInvalidTweet
	}
	return buildMessage(wireFromTwitter(t, 0), source)
}

// wireFromTwitter copies the fields streammatch uses out of a go-twitter Tweet.
func wireFromTwitter(t *twitter.Tweet, depth int) *wireTweet {
	if t == nil || depth > maxTweetDepth {
		return nil
	}
	w := &wireTweet{
		IDStr:            t.IDStr,
		CreatedAt:        t.CreatedAt,
		Text:             t.Text,
		FullText:         t.FullText,
		Truncated:        t.Truncated,
		Lang:             t.Lang,
		Entities:         wireFromEntities(t.Entities),
		ExtendedEntities: wireFromMedia(t.ExtendedEntities),
		RetweetedStatus:  wireFromTwitter(t.RetweetedStatus, depth+1),
		QuotedStatus:     wireFromTwitter(t.QuotedStatus, depth+1),
	}
	if t.User != nil {
		w.User = &wireUser{ScreenName: t.User.ScreenName}
	}
	if x := t.ExtendedTweet; x != nil {
		w.ExtendedTweet = &wireExtended{
			FullText:         x.FullText,
			Entities:         wireFromEntities(x.Entities),
			ExtendedEntities: wireFromMedia(x.ExtendedEntities),
		}
	}
	return w
}

func wireFromEntities(e *twitter.Entities) *wireEntities {
	if e == nil {
		return nil
	}
	w := &wireEntities{}
	for _, h := range e.Hashtags {
		w.Hashtags = append(w.Hashtags, wireHashtag{Text: h.Text})
	}
	for _, m := range e.UserMentions {
		w.UserMentions = append(w.UserMentions, wireMention{ScreenName: m.ScreenName})
	}
	for _, u := range e.Urls {
		w.URLs = append(w.URLs, wireURL{ExpandedURL: u.ExpandedURL, DisplayURL: u.DisplayURL})
	}
	for _, m := range e.Media {
		w.Media = append(w.Media, wireURL{ExpandedURL: m.ExpandedURL, DisplayURL: m.DisplayURL})
	}
	return w
}

func wireFromMedia(e *twitter.ExtendedEntity) *wireEntities {
	if e == nil {
		return nil
	}
	w := &wireEntities{}
	for _, m := range e.Media {
		w.Media = append(w.Media, wireURL{ExpandedURL: m.ExpandedURL, DisplayURL: m.DisplayURL})
	}
	return w
}

// buildMessage is the one place a Message is made from a tweet.
func buildMessage(t *wireTweet, source string) (Message, string) {
	if t.IDStr == "" {
		return Message{}, ReasonMissingID
	}
	if t.User == nil || t.User.ScreenName == "" {
		return Message{}, ReasonMissingUser
	}
	text := tweetFullText(t)
	if rt := t.RetweetedStatus; rt != nil {
		// A retweet's own text is "RT @user: " plus a truncated copy; the original has it whole.
		if original := tweetFullText(rt); original != "" {
			text = original
		}
	}
	if strings.TrimSpace(text) == "" {
		return Message{}, ReasonMissingText
	}
	if t.CreatedAt == "" {
		return Message{}, ReasonMissingCreatedAt
	}
	created, err := time.Parse(TwitterTimeLayout, t.CreatedAt)
	if err != nil {
		return Message{}, ReasonBadCreatedAt
	}
	m := Message{
		ID:        t.IDStr,
		User:      t.User.ScreenName,
		CreatedAt: created.UTC(),
		Text:      text,
		Lang:      t.Lang,
		Source:    source,
	}
	quoted := t.QuotedStatus
	if quoted == nil && t.RetweetedStatus != nil {
		quoted = t.RetweetedStatus.QuotedStatus
	}
	if quoted != nil {
		m.Quoted = tweetFullText(quoted)
	}
	collectEntities(&m, t, 0)
	return m, ""
}

// tweetFullText returns the untruncated text of a tweet: extended_tweet.full_text (streams in
// compatibility mode), else full_text (extended mode), else text.
func tweetFullText(t *wireTweet) string {
	text := t.Text
	switch {
	case t.ExtendedTweet != nil && t.ExtendedTweet.FullText != "":
		text = t.ExtendedTweet.FullText
	case t.FullText != "":
		text = t.FullText
	}
	return unescapeTweetText(text)
}

// tweetTextUnescaper undoes the HTML escaping v1.1 applies to tweet text. Twitter escapes only
// '&', '<' and '>', so only those three entities are decoded: a literal "&eacute;" a user typed
// arrives as "&amp;eacute;" and must come out as "&eacute;", not "é". A Replacer makes one pass,
// so "&amp;lt;" becomes "&lt;" and not "<". The page escapes the text again when it renders it.
var tweetTextUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

func unescapeTweetText(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return tweetTextUnescaper.Replace(s)
}

// collectEntities adds the hashtags, mentions and URLs of t and of its retweeted and quoted
// originals to m, once each, in the order they appear: Twitter's track matching looks at all
// of them.
func collectEntities(m *Message, t *wireTweet, depth int) {
	if t == nil || depth > maxTweetDepth {
		return
	}
	addEntities(m, t.Entities)
	addEntities(m, t.ExtendedEntities)
	if x := t.ExtendedTweet; x != nil {
		addEntities(m, x.Entities)
		addEntities(m, x.ExtendedEntities)
	}
	collectEntities(m, t.RetweetedStatus, depth+1)
	collectEntities(m, t.QuotedStatus, depth+1)
}

func addEntities(m *Message, e *wireEntities) {
	if e == nil {
		return
	}
	for _, h := range e.Hashtags {
		m.Hashtags = appendNewEntity(m.Hashtags, h.Text)
	}
	for _, u := range e.UserMentions {
		m.Mentions = appendNewEntity(m.Mentions, u.ScreenName)
	}
	for _, list := range [][]wireURL{e.URLs, e.Media} {
		for _, u := range list {
			m.URLs = appendNewEntity(m.URLs, u.ExpandedURL)
			m.URLs = appendNewEntity(m.URLs, u.DisplayURL)
		}
	}
}

// appendNewEntity appends s unless it is empty or already present. The lists are a handful of
// entries, so a linear scan beats a map.
func appendNewEntity(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
