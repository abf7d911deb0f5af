// Package agent serves the two HTTP endpoints that the ECS agent serves to a Fargate task: the
// container credentials endpoint, which hands the task role's temporary credentials to the AWS
// SDK's default chain, and the task metadata endpoint version 4. `go run ./local` runs one
// Server per task, so that the app finds its credentials exactly as it does on Fargate: through
// AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN, never through root
// keys in its environment.
package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Paths of the endpoints. The ID in them is random per task, like the agent's, so that a URL
// seen in one run says nothing about another.
const (
	credentialsPrefix = "/v2/credentials/"
	metadataPrefix    = "/v4/"
)

// Config describes the task the Server speaks for.
type Config struct {
	// Credentials are the task role's. The Server wraps them in a cache that refreshes them
	// ExpiryWindow before they expire, as the agent does, so a long run never hands out
	// expired keys.
	Credentials aws.CredentialsProvider
	// RoleArn is the task role's ARN, returned beside the keys.
	RoleArn string
	// Token is what the Authorization header must equal; the app receives it as
	// AWS_CONTAINER_AUTHORIZATION_TOKEN. It must not be empty.
	Token string
	// Task and Container are the metadata answers; the Server fills their timestamps and
	// keeps Task.Containers equal to [Container].
	Task      TaskMetadata
	Container ContainerMetadata
	// ExpiryWindow is how long before expiry credentials are refreshed (default 5 minutes).
	ExpiryWindow time.Duration
}

// TaskMetadata is the answer of ${ECS_CONTAINER_METADATA_URI_V4}/task, in the field names
// and JSON shape of the task metadata endpoint version 4 on Fargate.
type TaskMetadata struct {
	Cluster          string              `json:"Cluster"`
	TaskARN          string              `json:"TaskARN"`
	Family           string              `json:"Family"`
	Revision         string              `json:"Revision"`
	DesiredStatus    string              `json:"DesiredStatus"`
	KnownStatus      string              `json:"KnownStatus"`
	Limits           Limits              `json:"Limits"`
	PullStartedAt    *time.Time          `json:"PullStartedAt,omitempty"`
	PullStoppedAt    *time.Time          `json:"PullStoppedAt,omitempty"`
	AvailabilityZone string              `json:"AvailabilityZone"`
	LaunchType       string              `json:"LaunchType"`
	Containers       []ContainerMetadata `json:"Containers"`
	ClockDrift       *ClockDrift         `json:"ClockDrift,omitempty"`
}

// ContainerMetadata is the answer of ${ECS_CONTAINER_METADATA_URI_V4}.
type ContainerMetadata struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Labels        map[string]string `json:"Labels"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	Limits        Limits            `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	Type          string            `json:"Type"`
	ContainerARN  string            `json:"ContainerARN"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	Networks      []Network         `json:"Networks"`
}

// Limits are the CPU (in vCPU for a task, CPU units for a container) and memory (MiB) limits.
type Limits struct {
	CPU    float64 `json:"CPU"`
	Memory int     `json:"Memory"`
}

// Network is one network attachment; Fargate tasks have one, in awsvpc mode.
type Network struct {
	NetworkMode   string   `json:"NetworkMode"`
	IPv4Addresses []string `json:"IPv4Addresses"`
}

// ClockDrift is Fargate's report of the clock's accuracy.
type ClockDrift struct {
	ClockErrorBound            float64   `json:"ClockErrorBound"`
	ReferenceTimestamp         time.Time `json:"ReferenceTimestamp"`
	ClockSynchronizationStatus string    `json:"ClockSynchronizationStatus"`
}

// credentialsResponse is the container credentials endpoint's answer, the shape the SDK's
// endpointcreds provider decodes.
type credentialsResponse struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration"`
	RoleArn         string `json:"RoleArn"`
}

// errorResponse is every error answer. It never echoes the request.
type errorResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Server serves the credentials and metadata endpoints of one task. It is safe for concurrent
// use; build it with New and serve it with Run.
type Server struct {
	creds   *aws.CredentialsCache
	roleArn string
	token   string
	credsID string
	metaID  string

	mu        sync.Mutex
	task      TaskMetadata
	container ContainerMetadata

	ln net.Listener
}

// New validates cfg and listens on addr (host:port; port 0 picks a free one). The listener
// is open when New returns, so the URLs can go into the app's environment before Run.
func New(cfg Config, addr string) (*Server, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("agent: no task role credentials")
	}
	if cfg.Token == "" {
		return nil, errors.New("agent: empty authorization token")
	}
	window := cfg.ExpiryWindow
	if window <= 0 {
		window = 5 * time.Minute
	}
	credsID, err := RandomHex(16)
	if err != nil {
		return nil, err
	}
	metaID, err := RandomHex(16)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: listen on %s: %w", addr, err)
	}
	s := &Server{
		creds: aws.NewCredentialsCache(cfg.Credentials, func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = window
		}),
		roleArn:   cfg.RoleArn,
		token:     cfg.Token,
		credsID:   credsID,
		metaID:    metaID,
		task:      cfg.Task,
		container: cfg.Container,
		ln:        ln,
	}
	return s, nil
}

// CredentialsURL is the value of AWS_CONTAINER_CREDENTIALS_FULL_URI for host, the address
// under which the app reaches this server (127.0.0.1 for a process, 169.254.170.2 for a
// container on a bridge network).
func (s *Server) CredentialsURL(host string) string {
	return "http://" + net.JoinHostPort(host, s.port()) + credentialsPrefix + s.credsID
}

// MetadataURL is the value of ECS_CONTAINER_METADATA_URI_V4 for host.
func (s *Server) MetadataURL(host string) string {
	return "http://" + net.JoinHostPort(host, s.port()) + metadataPrefix + s.metaID
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) port() string {
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	return port
}

// SetContainer records what became known once the container started (its id, image id,
// start time and status) so that the metadata answers match the running container.
func (s *Server) SetContainer(update func(c *ContainerMetadata)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	update(&s.container)
}

// SetTask records what became known about the task while it started, such as the times
// PullStartedAt and PullStoppedAt, which a task's rotation drift check compares with the
// creation dates of secret versions.
func (s *Server) SetTask(update func(t *TaskMetadata)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	update(&s.task)
}

// SetKnownStatus sets the task's and the container's KnownStatus, e.g. RUNNING or STOPPED.
func (s *Server) SetKnownStatus(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.task.KnownStatus = status
	s.container.KnownStatus = status
}

// Run serves until ctx ends, then closes the listener and waits for requests in flight.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("agent: serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	<-errc
	return nil
}

// ServeHTTP answers the credentials and metadata endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Code: "MethodNotAllowed", Message: "only GET is supported"})
		return
	}
	switch p := r.URL.Path; {
	case p == credentialsPrefix+s.credsID:
		s.serveCredentials(w, r)
	case p == metadataPrefix+s.metaID:
		s.mu.Lock()
		c := s.container
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, c)
	case p == metadataPrefix+s.metaID+"/task":
		s.mu.Lock()
		t := s.task
		t.Containers = []ContainerMetadata{s.container}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, t)
	default:
		writeJSON(w, http.StatusNotFound, errorResponse{Code: "NotFound", Message: "no such endpoint"})
	}
}

func (s *Server) serveCredentials(w http.ResponseWriter, r *http.Request) {
	got := r.Header.Get("Authorization")
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
		writeJSON(w, http.StatusUnauthorized, errorResponse{Code: "Unauthorized", Message: "the Authorization header does not carry this task's token"})
		return
	}
	c, err := s.creds.Retrieve(r.Context())
	if err != nil {
		// The error comes from STS AssumeRole against the emulator; it names the role, not a key.
		writeJSON(w, http.StatusInternalServerError, errorResponse{Code: "CredentialsUnavailable", Message: "cannot assume the task role: " + oneLine(err.Error())})
		return
	}
	writeJSON(w, http.StatusOK, credentialsResponse{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		Token:           c.SessionToken,
		Expiration:      c.Expires.UTC().Format(time.RFC3339),
		RoleArn:         s.roleArn,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

var _ http.Handler = (*Server)(nil)
