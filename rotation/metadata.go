package rotation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// metadataTimeout bounds one request to the task metadata endpoint, which is served by the ECS
// agent next to the task and answers in milliseconds.
const metadataTimeout = 2 * time.Second

// TaskStart is when the task got its secrets, as the task metadata endpoint v4 tells it. The
// ECS agent resolves the secrets while the task starts, around the image pull: a version
// created after StartedAt was certainly not injected, one created before PullStartedAt
// certainly existed when the agent read the secret.
type TaskStart struct {
	// PullStartedAt is when the image pull began (${ECS_CONTAINER_METADATA_URI_V4}/task); zero
	// when the endpoint does not say.
	PullStartedAt time.Time
	// StartedAt is when this container started (${ECS_CONTAINER_METADATA_URI_V4}).
	StartedAt time.Time
}

// earliest is the time before which a version certainly existed when the secrets were read.
func (t TaskStart) earliest() time.Time {
	if !t.PullStartedAt.IsZero() && t.PullStartedAt.Before(t.StartedAt) {
		return t.PullStartedAt
	}
	return t.StartedAt
}

// fetchTaskStart reads the container's StartedAt and the task's PullStartedAt. StartedAt is
// required; PullStartedAt is optional (EC2 tasks whose image is cached may not report a pull).
func fetchTaskStart(ctx context.Context, client *http.Client, base string) (TaskStart, error) {
	var container struct {
		StartedAt *time.Time `json:"StartedAt"`
	}
	if err := getJSON(ctx, client, base, &container); err != nil {
		return TaskStart{}, err
	}
	if container.StartedAt == nil || container.StartedAt.IsZero() {
		return TaskStart{}, fmt.Errorf("the task metadata endpoint gives no StartedAt for this container yet")
	}
	start := TaskStart{StartedAt: *container.StartedAt}
	var task struct {
		PullStartedAt *time.Time `json:"PullStartedAt"`
	}
	if err := getJSON(ctx, client, strings.TrimSuffix(base, "/")+"/task", &task); err != nil {
		return TaskStart{}, err
	}
	if task.PullStartedAt != nil {
		start.PullStartedAt = *task.PullStartedAt
	}
	return start, nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("task metadata endpoint: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("task metadata endpoint: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("task metadata endpoint %s answered %s", req.URL.Path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("task metadata endpoint %s: decode: %w", req.URL.Path, err)
	}
	return nil
}
