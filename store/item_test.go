package store

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/stream"
)

func TestItemKey(t *testing.T) {
	tests := []struct {
		name     string
		msg      stream.Message
		wantUser string
		wantDate string
	}{
		{
			name:     "UTC, second precision, then the id",
			msg:      stream.Message{ID: "363700000000000001", User: "jack", CreatedAt: time.Date(2013, 8, 3, 12, 0, 5, 999_999_999, time.UTC)},
			wantUser: "jack",
			wantDate: "2013-08-03T12:00:05Z#363700000000000001",
		},
		{
			name:     "other zones are converted to UTC",
			msg:      stream.Message{ID: "7", User: "tokyo", CreatedAt: time.Date(2013, 8, 4, 1, 0, 0, 0, time.FixedZone("JST", 9*3600))},
			wantUser: "tokyo",
			wantDate: "2013-08-03T16:00:00Z#7",
		},
		{
			name:     "the screen name is kept as is",
			msg:      stream.Message{ID: "8", User: "Ünïcode_Name", CreatedAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
			wantUser: "Ünïcode_Name",
			wantDate: "2020-01-01T00:00:00Z#8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, date := ItemKey(tt.msg)
			if user != tt.wantUser || date != tt.wantDate {
				t.Errorf("ItemKey: got (%q, %q), want (%q, %q)", user, date, tt.wantUser, tt.wantDate)
			}
		})
	}
}

func TestItemKey_SortsChronologically(t *testing.T) {
	base := time.Date(2013, 8, 3, 23, 59, 58, 0, time.UTC)
	var prev string
	for i := range 5 {
		_, date := ItemKey(stream.Message{ID: "36370000000000000" + string(rune('0'+i)), User: "u", CreatedAt: base.Add(time.Duration(i) * 700 * time.Millisecond)})
		if date <= prev {
			t.Errorf("key %d: got %q, not after %q", i, date, prev)
		}
		prev = date
	}
}

func TestNewItem_IsAProjectionOfAboutOneKB(t *testing.T) {
	// The longest tweet text: 280 characters. Twitter counts CJK characters and emoji twice,
	// so 140 of them is the longest in bytes (4 bytes each for emoji).
	tests := []struct {
		name string
		text string
	}{
		{"280 ascii characters", strings.Repeat("a", 280)},
		{"140 emoji", strings.Repeat("🚀", 140)},
		{"140 kanji", strings.Repeat("花", 140)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := match("a_fifteen_chars", "1234567890123456789", time.Now(), tt.text, "first term", "second term", "third")
			item := newItem(m, time.Now()).attributes()
			if size := itemSize(item); size > 1024 {
				t.Errorf("item size: got %d bytes, want at most 1024 (one write unit)", size)
			}
		})
	}
}

func TestNewItem_OmitsEmptyOptionalAttributes(t *testing.T) {
	m := stream.Match{Message: stream.Message{ID: "1", User: "u", Text: "t"}, Terms: []string{"", ""}}
	item := newItem(m, time.Now()).attributes()
	for _, name := range []string{"matched", "lang", "source"} {
		if _, ok := item[name]; ok {
			t.Errorf("attribute %s: present, want it omitted (DynamoDB rejects an empty string set)", name)
		}
	}
}

// itemSize follows DynamoDB's item size rule: attribute name lengths plus value lengths.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberSS:
			for _, s := range v.Value {
				n += len(s)
			}
		}
	}
	return n
}
