// Command startup measures how long the service takes from exec to its first 200 on /healthz,
// counts the AWS requests it makes before that, and times the healthcheck subcommand. The
// service's configuration comes from this command's environment (bench/run.sh sets it);
// AWS_ENDPOINT_URL is replaced by a counting proxy in front of it.
//
//	go run ./bench/startup -bin ./streammatch -runs 20
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "startup:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "./streammatch", "the service binary")
	runs := flag.Int("runs", 20, "number of start-ups to measure")
	flag.Parse()
	addr := os.Getenv("HTTP_ADDR")
	target, err := url.Parse(os.Getenv("AWS_ENDPOINT_URL"))
	if err != nil || addr == "" || target.Host == "" {
		return fmt.Errorf("HTTP_ADDR and AWS_ENDPOINT_URL must be set")
	}
	var awsRequests atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		awsRequests.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	env := append(os.Environ(), "AWS_ENDPOINT_URL=http://"+ln.Addr().String())

	var startups, checks []float64
	var before []int64
	client := &http.Client{Timeout: time.Second}
	for range *runs {
		awsRequests.Store(0)
		cmd := exec.Command(*bin)
		cmd.Env = env
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		for {
			resp, err := client.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Since(start) > 30*time.Second {
				cmd.Process.Kill()
				return fmt.Errorf("no 200 on /healthz within 30s")
			}
			time.Sleep(500 * time.Microsecond)
		}
		startups = append(startups, float64(time.Since(start).Microseconds())/1000)
		before = append(before, awsRequests.Load())

		hc := exec.Command(*bin, "healthcheck")
		hc.Env = env
		t0 := time.Now()
		if out, err := hc.CombinedOutput(); err != nil {
			return fmt.Errorf("healthcheck: %v: %s", err, out)
		}
		checks = append(checks, float64(time.Since(t0).Microseconds())/1000)

		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	slices.Sort(startups)
	slices.Sort(checks)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"runs":                      *runs,
		"startup_ms_median":         startups[len(startups)/2],
		"startup_ms_min":            startups[0],
		"startup_ms_max":            startups[len(startups)-1],
		"aws_requests_before_ready": slices.Max(before),
		"healthcheck_ms_median":     checks[len(checks)/2],
		"healthcheck_ms_max":        checks[len(checks)-1],
	})
}
