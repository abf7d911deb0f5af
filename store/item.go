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

// item is the projection of a match that the Writer queues: the attribute values only, as plain
// strings. The DynamoDB representation (a map of AttributeValue interfaces, about 500 bytes more
// per item) is built when the item is sent, 25 at a time, so that a full queue of QUEUE_SIZE
// items costs the text and a few strings each and not the SDK's maps.
type item struct {
	user, date, text, id, ingestedAt, source, lang string
	matched                                        []string
}

// newItem projects a match onto a DynamoDB item of well under 1 KB for a tweet (one write
// unit), never the raw 2-7 KB tweet. ingestedAt is when the Writer accepted the match.
func newItem(m stream.Match, ingestedAt time.Time) item {
	user, date := ItemKey(m.Message)
	return item{
		user: user, date: date, text: m.Message.Text, id: m.Message.ID,
		ingestedAt: ingestedAt.UTC().Format(time.RFC3339),
		source:     m.Message.Source, lang: m.Message.Lang,
		// A string set may be neither empty nor hold duplicates or empty strings: DynamoDB
		// rejects such an item with a ValidationException.
		matched: setOf(m.Terms),
	}
}

// attributes is the item as DynamoDB takes it.
func (it item) attributes() map[string]types.AttributeValue {
	av := map[string]types.AttributeValue{
		attrUser:       &types.AttributeValueMemberS{Value: it.user},
		attrDate:       &types.AttributeValueMemberS{Value: it.date},
		attrText:       &types.AttributeValueMemberS{Value: it.text},
		attrID:         &types.AttributeValueMemberS{Value: it.id},
		attrIngestedAt: &types.AttributeValueMemberS{Value: it.ingestedAt},
	}
	if len(it.matched) > 0 {
		av[attrMatched] = &types.AttributeValueMemberSS{Value: it.matched}
	}
	if it.source != "" {
		av[attrSource] = &types.AttributeValueMemberS{Value: it.source}
	}
	if it.lang != "" {
		av[attrLang] = &types.AttributeValueMemberS{Value: it.lang}
	}
	return av
}

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
