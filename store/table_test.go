package store

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streammatch/streammatch/internal/mototest"
)

func TestEnsureTable_CreatesOnceAndRejectsOtherKeys(t *testing.T) {
	client := dynamodb.NewFromConfig(mototest.Start(t).AWSConfig(t))
	ctx := context.Background()
	first, err := EnsureTable(ctx, client, "twitterStream")
	if err != nil || !strings.HasSuffix(first, ":table/twitterStream") {
		t.Fatalf("first EnsureTable: got %q, %v; want the table ARN", first, err)
	}
	again, err := EnsureTable(ctx, client, "twitterStream")
	if err != nil || again != first {
		t.Errorf("second EnsureTable: got %q, %v; want %q again", again, err, first)
	}
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("other"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureTable(ctx, client, "other"); err == nil || !strings.Contains(err.Error(), "HASH user, RANGE date") {
		t.Errorf("table with other keys: got %v, want an error naming the keys streammatch needs", err)
	}
}
