package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/internal/mototest"
)

// isolateAWSEnv clears what the SDK's default chain would otherwise pick up from the
// developer's machine: keys, profiles, shared files, endpoints and the instance metadata service.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for _, kv := range [][2]string{
		{"AWS_ACCESS_KEY_ID", ""}, {"AWS_SECRET_ACCESS_KEY", ""}, {"AWS_SESSION_TOKEN", ""},
		{"AWS_PROFILE", ""}, {"AWS_CONFIG_FILE", none}, {"AWS_SHARED_CREDENTIALS_FILE", none},
		{"AWS_ENDPOINT_URL", ""}, {"AWS_ENDPOINT_URL_DYNAMODB", ""}, {"AWS_REGION", ""},
		{"AWS_DEFAULT_REGION", ""}, {"AWS_EC2_METADATA_DISABLED", "true"},
		{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ""}, {"AWS_CONTAINER_CREDENTIALS_FULL_URI", ""},
		{"AWS_CONTAINER_AUTHORIZATION_TOKEN", ""}, {"AWS_WEB_IDENTITY_TOKEN_FILE", ""},
	} {
		t.Setenv(kv[0], kv[1])
	}
}

func TestNewClient_SendsToEndpoint(t *testing.T) {
	srv := mototest.Start(t)
	tests := []struct {
		name     string
		env      map[string]string
		endpoint string
	}{
		{name: "endpoint argument", endpoint: srv.URL},
		{name: "AWS_ENDPOINT_URL honoured by the SDK", env: map[string]string{"AWS_ENDPOINT_URL": srv.URL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateAWSEnv(t)
			t.Setenv("AWS_ACCESS_KEY_ID", "testing")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			client, err := NewClient(context.Background(), "us-east-1", tt.endpoint)
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			if _, err := client.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
				t.Errorf("ListTables through the new client: %v", err)
			}
		})
	}
}

func TestNewClient_UsesContainerCredentials(t *testing.T) {
	// On Fargate the SDK fetches the task role's credentials from the container credentials
	// endpoint; locally AWS_CONTAINER_CREDENTIALS_FULL_URI may point at 127.0.0.1.
	isolateAWSEnv(t)
	moto := mototest.Start(t)
	var fetched atomic.Int32
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"AccessKeyId":"ASIATESTTASKROLE","SecretAccessKey":"task-role-secret","Token":"task-role-token","Expiration":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	defer creds.Close()
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds.URL+"/v2/credentials/task")

	client, err := NewClient(context.Background(), "us-east-1", moto.URL)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if _, err := client.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables with container credentials: %v", err)
	}
	if fetched.Load() == 0 {
		t.Error("the container credentials endpoint was never asked")
	}
}

func TestNewClient_RequiresRegion(t *testing.T) {
	isolateAWSEnv(t)
	if _, err := NewClient(context.Background(), "", "http://127.0.0.1:1"); err == nil {
		t.Error("NewClient without any region: got no error, want one naming AWS_REGION")
	}
}

func TestNewClient_RetryQuotaNeverRunsDry(t *testing.T) {
	// A table that throttles every request. The standard retryer's token bucket (500 tokens,
	// 5 per throttled retry) runs dry after about 100 retries, and from then on calls fail
	// with "retry quota exceeded" without being retried. newRetryer has no quota.
	var requests atomic.Int64
	throttling := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}`)
	}))
	defer throttling.Close()

	tests := []struct {
		name      string
		retryer   func() aws.Retryer
		wantQuota bool
	}{
		{"standard retryer runs dry", func() aws.Retryer { return retry.NewStandard() }, true},
		{"store retryer keeps retrying", newRetryer, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := dynamodb.NewFromConfig(aws.Config{
				Region:       "us-east-1",
				Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
				BaseEndpoint: aws.String(throttling.URL),
				Retryer:      tt.retryer,
			})
			// The test does not wait for the SDK's real backoff (up to 20 s); the retryer and
			// its token bucket are otherwise the ones under test.
			fast := func(o *dynamodb.Options) { o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, time.Nanosecond) }
			quotaErrors := 0
			for range 80 {
				_, err := client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(blogTable)}, fast)
				var quota ratelimit.QuotaExceededError
				if errors.As(err, &quota) {
					quotaErrors++
				} else if reason, retryable := classify(context.Background(), err); reason != ReasonThrottled || !retryable {
					t.Fatalf("error: got %v classified %s, want throttling", err, reason)
				}
			}
			if got := quotaErrors > 0; got != tt.wantQuota {
				t.Errorf("calls failed by the retry quota: got %d, want any: %v", quotaErrors, tt.wantQuota)
			}
		})
	}
}

func TestClassify_SDKErrors(t *testing.T) {
	// Real SDK errors from real HTTP answers, so that the fault injection in writer_test.go
	// (which builds these errors by hand) stays honest.
	tests := []struct {
		name      string
		status    int
		code      string
		reason    string
		retryable bool
	}{
		{"provisioned throughput", 400, "ProvisionedThroughputExceededException", ReasonThrottled, true},
		{"throttling", 400, "ThrottlingException", ReasonThrottled, true},
		{"request limit", 400, "RequestLimitExceeded", ReasonThrottled, true},
		{"validation", 400, "ValidationException", ReasonInvalidItem, false},
		{"missing table", 400, "ResourceNotFoundException", ReasonTableNotFound, false},
		{"access denied", 400, "AccessDeniedException", ReasonAccessDenied, false},
		{"unknown key", 400, "UnrecognizedClientException", ReasonAccessDenied, false},
		{"serialization", 400, "SerializationException", ReasonRejected, false},
		{"internal error", 500, "InternalServerError", ReasonUnavailable, true},
		{"unavailable", 503, "ServiceUnavailable", ReasonUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"from the test"}`, tt.code)
			}))
			defer srv.Close()
			err := batchWriteOnce(t, srv.URL)
			reason, retryable := classify(context.Background(), err)
			if reason != tt.reason || retryable != tt.retryable {
				t.Errorf("classify(%v): got %s, %v; want %s, %v", err, reason, retryable, tt.reason, tt.retryable)
			}
			if got, want := describe(err), "BatchWriteItem: "+tt.code+": from the test"; got != want {
				t.Errorf("describe: got %q, want %q", got, want)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		err := batchWriteOnce(t, url)
		if reason, retryable := classify(context.Background(), err); reason != ReasonUnreachable || !retryable {
			t.Errorf("classify(%v): got %s, %v; want unreachable, true", err, reason, retryable)
		}
	})
	t.Run("writer context ended", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if reason, retryable := classify(ctx, context.Canceled); reason != ReasonShutdownDeadline || retryable {
			t.Errorf("classify: got %s, %v; want shutdown_deadline, false", reason, retryable)
		}
	})
}

// batchWriteOnce makes one BatchWriteItem call, without SDK retries, and returns its error.
func batchWriteOnce(t *testing.T, endpoint string) error {
	t.Helper()
	client := dynamodb.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: 1,
	})
	entries := []entry{{key: itemKey{"u", "d"}, item: newItem(matches(1)[0], time.Now()), weight: 1}}
	_, err := client.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{
		RequestItems: map[string][]types.WriteRequest{blogTable: putRequests(entries)},
	})
	if err == nil {
		t.Fatal("BatchWriteItem: got no error from a failing endpoint")
	}
	return err
}
