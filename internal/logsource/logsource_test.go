package logsource

import "testing"

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		in             string
		bucket, prefix string
		ok             bool
	}{
		{"s3://archive/eks/exports/", "archive", "eks/exports/", true},
		{"s3://archive", "archive", "", true},
		{"s3://archive/", "archive", "", true},
		{"s3:///prefix", "", "", false},
		{"https://archive.example/x", "", "", false},
		{"archive/prefix", "", "", false},
	} {
		b, p, err := ParseS3URL(tc.in)
		if (err == nil) != tc.ok || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseS3URL(%q) = %q, %q, %v; want %q, %q, ok %v", tc.in, b, p, err, tc.bucket, tc.prefix, tc.ok)
		}
	}
}
