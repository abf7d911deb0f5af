package mototest

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func TestStart_ServesDynamoDB(t *testing.T) {
	srv := Start(t)
	client := dynamodb.NewFromConfig(srv.AWSConfig(t))
	out, err := client.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatalf("ListTables against %s: %v", srv.URL, err)
	}
	if len(out.TableNames) != 0 {
		t.Errorf("a fresh moto has tables: got %v, want none", out.TableNames)
	}
}

func TestStart_ServersDoNotShareState(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.URL == b.URL {
		t.Fatalf("two servers on one URL %s", a.URL)
	}
}

func TestChildEnv_DropsCredentials(t *testing.T) {
	got := childEnv([]string{
		"PATH=/usr/bin",
		"AWS_SECRET_ACCESS_KEY=not-for-moto",
		"AWS_SESSION_TOKEN=not-for-moto",
		"TWITTER_CONSUMER_SECRET=not-for-moto",
		"PYENV_ROOT=/root/.pyenv",
	})
	want := []string{"PATH=/usr/bin", "PYENV_ROOT=/root/.pyenv"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv: got %q, want %q", got, want)
	}
}
