package twitter

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dghubble/go-twitter/twitter"

	"github.com/streammatch/streammatch/stream/internal/streamtest"
)

// fastDecodeSeeds are lines that exercise each rule the fast decoder must share with
// encoding/json: they seed the fuzzer and run as a table in TestDecodeLineFast_MatchesStd.
var fastDecodeSeeds = []string{
	`{` + decodeCreated + `,"id_str":"1","text":"hi &amp; bye","user":{"screen_name":"a"},"retweet_count":0,` +
		`"entities":{"hashtags":[{"text":"go"}],"urls":[{"expanded_url":"http://x.com/a","display_url":"x.com/a"}]},` +
		`"extended_tweet":{"full_text":"hi and more"},"quoted_status":{"id_str":"2","text":"q","user":{"screen_name":"b"}},` +
		`"retweeted_status":{"id_str":"3","full_text":"orig","user":{"screen_name":"c"}}}`,
	// Escapes, including surrogate pairs, lone and mismatched surrogates, and Twitter's "\/".
	`{` + decodeCreated + `,"id_str":"1","text":"caf\u00e9 \ud83d\ude0b \ud83d x \ude0b \ud83d\u0041 \"q\" \\ \/ \b\f\n\r\t","user":{"screen_name":"a"},"retweet_count":0,` +
		`"entities":{"urls":[{"expanded_url":"https:\/\/example.com\/a","display_url":"example.com\/a"}]}}`,
	// Whitespace everywhere JSON allows it.
	" \t{ \"retweet_count\" : 0 , \"id_str\" : \"1\" ,\n\"text\":\r\"x\" , \"user\" : { \"screen_name\" : \"a\" } , " + decodeCreated + " , \"entities\" : { \"hashtags\" : [ { \"text\" : \"h\" } , null ] } }\n",
	// Nulls: strings and bools unchanged, pointers and slices nil.
	`{` + decodeCreated + `,"id_str":"1","text":"x","user":{"screen_name":"a"},"retweet_count":null,"lang":null,"truncated":null,"entities":null,"extended_tweet":null,"retweeted_status":null}`,
	`{` + decodeCreated + `,"id_str":"1","text":"x","user":{"screen_name":"a"},"retweet_count":0,"entities":{"hashtags":null,"urls":[null,{"expanded_url":null}]}}`,
	// Type errors, at the top and nested.
	`{"retweet_count":0,"id_str":1}`, `{"retweet_count":0,"truncated":"yes"}`, `{"retweet_count":0,"user":[]}`,
	`{"retweet_count":0,"entities":{"hashtags":{}}}`, `{"retweet_count":0,"entities":{"urls":["x"]}}`,
	`{"retweet_count":0,"retweeted_status":{"quoted_status":{"text":true}}}`, `{"delete":{},"id_str":1}`,
	// Case-insensitive keys, escaped keys and duplicates: left to encoding/json.
	`{"Retweet_Count":0,"ID_STR":"1","Text":"x","user":{"Screen_Name":"a"},` + decodeCreated + `}`,
	"{\"retweet_count\":0,\"id_str\":\"1\",\"text\":\"x\",\"user\":{\"\u017fcreen_name\":\"a\"}," + decodeCreated + `}`,
	`{"retweet_count":0,"id_\u0073tr":"1","text":"x","user":{"screen_name":"a"},` + decodeCreated + `}`,
	`{"retweet_count":0,"id_str":"1","text":"x","text":"y","user":{"screen_name":"a"},"user":{"id":1},` + decodeCreated + `}`,
	`{"delete":null,"delete":5}`, `{"limit":{"track":3},"limit":{"track":4}}`,
	// Notices and their bodies.
	`{"delete":{"status":{"id":1}}}`, `{"limit":{"track":12}}`, `{"limit":{"track":"x"}}`, `{"limit":{"track":1.5}}`,
	`{"limit":{"Track":7}}`, `{"limit":null}`, `{"warning":{}}`, `{"disconnect":null}`, `{"scrub_geo":5}`,
	`{"status_withheld":{}}`, `{"user_withheld":[]}`, `{"direct_message":1}`, `{"friends":[1]}`, `{}`,
	// Syntax: every one of these is invalid_json, wherever the error is.
	`[]`, `null`, ``, `{`, `{"a":}`, `{"a":01}`, `{"a":1.}`, `{"a":1e}`, `{"a":-}`, `{"a":tru}`, `{"a":"\x"}`,
	`{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":1,}`, `{"a":[1,]}`, `{"a" 1}`, `{"a":1} x`, `{"a":1}}`, `{'a':1}`,
	"{\"text\":\"\xff\"}", "\v{\"delete\":{}}\u00a0",
	// Deep nesting: within the fast decoder's bound, beyond it, and beyond encoding/json's.
	`{"x":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `}`,
	`{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
	`{"x":` + strings.Repeat(`{"a":`, 10001) + `1` + strings.Repeat("}", 10001) + `}`,
}

// TestDecodeLineFast_MatchesStd runs the seed lines and every tweet of twitter.json through
// both decoders and requires the same stream.Record. Lines the fast decoder leaves to encoding/json are
// counted: none of the real tweets may be among them, or the fast path would not be taken.
func TestDecodeLineFast_MatchesStd(t *testing.T) {
	for _, line := range fastDecodeSeeds {
		name := line
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) { checkFastDecode(t, []byte(line)) })
	}
	lines := testdataLines(t, false)
	if lines == nil {
		t.Log("../shared/testdata/twitter.json is absent: real tweets not checked")
	}
	for i, l := range lines {
		if _, ok := decodeLineFast(l, "replay"); !ok {
			t.Errorf("tweet %d: fast decoder fell back to encoding/json", i)
		}
		checkFastDecode(t, l)
		// The same tweet, pretty-printed and with every '/' escaped as Twitter's stream sends it.
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, l, "", "  "); err != nil {
			t.Fatal(err)
		}
		checkFastDecode(t, bytes.ReplaceAll(pretty.Bytes(), []byte("/"), []byte(`\/`)))
	}
}

// TestDecodeLineFast_EncodesEscapesAsEncodingJSON compares decoded strings directly, so that a
// disagreement names the escape.
func TestDecodeLineFast_EncodesEscapesAsEncodingJSON(t *testing.T) {
	tests := []string{
		`plain`, `caf\u00e9`, `\ud83d\ude0b`, `\ud83d`, `\ud83dx`, `\ude0b\ud83d`, `\ud83d\u0041`, `\ud83d\ud83d\ude0b`,
		`\u0000`, `\"\\\/\b\f\n\r\t`, `a\u00`, `\uDBFF\uDFFF`, `\uD800\uDC00`,
	}
	for _, s := range tests {
		t.Run(s, func(t *testing.T) {
			var want string
			wantErr := json.Unmarshal([]byte(`"`+s+`"`), &want)
			d := fastDecoder{data: []byte(`"` + s + `"`)}
			var got string
			ok := d.stringField(&got, 0) && d.pos == len(d.data)
			if (wantErr == nil) != ok {
				t.Fatalf("valid = %v, encoding/json err = %v", ok, wantErr)
			}
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// FuzzDecodeLineFast is the differential test: on any input the fast decoder either leaves the
// line to encoding/json or gives exactly the stream.Record encoding/json's decoder gives.
//
//	go test ./stream -run '^$' -fuzz FuzzDecodeLineFast -fuzztime 60s
func FuzzDecodeLineFast(f *testing.F) {
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s))
	}
	for i, l := range testdataLines(f, false) {
		if i%10 == 0 {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) { checkFastDecode(t, line) })
}

func checkFastDecode(t *testing.T, line []byte) {
	t.Helper()
	want := decodeLineStd(line, "replay")
	got, ok := decodeLineFast(line, "replay")
	if !ok {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("line %.200q\nfast: %s %#v\nstd:  %s %#v", line, streamtest.RecordSummary(got), got, streamtest.RecordSummary(want), want)
	}
}

// BenchmarkDecoders compares the decoders on the real tweets of twitter.json, one op being the
// whole file: the selective decoder (DecodeLine), encoding/json into the small wire structs
// (what DecodeLine was), go-twitter's path (a map to find the type, then the full twitter.Tweet
// and the conversion), encoding/json into a full twitter.Tweet alone, and a newline scan of the
// same bytes with bytes.IndexByte, the memory-speed ceiling of anything that reads every byte.
func BenchmarkDecoders(b *testing.B) {
	lines := testdataLines(b, true)
	var ndjson []byte
	for _, l := range lines {
		ndjson = append(append(ndjson, l...), '\n')
	}
	size := int64(len(ndjson))
	report := func(b *testing.B) {
		b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "tweets/s")
	}
	each := func(name string, decode func(l []byte)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				for _, l := range lines {
					decode(l)
				}
			}
			report(b)
		})
	}
	each("Selective", func(l []byte) { DecodeLine(l, "bench") })
	each("EncodingJSONWire", func(l []byte) { decodeLineStd(l, "bench") })
	each("GoTwitterPath", func(l []byte) {
		var data map[string]any
		if json.Unmarshal(l, &data) != nil {
			return
		}
		if _, ok := data["retweet_count"]; ok {
			tw := new(twitter.Tweet)
			_ = json.Unmarshal(l, tw)
			DecodeTweet(tw, "bench")
		}
	})
	each("EncodingJSONFullStruct", func(l []byte) {
		var tw twitter.Tweet
		_ = json.Unmarshal(l, &tw)
	})
	b.Run("IndexByteNewlines", func(b *testing.B) {
		b.SetBytes(size)
		n := 0
		for b.Loop() {
			for rest := ndjson; ; {
				i := bytes.IndexByte(rest, '\n')
				if i < 0 {
					break
				}
				n++
				rest = rest[i+1:]
			}
		}
		report(b)
		if n == 0 {
			b.Fatal("no lines")
		}
	})
}

// TestSkipUTF8_AgreesWithUTF8Valid checks the fast decoder's own UTF-8 check against utf8.Valid
// on every sequence of one to three bytes of 0x80 and above, and on four-byte sequences built
// from the bytes at the edges of each range, each followed by an ASCII byte or the end of data.
func TestSkipUTF8_AgreesWithUTF8Valid(t *testing.T) {
	edges := []byte{0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF}
	check := func(run []byte) {
		for _, tail := range []string{"", `"`} {
			data := append(slices.Clip(run), tail...)
			end, ok := skipUTF8(data, 0)
			if want := utf8.Valid(run); ok != want || ok && end != len(run) {
				t.Fatalf("skipUTF8(% x) = %d, %v; want %d, %v", data, end, ok, len(run), want)
			}
		}
	}
	run := make([]byte, 0, 4)
	for a := 0x80; a <= 0xFF; a++ {
		check(append(run[:0], byte(a)))
		for b := 0x80; b <= 0xFF; b++ {
			check(append(run[:0], byte(a), byte(b)))
			for c := 0x80; c <= 0xFF; c++ {
				check(append(run[:0], byte(a), byte(b), byte(c)))
			}
		}
	}
	for _, a := range edges {
		for _, b := range edges {
			for _, c := range edges {
				for _, d := range edges {
					check(append(run[:0], a, b, c, d))
				}
			}
		}
	}
}

// TestScanKey_AgreesWithScanString checks scanKey's eight-byte fast path against scanString
// and keyMayFold, for keys of every length up to 20 with one special byte (upper-case, escape,
// non-ASCII, control character, the closing quote) at every position, followed by nothing, by
// a short tail or by a long one, since the fast path reads eight bytes at a time.
func TestScanKey_AgreesWithScanString(t *testing.T) {
	specials := []string{"", "A", "Z", "@", "[", "`", "{", "\\n", "\\u0041", "\\", "\u017f", "\xc3", "\x01", "\x7f", `"`}
	for n := 0; n <= 20; n++ {
		for at := 0; at <= n; at++ {
			for _, sp := range specials {
				for _, tail := range []string{"", `"`, `":1`, `":1234567890123`} {
					key := strings.Repeat("k", at) + sp + strings.Repeat("e", n-at)
					data := []byte(`"` + key + tail)
					ref := fastDecoder{data: data}
					wantEnd, escaped, wantOK := ref.scanString()
					wantFold := escaped || wantOK && keyMayFold(data[1:wantEnd])
					d := fastDecoder{data: data}
					end, ok := d.scanKey()
					if ok != wantOK || ok && (end != wantEnd || d.pos != ref.pos || d.keyMayFold != wantFold) {
						t.Fatalf("scanKey(%q) = end %d, pos %d, fold %v, ok %v; want end %d, pos %d, fold %v, ok %v",
							data, end, d.pos, d.keyMayFold, ok, wantEnd, ref.pos, wantFold, wantOK)
					}
				}
			}
		}
	}
}
