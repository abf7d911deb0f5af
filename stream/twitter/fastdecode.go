package twitter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/streammatch/streammatch/stream"
)

// This file is a selective, single-pass decoder for stream lines. It exists because
// encoding/json spends most of a tweet's decoding time reflecting over the 90% of the payload
// streammatch never reads (the user's profile, coordinates, every entity index), and the
// service must keep up with the firehose's one-second peak on one core. It reads only the
// fields wireLine declares, validates and skips everything else, and fills the same wire structs,
// so buildMessage makes the stream.Message exactly as it does for encoding/json.
//
// It must give exactly the stream.Record decodeLineStd gives for every input. It does not reimplement
// encoding/json's rarer rules; when a line needs one of them it gives up (ok == false) and
// DecodeLine runs encoding/json instead. Those lines are:
//   - a key that could match a field only case-insensitively or through an escape (encoding/json
//     matches "Text", "ſcreen_name" or "te\u0078t" to text): any key of a decoded object with
//     an upper-case letter, a non-ASCII byte or a backslash;
//   - a field given twice in one object (encoding/json merges the second into the first);
//   - nesting deeper than fastMaxDepth (encoding/json's limit is 10,000 levels).
//
// No real tweet has any of these. FuzzDecodeLineFast checks the equivalence on arbitrary input.

// fastMaxDepth bounds the nesting the fast decoder handles itself. Real tweets nest about 6
// levels; deeper lines go to encoding/json, which applies its own limit.
const fastMaxDepth = 64

// fastDecoder is the state of one line's decoding.
type fastDecoder struct {
	data []byte
	pos  int
	// typeErr records that a value had the wrong JSON type for its field ("id_str": 1), as
	// encoding/json's UnmarshalTypeError does: decoding goes on, and the line is still
	// classified, but a tweet with a type error is skipped as invalid_tweet.
	typeErr bool
	// fallback records that the line needs encoding/json (see the file comment).
	fallback bool
	// keyMayFold says whether the last key read could match a field only case-insensitively
	// or through an escape (see unknownKey). key works it out while it scans the key, so that
	// the many keys streammatch does not use are not read twice.
	keyMayFold bool
}

// lineNotices holds the raw values of the keys that classify a line. nil means absent; a key
// given twice keeps its last value, as json.RawMessage does.
type lineNotices struct {
	retweetCount, directMessage, delete, scrubGeo, limit []byte
	statusWithheld, userWithheld, disconnect, warning    []byte
}

// decodeLineFast decodes line as DecodeLine does. ok is false when the line needs encoding/json.
func decodeLineFast(line []byte, source string) (rec stream.Record, ok bool) {
	// UTF-8 is validated as part of the scan rather than in a pass of its own: outside strings
	// only ASCII is valid JSON, and scanString checks the non-ASCII runs inside strings. When the
	// line is not valid JSON, encoding/json's order of checks decides the reason: UTF-8 first.
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return invalidLine(line), true
	}
	d := fastDecoder{data: trimmed}
	var w wireTweet
	var n lineNotices
	if !d.parseTweet(&w, &n, 1) || d.pos != len(d.data) {
		if d.fallback {
			return stream.Record{}, false
		}
		return invalidLine(line), true
	}
	switch {
	case n.retweetCount != nil:
		if d.typeErr {
			return stream.Skip(stream.ReasonInvalidTweet), true
		}
		m, reason := buildMessage(&w, source)
		if reason != "" {
			return stream.Skip(reason), true
		}
		return stream.Record{Kind: stream.KindMessage, Message: m}, true
	case n.directMessage != nil:
		return stream.Notice("other"), true
	case n.delete != nil:
		return noticeOf("delete", n.delete), true
	case n.scrubGeo != nil:
		return noticeOf("scrub_geo", n.scrubGeo), true
	case n.limit != nil:
		// Limit notices are rare and small: encoding/json reads the count, so its rules for
		// numbers (no fractions, no exponents, no overflow) apply unchanged.
		var limit struct {
			Track int64 `json:"track"`
		}
		if json.Unmarshal(n.limit, &limit) != nil {
			return stream.Skip(stream.ReasonInvalidNotice), true
		}
		return stream.Record{Kind: stream.KindNotice, Notice: "limit", LimitMissed: max(limit.Track, 0)}, true
	case n.statusWithheld != nil:
		return noticeOf("status_withheld", n.statusWithheld), true
	case n.userWithheld != nil:
		return noticeOf("user_withheld", n.userWithheld), true
	case n.disconnect != nil:
		return noticeOf("disconnect", n.disconnect), true
	case n.warning != nil:
		return noticeOf("warning", n.warning), true
	}
	return stream.Notice("other"), true
}

// invalidLine is the record for a line that is not valid JSON, or not valid UTF-8.
func invalidLine(line []byte) stream.Record {
	if !utf8.Valid(line) {
		return stream.Skip(stream.ReasonInvalidUTF8)
	}
	return stream.Skip(stream.ReasonInvalidJSON)
}

// Field bits for duplicate detection, per object type.
const (
	fIDStr = 1 << iota
	fCreatedAt
	fText
	fFullText
	fTruncated
	fLang
	fUser
	fEntities
	fExtendedEntities
	fExtendedTweet
	fRetweetedStatus
	fQuotedStatus
)

// parseTweet decodes a tweet object at d.pos. n is non-nil only for the line's top level, where
// the notice keys are fields too.
func (d *fastDecoder) parseTweet(t *wireTweet, n *lineNotices, depth int) bool {
	more, ok := d.openObject(depth)
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			return false
		}
		switch string(k) {
		case "id_str":
			ok = d.once(&seen, fIDStr) && d.stringField(&t.IDStr, depth)
		case "created_at":
			ok = d.once(&seen, fCreatedAt) && d.stringField(&t.CreatedAt, depth)
		case "text":
			ok = d.once(&seen, fText) && d.stringField(&t.Text, depth)
		case "full_text":
			ok = d.once(&seen, fFullText) && d.stringField(&t.FullText, depth)
		case "truncated":
			ok = d.once(&seen, fTruncated) && d.boolField(&t.Truncated, depth)
		case "lang":
			ok = d.once(&seen, fLang) && d.stringField(&t.Lang, depth)
		case "user":
			ok = d.once(&seen, fUser) && d.userField(&t.User, depth)
		case "entities":
			ok = d.once(&seen, fEntities) && d.entitiesField(&t.Entities, depth)
		case "extended_entities":
			ok = d.once(&seen, fExtendedEntities) && d.entitiesField(&t.ExtendedEntities, depth)
		case "extended_tweet":
			ok = d.once(&seen, fExtendedTweet) && d.extendedField(&t.ExtendedTweet, depth)
		case "retweeted_status":
			ok = d.once(&seen, fRetweetedStatus) && d.tweetField(&t.RetweetedStatus, depth)
		case "quoted_status":
			ok = d.once(&seen, fQuotedStatus) && d.tweetField(&t.QuotedStatus, depth)
		default:
			ok = d.otherField(k, n, depth)
		}
		if ok {
			more, ok = d.nextMember()
		}
	}
	return ok
}

// otherField handles a key that is not a tweet field: a notice key at the top level, else a
// value to skip.
func (d *fastDecoder) otherField(k []byte, n *lineNotices, depth int) bool {
	if n != nil {
		var dst *[]byte
		switch string(k) {
		case "retweet_count":
			dst = &n.retweetCount
		case "direct_message":
			dst = &n.directMessage
		case "delete":
			dst = &n.delete
		case "scrub_geo":
			dst = &n.scrubGeo
		case "limit":
			dst = &n.limit
		case "status_withheld":
			dst = &n.statusWithheld
		case "user_withheld":
			dst = &n.userWithheld
		case "disconnect":
			dst = &n.disconnect
		case "warning":
			dst = &n.warning
		}
		if dst != nil {
			start := d.pos
			if !d.skipValue(depth + 1) {
				return false
			}
			*dst = d.data[start:d.pos]
			return true
		}
	}
	return d.unknownKey() && d.skipValue(depth+1)
}

func (d *fastDecoder) tweetField(dst **wireTweet, depth int) bool {
	switch d.peek() {
	case '{':
		t := new(wireTweet)
		*dst = t
		return d.parseTweet(t, nil, depth+1)
	case 'n':
		*dst = nil
		return d.literal("null")
	}
	return d.wrongType(depth)
}

func (d *fastDecoder) userField(dst **wireUser, depth int) bool {
	switch d.peek() {
	case '{':
	case 'n':
		*dst = nil
		return d.literal("null")
	default:
		return d.wrongType(depth)
	}
	u := new(wireUser)
	*dst = u
	more, ok := d.openObject(depth + 1)
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			return false
		}
		if string(k) == "screen_name" {
			ok = d.once(&seen, 1) && d.stringField(&u.ScreenName, depth+1)
		} else {
			ok = d.unknownKey() && d.skipValue(depth+2)
		}
		if ok {
			more, ok = d.nextMember()
		}
	}
	return ok
}

func (d *fastDecoder) extendedField(dst **wireExtended, depth int) bool {
	switch d.peek() {
	case '{':
	case 'n':
		*dst = nil
		return d.literal("null")
	default:
		return d.wrongType(depth)
	}
	x := new(wireExtended)
	*dst = x
	more, ok := d.openObject(depth + 1)
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			return false
		}
		switch string(k) {
		case "full_text":
			ok = d.once(&seen, 1) && d.stringField(&x.FullText, depth+1)
		case "entities":
			ok = d.once(&seen, 2) && d.entitiesField(&x.Entities, depth+1)
		case "extended_entities":
			ok = d.once(&seen, 4) && d.entitiesField(&x.ExtendedEntities, depth+1)
		default:
			ok = d.unknownKey() && d.skipValue(depth+2)
		}
		if ok {
			more, ok = d.nextMember()
		}
	}
	return ok
}

func (d *fastDecoder) entitiesField(dst **wireEntities, depth int) bool {
	switch d.peek() {
	case '{':
	case 'n':
		*dst = nil
		return d.literal("null")
	default:
		return d.wrongType(depth)
	}
	e := new(wireEntities)
	*dst = e
	more, ok := d.openObject(depth + 1)
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			return false
		}
		switch string(k) {
		case "hashtags":
			ok = d.once(&seen, 1) && d.hashtagsField(&e.Hashtags, depth+1)
		case "user_mentions":
			ok = d.once(&seen, 2) && d.mentionsField(&e.UserMentions, depth+1)
		case "urls":
			ok = d.once(&seen, 4) && d.urlsField(&e.URLs, depth+1)
		case "media":
			ok = d.once(&seen, 8) && d.urlsField(&e.Media, depth+1)
		default:
			ok = d.unknownKey() && d.skipValue(depth+2)
		}
		if ok {
			more, ok = d.nextMember()
		}
	}
	return ok
}

// The three entity lists differ only in their element's one or two string fields; each is
// written out so that no closure or reflection sits on the hot path.

func (d *fastDecoder) hashtagsField(dst *[]wireHashtag, depth int) bool {
	more, ok, isNull := d.openArrayField(depth)
	if isNull {
		*dst = nil
		return ok
	}
	list := (*dst)[:0]
	for ok && more {
		var h wireHashtag
		ok = d.stringObject(depth+2, "text", &h.Text, "", nil)
		list = append(list, h)
		if ok {
			more, ok = d.nextElement()
		}
	}
	*dst = list
	return ok
}

func (d *fastDecoder) mentionsField(dst *[]wireMention, depth int) bool {
	more, ok, isNull := d.openArrayField(depth)
	if isNull {
		*dst = nil
		return ok
	}
	list := (*dst)[:0]
	for ok && more {
		var m wireMention
		ok = d.stringObject(depth+2, "screen_name", &m.ScreenName, "", nil)
		list = append(list, m)
		if ok {
			more, ok = d.nextElement()
		}
	}
	*dst = list
	return ok
}

func (d *fastDecoder) urlsField(dst *[]wireURL, depth int) bool {
	more, ok, isNull := d.openArrayField(depth)
	if isNull {
		*dst = nil
		return ok
	}
	list := (*dst)[:0]
	for ok && more {
		var u wireURL
		ok = d.stringObject(depth+2, "expanded_url", &u.ExpandedURL, "display_url", &u.DisplayURL)
		list = append(list, u)
		if ok {
			more, ok = d.nextElement()
		}
	}
	*dst = list
	return ok
}

// openArrayField starts a slice field's value: an array (more says whether it has elements),
// or null (isNull), or a value of another type, which is a type error and is skipped.
func (d *fastDecoder) openArrayField(depth int) (more, ok, isNull bool) {
	switch d.peek() {
	case '[':
		more, ok = d.openArray(depth + 1)
		return more, ok, false
	case 'n':
		return false, d.literal("null"), true
	}
	// A slice keeps its zero value on a type error; the tweet is invalid anyway.
	return false, d.wrongType(depth), false
}

// stringObject decodes an array element that is an object with up to two string fields of
// interest (name2 may be empty). null leaves the element zero, as encoding/json does.
func (d *fastDecoder) stringObject(depth int, name1 string, dst1 *string, name2 string, dst2 *string) bool {
	switch d.peek() {
	case '{':
	case 'n':
		return d.literal("null")
	default:
		return d.wrongType(depth - 1)
	}
	more, ok := d.openObject(depth)
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			return false
		}
		switch {
		case string(k) == name1:
			ok = d.once(&seen, 1) && d.stringField(dst1, depth)
		case name2 != "" && string(k) == name2:
			ok = d.once(&seen, 2) && d.stringField(dst2, depth)
		default:
			ok = d.unknownKey() && d.skipValue(depth+1)
		}
		if ok {
			more, ok = d.nextMember()
		}
	}
	return ok
}

// once marks field bit f as seen in an object, and gives up on the line if it was seen before.
func (d *fastDecoder) once(seen *uint32, f uint32) bool {
	if *seen&f != 0 {
		d.fallback = true
		return false
	}
	*seen |= f
	return true
}

// unknownKey accepts the key just read, which matches no field, unless encoding/json might
// still match it to one: case-insensitively (an upper-case letter, or a non-ASCII letter such
// as the Kelvin sign that folds to ASCII) or after unescaping.
func (d *fastDecoder) unknownKey() bool {
	if d.keyMayFold {
		d.fallback = true
		return false
	}
	return true
}

// keyMayFold reports whether k holds an upper-case ASCII letter, a non-ASCII byte or a
// backslash, eight bytes at a time. scanKey's fast path computes the same; this is its slow path.
func keyMayFold(k []byte) bool {
	for len(k) >= 8 {
		x := binary.LittleEndian.Uint64(k)
		b := x ^ swarBackslash
		// With the high bit forced on, subtracting 'A' or 'Z'+1 never borrows across bytes,
		// so each byte's high bit tells whether it is >= 'A' and >= 'Z'+1.
		hx := x | swarHigh
		upper := (hx - 'A'*swarOnes) &^ (hx - ('Z'+1)*swarOnes)
		if ((b-swarOnes)&^b|upper|x)&swarHigh != 0 {
			return true
		}
		k = k[8:]
	}
	for _, c := range k {
		if c >= utf8.RuneSelf || c == '\\' || 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// wrongType records a type error and skips the value, as encoding/json does.
func (d *fastDecoder) wrongType(depth int) bool {
	d.typeErr = true
	return d.skipValue(depth + 1)
}

// stringField decodes a string field: a string, or null (which leaves the field unchanged).
func (d *fastDecoder) stringField(dst *string, depth int) bool {
	switch d.peek() {
	case '"':
		start := d.pos + 1
		end, escaped, ok := d.scanString()
		if !ok {
			return false
		}
		if escaped {
			*dst = unquoteJSON(d.data[start:end])
		} else {
			*dst = string(d.data[start:end])
		}
		return true
	case 'n':
		return d.literal("null")
	}
	return d.wrongType(depth)
}

// boolField decodes a bool field: true, false, or null (unchanged).
func (d *fastDecoder) boolField(dst *bool, depth int) bool {
	switch d.peek() {
	case 't':
		*dst = true
		return d.literal("true")
	case 'f':
		*dst = false
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.wrongType(depth)
}

// peek returns the byte at d.pos, or 0 at the end. Values start at d.pos: key and nextMember
// consume the whitespace before them.
func (d *fastDecoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *fastDecoder) skipSpace() {
	// Stream lines are compact JSON, so there is usually no whitespace at all: one compare.
	if d.pos < len(d.data) && d.data[d.pos] > ' ' {
		return
	}
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// openObject consumes '{' and the whitespace after it; more says whether a key follows.
func (d *fastDecoder) openObject(depth int) (more, ok bool) {
	if depth > fastMaxDepth {
		d.fallback = true
		return false, false
	}
	d.pos++ // '{', checked by the caller
	d.skipSpace()
	if d.peek() == '}' {
		d.pos++
		return false, true
	}
	return true, true
}

// openArray consumes '[' and the whitespace after it; more says whether an element follows.
func (d *fastDecoder) openArray(depth int) (more, ok bool) {
	if depth > fastMaxDepth {
		d.fallback = true
		return false, false
	}
	d.pos++ // '[', checked by the caller
	d.skipSpace()
	if d.peek() == ']' {
		d.pos++
		return false, true
	}
	return true, true
}

// key reads an object key and the ':' after it, and returns the key's raw bytes (escapes not
// decoded), with d.pos at the value. It sets d.keyMayFold.
func (d *fastDecoder) key() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	start := d.pos + 1
	end, ok := d.scanKey()
	if !ok {
		return nil, false
	}
	d.skipSpace()
	if d.peek() != ':' {
		return nil, false
	}
	d.pos++
	d.skipSpace()
	return d.data[start:end], true
}

// scanKey is scanString for a key, which also sets d.keyMayFold. Keys are short, plain ASCII
// and lower-case, so the common key is checked for the end quote and for upper-case letters
// in the same eight-byte steps; anything else (an escape, non-ASCII, a key at the very end of
// data) takes scanString and keyMayFold.
func (d *fastDecoder) scanKey() (end int, ok bool) {
	data := d.data
	start := d.pos + 1
	for i := start; i+8 <= len(data); i += 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		q := x ^ swarQuote
		b := x ^ swarBackslash
		m := ((q - swarOnes) &^ q) | ((b - swarOnes) &^ b) | (x - swarSpace) | x
		// With the high bit forced on, subtracting 'A' or 'Z'+1 never borrows across bytes,
		// so each byte's high bit tells whether its low seven bits are >= 'A' and >= 'Z'+1.
		hx := x | swarHigh
		upper := (hx - 'A'*swarOnes) &^ (hx - ('Z'+1)*swarOnes) & swarHigh
		if m &= swarHigh; m != 0 {
			n := bits.TrailingZeros64(m) // the high bit of the first flagged byte
			if i += n >> 3; data[i] != '"' {
				break // An escape, a control character or non-ASCII: the slow path.
			}
			// Bits below n cover the bytes before the quote (and not the quote's high bit).
			d.keyMayFold = upper&(1<<n-1) != 0
			d.pos = i + 1
			return i, true
		}
		if upper != 0 {
			break
		}
	}
	end, escaped, ok := d.scanString()
	d.keyMayFold = escaped || ok && keyMayFold(data[start:end])
	return end, ok
}

// nextMember consumes what follows an object member: ',' and the next key's whitespace (more),
// or the closing '}'.
func (d *fastDecoder) nextMember() (more, ok bool) {
	d.skipSpace()
	switch d.peek() {
	case ',':
		d.pos++
		d.skipSpace()
		return true, true
	case '}':
		d.pos++
		return false, true
	}
	return false, false
}

// nextElement is nextMember for arrays.
func (d *fastDecoder) nextElement() (more, ok bool) {
	d.skipSpace()
	switch d.peek() {
	case ',':
		d.pos++
		d.skipSpace()
		return true, true
	case ']':
		d.pos++
		return false, true
	}
	return false, false
}

func (d *fastDecoder) literal(word string) bool {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return false
	}
	d.pos += len(word)
	return true
}

// skipValue validates and skips one JSON value at d.pos, nested at depth.
func (d *fastDecoder) skipValue(depth int) bool {
	switch c := d.peek(); c {
	case '"':
		_, _, ok := d.scanString()
		return ok
	case '{':
		more, ok := d.openObject(depth)
		for ok && more {
			if _, ok = d.key(); ok && d.skipValue(depth+1) {
				more, ok = d.nextMember()
			} else {
				ok = false
			}
		}
		return ok
	case '[':
		more, ok := d.openArray(depth)
		for ok && more {
			if d.skipValue(depth + 1) {
				more, ok = d.nextElement()
			} else {
				ok = false
			}
		}
		return ok
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return d.skipNumber()
		}
		return false
	}
}

// skipNumber validates a number by JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *fastDecoder) skipNumber() bool {
	data, i := d.data, d.pos
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return false
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return false
		}
		i = j
	}
	d.pos = i
	return true
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

// SWAR constants: one byte repeated eight times.
const (
	swarOnes      = 0x0101010101010101
	swarHigh      = 0x8080808080808080
	swarQuote     = '"' * swarOnes
	swarBackslash = '\\' * swarOnes
	swarSpace     = ' ' * swarOnes
)

// scanString validates the string whose opening quote is at d.pos and moves past its closing
// quote. end is the index of the closing quote; escaped says whether the string holds a
// backslash escape. Only quotes, backslashes, control characters and non-ASCII bytes need
// looking at: it tests eight bytes at a time for them, which is what makes skipping a tweet's
// unused fields cheap, and checks the UTF-8 of non-ASCII text as it goes, in the same pass.
func (d *fastDecoder) scanString() (end int, escaped, ok bool) {
	data := d.data
	i := d.pos + 1
	for {
		for i+8 <= len(data) {
			x := binary.LittleEndian.Uint64(data[i:])
			q := x ^ swarQuote
			b := x ^ swarBackslash
			// A byte is flagged when it is '"', '\\', below 0x20 (x - swarSpace borrows into
			// its high bit) or 0x80 and above (its own high bit). The lowest flagged byte is
			// always a real one: borrows only reach more significant bytes.
			m := ((q - swarOnes) &^ q) | ((b - swarOnes) &^ b) | (x - swarSpace) | x
			if m &= swarHigh; m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(data) {
			return 0, false, false
		}
		switch c := data[i]; {
		case c == '"':
			d.pos = i + 1
			return i, escaped, true
		case c >= utf8.RuneSelf:
			// A run of non-ASCII text (Japanese, emoji).
			if i, ok = skipUTF8(data, i); !ok {
				return 0, false, false
			}
		case c == '\\':
			escaped = true
			if i+1 >= len(data) {
				return 0, false, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) || !isHex(data[i+5]) {
					return 0, false, false
				}
				i += 6
			default:
				return 0, false, false
			}
		case c < ' ':
			return 0, false, false
		default:
			// Only reached near the end of data, where fewer than eight bytes are left.
			i++
		}
	}
}

// skipUTF8 checks the UTF-8 sequences starting at data[i] (a byte >= 0x80) up to the next ASCII
// byte, and returns that byte's index. It accepts exactly what utf8.Valid accepts (no overlong
// forms, no surrogates, nothing above U+10FFFF), in one pass and without a call per rune: a
// line of Japanese is mostly three-byte sequences, which take one load and two compares each.
func skipUTF8(data []byte, i int) (int, bool) {
	for i < len(data) {
		c := data[i]
		switch {
		case c < utf8.RuneSelf:
			return i, true
		case c >= 0xE1 && c <= 0xEF && c != 0xED && i+3 <= len(data):
			// The common case, U+1000 to U+FFFF without the surrogates: any two continuation bytes.
			if data[i+1]&0xC0 != 0x80 || data[i+2]&0xC0 != 0x80 {
				return i, false
			}
			i += 3
		default:
			n, ok := utf8SeqLen(data[i:])
			if !ok {
				return i, false
			}
			i += n
		}
	}
	return i, true
}

// utf8SeqLen checks the UTF-8 sequence at the start of s, whose first byte is >= 0x80, by the
// table of well-formed sequences in the Unicode standard (Table 3-7).
func utf8SeqLen(s []byte) (int, bool) {
	c := s[0]
	var n int
	lo, hi := byte(0x80), byte(0xBF) // the range of the second byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		n = 2
	case c == 0xE0:
		n, lo = 3, 0xA0
	case c >= 0xE1 && c <= 0xEF:
		n = 3
		if c == 0xED {
			hi = 0x9F
		}
	case c == 0xF0:
		n, lo = 4, 0x90
	case c >= 0xF1 && c <= 0xF3:
		n = 4
	case c == 0xF4:
		n, hi = 4, 0x8F
	default:
		return 0, false
	}
	if len(s) < n || s[1] < lo || s[1] > hi {
		return 0, false
	}
	for _, b := range s[2:n] {
		if b&0xC0 != 0x80 {
			return 0, false
		}
	}
	return n, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unquoteJSON decodes the escapes of a string already validated by scanString (without its
// quotes), with encoding/json's rules: a \u escape of a lone or mismatched UTF-16 surrogate
// becomes U+FFFD, and a valid pair becomes one rune.
func unquoteJSON(s []byte) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				j = len(s) - i
			}
			b = append(b, s[i:i+j]...)
			i += j
			continue
		}
		switch s[i+1] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, hex4(s[i+2:])); dec != utf8.RuneError {
						b = utf8.AppendRune(b, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
			continue
		default: // '"', '\\', '/'
			b = append(b, s[i+1])
		}
		i += 2
	}
	return string(b)
}

// hex4 reads four hex digits already validated by scanString.
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
