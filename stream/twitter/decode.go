package twitter

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/streammatch/streammatch/stream"
)

// TimeLayout is the layout of created_at in Twitter v1.1 payloads (Ruby's date format).
const TimeLayout = "Mon Jan 02 15:04:05 -0700 2006"

// maxTweetDepth bounds how far DecodeTweet and DecodeLine follow retweeted_status and
// quoted_status. Twitter nests at most a retweet of a quote (depth 2); the bound keeps a
// hostile, deeply nested line from costing more than a real one.
const maxTweetDepth = 3

// wireTweet is the part of a v1.1 tweet streammatch uses. DecodeLine decodes into it (by the
// selective decoder, or encoding/json for the rare lines that one leaves), and buildMessage makes
// the Message from it, so both decoders build a Message with the same code.
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

// DecodeLine decodes one raw line of a v1.1 stream (without its "\r\n") into a stream.Record: the
// one parse the Twitter source makes of every line, giving both the skip reason and the Message.
//
// A line is classified the way go-twitter classifies it, by the first key present in this
// order: retweet_count (a tweet), direct_message, delete, scrub_geo, limit, status_withheld,
// user_withheld, disconnect, warning, friends, event; anything else is the notice "other".
// Unlike go-twitter, a type error ("id_str": 123) is not ignored: the tweet is skipped as
// invalid_tweet rather than stored half-empty.
//
// The work is done by a selective decoder (fastdecode.go) that gives exactly the stream.Record
// encoding/json would, about ten times faster; the few lines it leaves to encoding/json (keys
// that only match case-insensitively, duplicate fields, very deep nesting) go to decodeLineStd.
func DecodeLine(line []byte, source string) stream.Record {
	if rec, ok := decodeLineFast(line, source); ok {
		return rec
	}
	return decodeLineStd(line, source)
}

// decodeLineStd is DecodeLine by encoding/json: the definition the fast decoder is tested
// against, and its fallback.
func decodeLineStd(line []byte, source string) stream.Record {
	if !utf8.Valid(line) {
		return stream.Skip(stream.ReasonInvalidUTF8)
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		// go-twitter decodes into a map, so anything but an object is a decode error there too.
		return stream.Skip(stream.ReasonInvalidJSON)
	}
	var w wireLine
	err := json.Unmarshal(trimmed, &w)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return stream.Skip(stream.ReasonInvalidJSON)
	}
	switch {
	case w.RetweetCount != nil:
		if err != nil {
			return stream.Skip(stream.ReasonInvalidTweet)
		}
		m, reason := buildMessage(&w.wireTweet, source)
		if reason != "" {
			return stream.Skip(reason)
		}
		return stream.Record{Kind: stream.KindMessage, Message: m}
	case w.DirectMessage != nil:
		return stream.Notice("other")
	case w.Delete != nil:
		return noticeOf("delete", w.Delete)
	case w.ScrubGeo != nil:
		return noticeOf("scrub_geo", w.ScrubGeo)
	case w.Limit != nil:
		var limit struct {
			Track int64 `json:"track"`
		}
		if json.Unmarshal(w.Limit, &limit) != nil {
			return stream.Skip(stream.ReasonInvalidNotice)
		}
		return stream.Record{Kind: stream.KindNotice, Notice: "limit", LimitMissed: max(limit.Track, 0)}
	case w.StatusWithheld != nil:
		return noticeOf("status_withheld", w.StatusWithheld)
	case w.UserWithheld != nil:
		return noticeOf("user_withheld", w.UserWithheld)
	case w.Disconnect != nil:
		return noticeOf("disconnect", w.Disconnect)
	case w.Warning != nil:
		return noticeOf("warning", w.Warning)
	}
	return stream.Notice("other")
}

// noticeOf accepts a notice whose body is an object or null, as go-twitter does (it decodes
// each into a pointer); any other body is not a notice Twitter sends.
func noticeOf(kind string, raw json.RawMessage) stream.Record {
	if raw[0] != '{' && !bytes.Equal(raw, []byte("null")) {
		return stream.Skip(stream.ReasonInvalidNotice)
	}
	return stream.Notice(kind)
}

// buildMessage is the one place a stream.Message is made from a tweet.
func buildMessage(t *wireTweet, source string) (stream.Message, string) {
	if t.IDStr == "" {
		return stream.Message{}, stream.ReasonMissingID
	}
	if t.User == nil || t.User.ScreenName == "" {
		return stream.Message{}, stream.ReasonMissingUser
	}
	text := tweetFullText(t)
	if rt := t.RetweetedStatus; rt != nil {
		// A retweet's own text is "RT @user: " plus a truncated copy; the original has it whole.
		if original := tweetFullText(rt); original != "" {
			text = original
		}
	}
	if strings.TrimSpace(text) == "" {
		return stream.Message{}, stream.ReasonMissingText
	}
	if t.CreatedAt == "" {
		return stream.Message{}, stream.ReasonMissingCreatedAt
	}
	created, err := time.Parse(TimeLayout, t.CreatedAt)
	if err != nil {
		return stream.Message{}, stream.ReasonBadCreatedAt
	}
	m := stream.Message{
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
	return stream.UnescapeText(text)
}

// collectEntities adds the hashtags, mentions and URLs of t and of its retweeted and quoted
// originals to m, once each, in the order they appear: Twitter's track matching looks at all
// of them.
func collectEntities(m *stream.Message, t *wireTweet, depth int) {
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

func addEntities(m *stream.Message, e *wireEntities) {
	if e == nil {
		return
	}
	for _, h := range e.Hashtags {
		m.Hashtags = stream.AppendEntity(m.Hashtags, h.Text)
	}
	for _, u := range e.UserMentions {
		m.Mentions = stream.AppendEntity(m.Mentions, u.ScreenName)
	}
	for _, list := range [][]wireURL{e.URLs, e.Media} {
		for _, u := range list {
			m.URLs = stream.AppendEntity(m.URLs, u.ExpandedURL)
			m.URLs = stream.AppendEntity(m.URLs, u.DisplayURL)
		}
	}
}
