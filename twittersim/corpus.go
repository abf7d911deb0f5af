package twittersim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/streammatch/streammatch/stream"
)

// maxCorpusLine bounds one NDJSON line. Twitter's own limit for a message was far lower; 16 MB
// only protects against a file that is not NDJSON at all.
const maxCorpusLine = 16 << 20

// corpusItem is one stream message of a corpus, ready to write.
type corpusItem struct {
	line []byte
	// msg is what the matcher sees; nil for a line that is not a tweet (a notice), which is
	// replayed whatever the track.
	msg *stream.Message
	// id and userID name the tweet in delete notices.
	id, userID int64
}

// loadCorpus reads a corpus file: a v1.1 search result ({"statuses":[...]}), a JSON array of
// tweets, or NDJSON with one message per line. Every message is re-encoded on one line, because
// a pretty-printed tweet would not survive the stream's line framing. Errors name the file and
// the place that is wrong.
func loadCorpus(path string) ([]corpusItem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("twittersim: read corpus: %w", err)
	}
	raws, err := splitCorpus(data)
	if err != nil {
		return nil, fmt.Errorf("twittersim: corpus %s: %w", path, err)
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("twittersim: corpus %s: no messages", path)
	}
	items := make([]corpusItem, 0, len(raws))
	for _, raw := range raws {
		item, err := parseCorpusItem(raw.data)
		if err != nil {
			return nil, fmt.Errorf("twittersim: corpus %s: %s: %w", path, raw.where, err)
		}
		items = append(items, item)
	}
	return items, nil
}

type rawMessage struct {
	where string
	data  []byte
}

func splitCorpus(data []byte) ([]rawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	// A whole-file JSON value is a search result or an array; anything else is NDJSON.
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var whole json.RawMessage
	if err := dec.Decode(&whole); err == nil && !dec.More() {
		if _, err := dec.Token(); errors.Is(err, io.EOF) {
			switch trimmed[0] {
			case '[':
				return splitArray(whole, "message")
			case '{':
				var search struct {
					Statuses json.RawMessage `json:"statuses"`
				}
				if err := json.Unmarshal(whole, &search); err == nil && search.Statuses != nil {
					if bytes.Equal(bytes.TrimSpace(search.Statuses), []byte("null")) {
						return nil, errors.New(`"statuses" is null`)
					}
					return splitArray(search.Statuses, "statuses")
				}
			}
		}
	}
	var out []rawMessage
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxCorpusLine)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		out = append(out, rawMessage{where: fmt.Sprintf("line %d", n), data: bytes.Clone(line)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("not NDJSON: %w", err)
	}
	return out, nil
}

func splitArray(data json.RawMessage, what string) ([]rawMessage, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s is not a JSON array: %w", what, err)
	}
	out := make([]rawMessage, len(list))
	for i, m := range list {
		out[i] = rawMessage{where: fmt.Sprintf("%s[%d]", what, i), data: m}
	}
	return out, nil
}

// parseCorpusItem classifies one message the way go-twitter does: an object with retweet_count
// is a tweet, anything else is a notice.
func parseCorpusItem(data []byte) (corpusItem, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return corpusItem{}, fmt.Errorf("not a JSON object: %w", err)
	}
	var line bytes.Buffer
	if err := json.Compact(&line, data); err != nil {
		return corpusItem{}, fmt.Errorf("not JSON: %w", err)
	}
	item := corpusItem{line: line.Bytes()}
	if _, ok := probe["retweet_count"]; !ok {
		return item, nil
	}
	var t tweetJSON
	if err := json.Unmarshal(data, &t); err != nil {
		return corpusItem{}, fmt.Errorf("not a v1.1 tweet: %w", err)
	}
	item.msg, item.id = t.toMessage(), t.ID
	if t.User != nil {
		item.userID = t.User.ID
	}
	return item, nil
}
