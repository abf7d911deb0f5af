package twittersim

import (
	"time"

	"github.com/streammatch/streammatch/stream"
)

// createdAtLayout is Twitter's created_at format (time.RubyDate).
const createdAtLayout = "Mon Jan 02 15:04:05 -0700 2006"

// tweetJSON is the part of a v1.1 tweet the simulator writes and reads. It is the simulator's
// own small decoder on purpose: the matcher must be fed from an independent reading of the
// tweet, not from the decoder under test in package stream.
type tweetJSON struct {
	CreatedAt         string        `json:"created_at"`
	ID                int64         `json:"id"`
	IDStr             string        `json:"id_str"`
	Text              string        `json:"text"`
	FullText          string        `json:"full_text,omitempty"`
	Source            string        `json:"source,omitempty"`
	Truncated         bool          `json:"truncated"`
	User              *userJSON     `json:"user"`
	Entities          *entitiesJSON `json:"entities"`
	ExtendedTweet     *extendedJSON `json:"extended_tweet,omitempty"`
	QuotedStatusID    int64         `json:"quoted_status_id,omitempty"`
	QuotedStatusIDStr string        `json:"quoted_status_id_str,omitempty"`
	IsQuoteStatus     bool          `json:"is_quote_status"`
	QuotedStatus      *tweetJSON    `json:"quoted_status,omitempty"`
	RetweetedStatus   *tweetJSON    `json:"retweeted_status,omitempty"`
	QuoteCount        int           `json:"quote_count"`
	ReplyCount        int           `json:"reply_count"`
	RetweetCount      int           `json:"retweet_count"`
	FavoriteCount     int           `json:"favorite_count"`
	Favorited         bool          `json:"favorited"`
	Retweeted         bool          `json:"retweeted"`
	FilterLevel       string        `json:"filter_level,omitempty"`
	Lang              string        `json:"lang"`
	TimestampMs       string        `json:"timestamp_ms,omitempty"`
	DisplayTextRange  *[2]int       `json:"display_text_range,omitempty"`
}

type userJSON struct {
	ID         int64  `json:"id"`
	IDStr      string `json:"id_str"`
	Name       string `json:"name"`
	ScreenName string `json:"screen_name"`
	Lang       string `json:"lang,omitempty"`
}

type extendedJSON struct {
	FullText         string        `json:"full_text"`
	DisplayTextRange [2]int        `json:"display_text_range"`
	Entities         *entitiesJSON `json:"entities"`
}

type entitiesJSON struct {
	Hashtags     []hashtagJSON `json:"hashtags"`
	URLs         []urlJSON     `json:"urls"`
	UserMentions []mentionJSON `json:"user_mentions"`
	Symbols      []hashtagJSON `json:"symbols"`
	Media        []urlJSON     `json:"media,omitempty"`
}

type hashtagJSON struct {
	Text    string `json:"text"`
	Indices [2]int `json:"indices"`
}

type mentionJSON struct {
	ScreenName string `json:"screen_name"`
	Name       string `json:"name"`
	ID         int64  `json:"id"`
	IDStr      string `json:"id_str"`
	Indices    [2]int `json:"indices"`
}

type urlJSON struct {
	URL         string `json:"url"`
	ExpandedURL string `json:"expanded_url"`
	DisplayURL  string `json:"display_url"`
	Indices     [2]int `json:"indices"`
}

// fullText is the complete text of one tweet: extended_tweet.full_text for a truncated tweet,
// full_text for an extended-mode REST tweet, text otherwise.
func (t *tweetJSON) fullText() string {
	switch {
	case t.ExtendedTweet != nil && t.ExtendedTweet.FullText != "":
		return t.ExtendedTweet.FullText
	case t.FullText != "":
		return t.FullText
	default:
		return t.Text
	}
}

// toMessage reduces a tweet to what the track matcher looks at. It follows the rules of
// stream.Message: a retweet's Text is the original's full text, and entities of the tweet, the
// retweeted original and the quoted original all count.
func (t *tweetJSON) toMessage() *stream.Message {
	m := &stream.Message{ID: t.IDStr, Lang: t.Lang, Source: "twittersim", Text: t.fullText()}
	if t.User != nil {
		m.User = t.User.ScreenName
	}
	if at, err := time.Parse(createdAtLayout, t.CreatedAt); err == nil {
		m.CreatedAt = at.UTC()
	}
	seen := make(map[*tweetJSON]bool)
	var add func(x *tweetJSON)
	add = func(x *tweetJSON) {
		if x == nil || seen[x] {
			return
		}
		seen[x] = true
		for _, e := range []*entitiesJSON{x.Entities, extendedEntities(x)} {
			if e == nil {
				continue
			}
			for _, h := range e.Hashtags {
				m.Hashtags = appendNew(m.Hashtags, h.Text)
			}
			for _, u := range e.UserMentions {
				m.Mentions = appendNew(m.Mentions, u.ScreenName)
			}
			for _, u := range append(append([]urlJSON(nil), e.URLs...), e.Media...) {
				if u.ExpandedURL != "" {
					m.URLs = appendNew(m.URLs, u.ExpandedURL)
				}
				if u.DisplayURL != "" {
					m.URLs = appendNew(m.URLs, u.DisplayURL)
				}
			}
		}
		add(x.RetweetedStatus)
		add(x.QuotedStatus)
	}
	add(t)
	if t.RetweetedStatus != nil {
		m.Text = t.RetweetedStatus.fullText()
	}
	switch {
	case t.QuotedStatus != nil:
		m.Quoted = t.QuotedStatus.fullText()
	case t.RetweetedStatus != nil && t.RetweetedStatus.QuotedStatus != nil:
		m.Quoted = t.RetweetedStatus.QuotedStatus.fullText()
	}
	return m
}

func extendedEntities(t *tweetJSON) *entitiesJSON {
	if t.ExtendedTweet == nil {
		return nil
	}
	return t.ExtendedTweet.Entities
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
