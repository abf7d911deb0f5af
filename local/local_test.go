package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streammatch/streammatch/secrets"
)

func TestReadSecretsFile(t *testing.T) {
	const good = "# comment\n\nCONSUMERKEY=ck-value-1\nexport CONSUMERSECRETKEY=\"cs value 2\"\nACCESSTOKEN='at=value=3'\nACCESSTOKENSECRET = ats-value-4 \n"
	tests := []struct {
		name         string
		content      string
		mode         os.FileMode
		want         map[string]string
		wantErr      []string // substrings of the error
		wantWarnings []string // substrings, one per warning
	}{
		{name: "dotenv with export, quotes and comments", content: good, mode: 0o600,
			want: map[string]string{"CONSUMERKEY": "ck-value-1", "CONSUMERSECRETKEY": "cs value 2", "ACCESSTOKEN": "at=value=3", "ACCESSTOKENSECRET": "ats-value-4"}},
		{name: "readable by others warns", content: good, mode: 0o644,
			want:         map[string]string{"CONSUMERKEY": "ck-value-1", "CONSUMERSECRETKEY": "cs value 2", "ACCESSTOKEN": "at=value=3", "ACCESSTOKENSECRET": "ats-value-4"},
			wantWarnings: []string{"(mode 0644); restrict it with: chmod 600"}},
		{name: "unknown names are ignored with a warning", content: good + "OTHER=other-value-5\n", mode: 0o600,
			want:         map[string]string{"CONSUMERKEY": "ck-value-1", "CONSUMERSECRETKEY": "cs value 2", "ACCESSTOKEN": "at=value=3", "ACCESSTOKENSECRET": "ats-value-4"},
			wantWarnings: []string{"OTHER is not one of"}},
		{name: "missing and empty keys are all reported", content: "CONSUMERKEY=ck-value-1\nACCESSTOKEN=\nnot a line\n", mode: 0o600,
			wantErr: []string{"line 2: ACCESSTOKEN is empty", "line 3 is not NAME=value", "CONSUMERSECRETKEY is missing", "ACCESSTOKENSECRET is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "secrets.env")
			if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, warnings, err := readSecretsFile(p, secretKeys)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "ck-value-1") {
					t.Errorf("error %q contains a value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: got a different value than the file's (want length %d, got length %d)", k, len(v), len(got[k]))
				}
			}
			if len(warnings) != len(tt.wantWarnings) {
				t.Fatalf("warnings = %q, want %d containing %q", warnings, len(tt.wantWarnings), tt.wantWarnings)
			}
			for i, w := range tt.wantWarnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q lacks %q", warnings[i], w)
				}
			}
			if s := got.String() + " " + got.GoString(); strings.Contains(s, "value") {
				t.Errorf("String/GoString show values: %s", s)
			}
		})
	}
}

func TestRandomCredentials_AreFreshAndShapedLikeTwitters(t *testing.T) {
	a, err := randomCredentials("twitter")
	if err != nil {
		t.Fatal(err)
	}
	b, err := randomCredentials("twitter")
	if err != nil {
		t.Fatal(err)
	}
	wantLen := map[string]int{"CONSUMERKEY": 25, "CONSUMERSECRETKEY": 50, "ACCESSTOKENSECRET": 45}
	for _, k := range secretKeys {
		if a[k] == "" || a[k] == b[k] {
			t.Errorf("%s: empty or repeated across two calls", k)
		}
		if n, ok := wantLen[k]; ok && len(a[k]) != n {
			t.Errorf("%s has %d characters, want %d", k, len(a[k]), n)
		}
	}
	if id, _, ok := strings.Cut(a["ACCESSTOKEN"], "-"); !ok || len(id) != 19 {
		t.Errorf("ACCESSTOKEN is not USERID-TOKEN shaped (user id length %d)", len(id))
	}
}

func TestAppEnvironment_LaterEntriesReplaceEarlierOnes(t *testing.T) {
	got := appEnvironment(
		[]secrets.EnvVar{{Name: "HTTP_ADDR", Value: ":8080"}, {Name: "FILTER", Value: "a"}},
		[]secrets.EnvVar{{Name: "CONSUMERKEY", Value: "k"}},
		[]secrets.EnvVar{{Name: "HTTP_ADDR", Value: "127.0.0.1:1"}},
	)
	want := []string{"HTTP_ADDR=127.0.0.1:1", "FILTER=a", "CONSUMERKEY=k"}
	if g := envStrings(got); strings.Join(g, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", g, want)
	}
}

func TestTaskSize(t *testing.T) {
	tests := []struct {
		cpu, mem string
		wantCPU  float64
		wantMiB  int
	}{
		{"256", "512", 0.25, 512},
		{"1024", "2048", 1, 2048},
		{"0.25 vCPU", "0.5 GB", 0.25, 512},
		{"", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.cpu+"/"+tt.mem, func(t *testing.T) {
			cpu, mib := taskSize(tt.cpu, tt.mem)
			if cpu != tt.wantCPU || mib != tt.wantMiB {
				t.Errorf("taskSize(%q, %q) = %v, %d; want %v, %d", tt.cpu, tt.mem, cpu, mib, tt.wantCPU, tt.wantMiB)
			}
		})
	}
}

func TestHostPortOf(t *testing.T) {
	tests := map[string]string{
		"http://127.0.0.1:4566":     "127.0.0.1:4566",
		"http://localhost:5000/x":   "localhost:5000",
		"http://emulator":           "emulator:80",
		"https://emulator.example/": "emulator.example:443",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got, err := hostPortOf(in); err != nil || got != want {
				t.Errorf("hostPortOf(%q) = %q, %v; want %q", in, got, err, want)
			}
		})
	}
}

func TestHealthCommand(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		want    []string
		wantErr bool
	}{
		{"CMD", []string{"CMD", "/streammatch", "healthcheck"}, []string{"/streammatch", "healthcheck"}, false},
		{"CMD-SHELL", []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}, []string{"/bin/sh", "-c", "curl -f http://localhost/ || exit 1"}, false},
		{"none", nil, nil, false},
		{"CMD without program", []string{"CMD"}, nil, true},
		{"unknown form", []string{"/streammatch", "healthcheck"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := healthCommand(&secrets.HealthCheck{Command: tt.command})
			if (err != nil) != tt.wantErr || strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("healthCommand(%q) = %q, %v; want %q, error %v", tt.command, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestReservePublishAddr_BusyPortSaysWhatToDo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = reservePublishAddr(ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "-addr 127.0.0.1:0") {
		t.Errorf("error = %v, want it to say the address is in use and suggest -addr 127.0.0.1:0", err)
	}
	got, err := reservePublishAddr("127.0.0.1:0")
	if err != nil || strings.HasSuffix(got, ":0") {
		t.Errorf("reservePublishAddr(127.0.0.1:0) = %q, %v; want a concrete free port", got, err)
	}
}

func TestRun_BusyAddressStopsBeforeStartingAnything(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, testGetenv(nil), &stdout, &stderr)
	if code := exitCode(err, io.Discard); code != 2 || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("run = %v (exit %d), want exit 2 saying the address is in use", err, code)
	}
	if strings.Contains(stdout.String(), "AWS endpoint") {
		t.Errorf("an endpoint was started: %s", stdout.String())
	}
}

func TestParseOptions(t *testing.T) {
	t.Run("-h documents every flag", func(t *testing.T) {
		var stdout bytes.Buffer
		_, err := parseOptions([]string{"-h"}, &stdout, io.Discard)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("err = %v, want flag.ErrHelp", err)
		}
		for _, f := range []string{"-aws", "-run", "-network", "-taskdef", "-secrets", "-addr", "-for", "-rate", "-corpus", "-loop",
			"-notice-every", "-keepalive", "-filter", "-source", "-table", "-app", "-region", "-image", "-var", "-localstack-image",
			"-moto-image", "-quiet", "-rotate-after", "-rotation-check", "-service", "ROTATION_ACTION=exit", "/_local/fail", "LOCALSTACK_AUTH_TOKEN"} {
			if !strings.Contains(stdout.String(), f) {
				t.Errorf("usage lacks %s", f)
			}
		}
	})
	t.Run("every invalid flag is reported at once", func(t *testing.T) {
		_, err := parseOptions([]string{"-aws", "ftp://x", "-run", "vm", "-addr", ":8080", "-for", "-1s", "-filter", " "}, io.Discard, io.Discard)
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"-aws", "-run", "-addr", "-for", "-filter"} {
			if !strings.Contains(err.Error(), want+" ") {
				t.Errorf("error lacks %s:\n%v", want, err)
			}
		}
	})
	t.Run("rotation flags", func(t *testing.T) {
		o, err := parseOptions([]string{"-rotate-after", "20s", "-rotation-check", "2s", "-service"}, io.Discard, io.Discard)
		if err != nil || o.RotateAfter != 20*time.Second || o.RotationCheck != 2*time.Second || !o.Service {
			t.Errorf("options %+v, %v; want -rotate-after 20s, -rotation-check 2s, -service", o, err)
		}
		if o, _ := parseOptions(nil, io.Discard, io.Discard); o.RotationCheck != 5*time.Second || o.RotateAfter != 0 || o.Service {
			t.Errorf("defaults: -rotation-check %s, -rotate-after %s, -service %v; want 5s, 0, false", o.RotationCheck, o.RotateAfter, o.Service)
		}
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"-rotate-after", "-1s"}, "-rotate-after -1s: want a positive duration"},
			{[]string{"-rotate-after", "30s", "-for", "20s"}, "-rotate-after 30s: the run ends first"},
			{[]string{"-rotation-check", "500ms"}, "-rotation-check 500ms: want 0 (no check) or at least 1s"},
			{[]string{"-rotation-check", "-1s"}, "-rotation-check -1s"},
		}
		for _, tt := range tests {
			if _, err := parseOptions(tt.args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q: error %v, want one containing %q", tt.args, err, tt.want)
			}
		}
		if _, err := parseOptions([]string{"-rotation-check", "0"}, io.Discard, io.Discard); err != nil {
			t.Errorf("-rotation-check 0 (off): %v", err)
		}
	})
	t.Run("-var collects placeholders", func(t *testing.T) {
		o, err := parseOptions([]string{"-var", "A=1", "-var", "B=x=y"}, io.Discard, io.Discard)
		if err != nil || o.Vars["A"] != "1" || o.Vars["B"] != "x=y" {
			t.Errorf("vars = %v, %v; want A=1 and B=x=y", o.Vars, err)
		}
	})
}

func TestForwarder_RelaysBothWays(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	f, err := newForwarder("127.0.0.1", echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: 169.254.170.2\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "GET / HTTP/1.1\r\nHost: 169.254.170.2\r\n\r\n" {
		t.Errorf("relayed %q, want the bytes unchanged", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestSecretSourcesEntry_OnlyWhenTheTaskDefinitionLacksIt(t *testing.T) {
	refs := []secrets.Secret{
		{Name: "CONSUMERKEY", ValueFrom: "arn:aws:secretsmanager:us-east-1:123456789012:secret:streammatch/twitter-AbCdEf:CONSUMERKEY::"},
		{Name: "ACCESSTOKEN", ValueFrom: "/streammatch/ACCESSTOKEN"},
	}
	without := secrets.ContainerDefinition{Environment: []secrets.EnvVar{{Name: "FILTER", Value: "x"}}, Secrets: refs}
	got := secretSourcesEntry(without)
	if len(got) != 1 || got[0].Name != "SECRET_SOURCES" {
		t.Fatalf("entry = %+v, want one SECRET_SOURCES", got)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(got[0].Value), &m); err != nil {
		t.Fatalf("SECRET_SOURCES %q: %v", got[0].Value, err)
	}
	if len(m) != 2 || m["CONSUMERKEY"] != refs[0].ValueFrom || m["ACCESSTOKEN"] != refs[1].ValueFrom {
		t.Errorf("SECRET_SOURCES = %v, want each name mapped to its valueFrom", m)
	}
	with := without
	with.Environment = append(with.Environment, secrets.EnvVar{Name: "SECRET_SOURCES", Value: `{"CONSUMERKEY":"given"}`})
	if got := secretSourcesEntry(with); got != nil {
		t.Errorf("entry = %+v for a task definition that has SECRET_SOURCES, want none (its own value is the one ECS passes)", got)
	}
}

func TestDurationValue(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0", time.Second: "1s", 5 * time.Second: "5s", 90 * time.Second: "1m30s"} {
		if got := durationValue(d); got != want {
			t.Errorf("durationValue(%s) = %q, want %q", d, got, want)
		} else if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("%q does not parse back to %s: %v", got, d, err)
		}
	}
}
