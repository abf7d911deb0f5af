package web

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const chromiumPath = "/usr/bin/chromium"

// TestPage_RendersInChromium loads the status page in a real browser, with the real CSP, and
// checks that it renders (the stylesheet is allowed and applied) and that script payloads in
// tweets stay text. Set STREAMMATCH_SCREENSHOT_DIR to keep the screenshot for a look.
func TestPage_RendersInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (%v); CI must install chromium", chromiumPath, err)
		}
		t.Skipf("%s not found; install chromium to run this test", chromiumPath)
	}

	f := sampleStatus()
	// Attacker-written tweets: the payloads would mark <body> if they ran.
	f.matches = append([]MatchView{
		{ID: "1234567890123456790", User: "<img src=x onerror=document.body.setAttribute('data-pwned','img')>",
			CreatedAt: f.matches[0].CreatedAt.Add(5 * time.Second), Lang: "en", Source: "twitter",
			Text:  "<script>document.body.setAttribute('data-pwned','script')</script> gophercon",
			Terms: []string{"gophercon"}},
		{ID: "1234567890123456791", User: "javascript:alert(1)", CreatedAt: f.matches[0].CreatedAt.Add(2 * time.Second),
			Lang: "en", Source: "twitter", Text: "<script>alert(1)</script> fargate", Terms: []string{"fargate"}},
	}, f.matches...)

	s, _ := newTestServer(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	addr := s.Addr()
	if addr == nil {
		t.Fatal("server did not start")
	}
	url := "http://" + addr.String() + "/"

	tmp := t.TempDir()
	shot := filepath.Join(tmp, "page.png")
	runChromium(t, tmp, "--screenshot="+shot, "--window-size=1200,900", url)
	checkScreenshot(t, shot)

	dom := string(runChromium(t, tmp, "--dump-dom", url))
	if !strings.Contains(dom, "&lt;script&gt;document.body.setAttribute") {
		t.Errorf("DOM lacks the tweet's script payload as text; DOM:\n%s", dom)
	}
	if m := regexp.MustCompile(`<body[^>]*data-pwned`).FindString(dom); m != "" {
		t.Errorf("a payload ran: %q", m)
	}
	if strings.Contains(dom, "<script") {
		t.Errorf("DOM has a <script> element")
	}
	if strings.Contains(dom, "<img") {
		t.Errorf("DOM has an <img> element, which only a payload could have made")
	}
	if m := regexp.MustCompile(`(?i)href="[^"]*javascript`).FindString(dom); m != "" {
		t.Errorf("DOM has a javascript link: %q", m)
	}

	if dir := os.Getenv("STREAMMATCH_SCREENSHOT_DIR"); dir != "" {
		data, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "page.png"), data, 0o644)
		}
		if err != nil {
			t.Errorf("keep screenshot: %v", err)
		}
	}
}

// runChromium runs headless Chromium once with a fresh profile and returns its stdout. The
// child gets a minimal environment rather than the test's, which could hold credentials.
func runChromium(t *testing.T, tmp string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	profile, err := os.MkdirTemp(tmp, "profile-")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir=" + profile,
	}
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	cmd.Env = []string{"HOME=" + tmp, "PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// checkScreenshot checks that the PNG is the requested size, is not a blank page, and shows the
// stylesheet's background colour: proof that the CSP let /static/style.css through.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer file.Close()
	img, err := png.Decode(file)
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	if got, want := img.Bounds().Size(), (image.Point{X: 1200, Y: 900}); got != want {
		t.Errorf("screenshot size %v, want %v", got, want)
	}
	colours := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	if len(colours) < 50 {
		t.Errorf("screenshot has %d distinct colours, want a rendered page (at least 50)", len(colours))
	}
	// --bg in style.css, light scheme: #f4f5f7.
	r, g, bl, _ := img.At(b.Min.X+3, b.Min.Y+3).RGBA()
	if got := [3]uint32{r >> 8, g >> 8, bl >> 8}; got != [3]uint32{0xf4, 0xf5, 0xf7} {
		t.Errorf("page background %v, want #f4f5f7 from style.css (was the stylesheet blocked?)", got)
	}
}
