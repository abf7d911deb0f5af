package conn

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestRateLimitWait_ReadsXAndMastodonHeaders(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"X epoch seconds", map[string]string{"x-rate-limit-reset": fmt.Sprint(now.Add(7 * time.Minute).Unix())}, 7 * time.Minute},
		{"Mastodon ISO 8601", map[string]string{"X-RateLimit-Reset": now.Add(90 * time.Second).Format(time.RFC3339)}, 90 * time.Second},
		{"Retry-After seconds", map[string]string{"Retry-After": "120"}, 2 * time.Minute},
		{"the latest wins", map[string]string{"Retry-After": "30", "x-rate-limit-reset": fmt.Sprint(now.Add(time.Minute).Unix())}, time.Minute},
		{"in the past", map[string]string{"x-rate-limit-reset": fmt.Sprint(now.Add(-time.Minute).Unix())}, 0},
		{"capped", map[string]string{"x-rate-limit-reset": fmt.Sprint(now.Add(48 * time.Hour).Unix())}, maxRateLimitWait},
		{"garbage", map[string]string{"x-rate-limit-reset": "soon", "Retry-After": "-3"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := RateLimitWait(h, now); got != tt.want {
				t.Errorf("RateLimitWait: got %v, want %v", got, tt.want)
			}
		})
	}
}
