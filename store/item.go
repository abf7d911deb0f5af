package store

import (
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/stream"
)

// The attribute names of an item. user and date are the blog's table key (HASH user, RANGE
// date, both strings), so the table is used unchanged.
const (
	attrUser       = "user"
	attrDate       = "date"
	attrText       = "text"
	attrID         = "id"
	attrMatched    = "matched"
	attrSource     = "source"
	attrIngestedAt = "ingested_at"
	attrLang       = "lang"
)

// dateLayout is RFC 3339 in UTC at second precision, the precision Twitter's created_at has.
const dateLayout = "2006-01-02T15:04:05Z"

// ItemKey returns the table key of the item a message is stored as. user is the screen name;
// date is the message time ("2006-01-02T15:04:05Z", UTC) followed by "#" and the message ID.
//
// The sort key carries the ID for two reasons. Twitter's times have one-second precision, so a
// key of user and time alone would let a second message of one user in the same second
// overwrite the first (the seed did exactly that). And because the key depends only on the
// message, a restarted task that writes the same message again overwrites the same item
// instead of adding a duplicate. The time comes first so that a user's items sort
// chronologically (the seed stored created_at text such as "Mon Jan 02 ...", which does not).
func ItemKey(m stream.Message) (user, date string) {
	return m.User, m.CreatedAt.UTC().Format(dateLayout) + "#" + m.ID
}

// newItem projects a match onto a DynamoDB item of well under 1 KB for a tweet (one write
// unit), never the raw 2-7 KB tweet. ingestedAt is when the Writer accepted the match.
func newItem(m stream.Match, ingestedAt time.Time) map[string]types.AttributeValue {
	user, date := ItemKey(m.Message)
	item := map[string]types.AttributeValue{
		attrUser:       &types.AttributeValueMemberS{Value: user},
		attrDate:       &types.AttributeValueMemberS{Value: date},
		attrText:       &types.AttributeValueMemberS{Value: m.Message.Text},
		attrID:         &types.AttributeValueMemberS{Value: m.Message.ID},
		attrIngestedAt: &types.AttributeValueMemberS{Value: ingestedAt.UTC().Format(time.RFC3339)},
	}
	// A string set may be neither empty nor hold duplicates or empty strings: DynamoDB rejects
	// such an item with a ValidationException.
	if terms := setOf(m.Terms); len(terms) > 0 {
		item[attrMatched] = &types.AttributeValueMemberSS{Value: terms}
	}
	if m.Message.Source != "" {
		item[attrSource] = &types.AttributeValueMemberS{Value: m.Message.Source}
	}
	if m.Message.Lang != "" {
		item[attrLang] = &types.AttributeValueMemberS{Value: m.Message.Lang}
	}
	return item
}

// setOf returns the distinct non-empty strings of terms, sorted.
func setOf(terms []string) []string {
	out := make([]string, 0, len(terms))
	for _, t := range terms {
		if t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
