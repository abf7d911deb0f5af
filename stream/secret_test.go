package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecret_IsRedactedEverywhere(t *testing.T) {
	const value = "bt-Kq4LEAKCHECKbearertoken+/="
	secret := Secret(value)
	type holder struct{ T Secret }
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "token", secret, "holder", holder{secret})
	js, err := json.Marshal(holder{secret})
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		fmt.Sprint(secret), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", secret, secret, secret, secret, secret, secret, secret, secret),
		fmt.Sprintf("%v %+v %#v", holder{secret}, holder{secret}, holder{secret}),
		logs.String(), string(js), fmt.Errorf("wrapped: %v", secret).Error(),
	}
	for _, out := range outputs {
		if strings.Contains(out, value) || strings.Contains(out, "LEAKCHECK") {
			t.Errorf("output holds the secret: %s", strings.ReplaceAll(out, value, "<SECRET>"))
		}
	}
	if outputs[0] != "REDACTED" {
		t.Errorf("fmt.Sprint: got %q, want the redacted form", outputs[0])
	}
	if string(secret) != value {
		t.Errorf("string(secret) does not give the value back")
	}
}

func TestSecret_Empty(t *testing.T) {
	for _, tc := range []struct {
		in   Secret
		want bool
	}{{"", true}, {" \t\r\n", true}, {"x", false}, {" x ", false}} {
		if got := tc.in.Empty(); got != tc.want {
			t.Errorf("Secret(%d bytes).Empty() = %v, want %v", len(tc.in), got, tc.want)
		}
	}
}
