package emu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/anonwatch/anonwatch/internal/dynamostate"
)

// Loopback is the HTTP client for a test's own calls to the emulators:
// never a proxy from the environment, and bounded.
var Loopback = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}

// UniqueName returns a name for a test's own table, topic or queue:
// readable in an emulator's log, distinct across tests and runs that share
// the emulators, in [A-Za-z0-9-] and at most len(prefix)+74 characters,
// which all three accept for a short prefix (SQS allows 80).
func UniqueName(prefix, testName, kind string) string {
	var b [4]byte
	rand.Read(b[:])
	name := nameUnsafe.ReplaceAllString(testName+"-"+kind, "-")
	if len(name) > 64 {
		name = name[len(name)-64:]
	}
	return prefix + strings.Trim(name, "-") + "-" + hex.EncodeToString(b[:])
}

var nameUnsafe = regexp.MustCompile(`[^A-Za-z0-9]+`)

// DynamoClient returns a DynamoDB client for the emulator at endpoint, for
// a test to set up and read state beside the function.
func DynamoClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:   Loopback,
	})
}

// CreateTable creates a state table as `anonwatch table create` does.
// dynalite has no TTL, which dynamostate.CreateTable reports and which no
// test relies on, so that is not an error here.
func CreateTable(ctx context.Context, endpoint, name string) error {
	if err := dynamostate.CreateTable(ctx, DynamoClient(endpoint), name); err != nil && !errors.Is(err, dynamostate.ErrTTLUnsupported) {
		return err
	}
	return nil
}

// Scan returns every item of table as plain values, sorted by key, so that
// two scans compare with cmp.Diff.
func Scan(ctx context.Context, endpoint, table string) ([]map[string]any, error) {
	var items []map[string]any
	p := dynamodb.NewScanPaginator(DynamoClient(endpoint), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		var got []map[string]any
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &got); err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		items = append(items, got...)
	}
	sort.Slice(items, func(i, j int) bool {
		return fmt.Sprint(items[i]["pk"], "\x00", items[i]["sk"]) < fmt.Sprint(items[j]["pk"], "\x00", items[j]["sk"])
	})
	return items, nil
}
