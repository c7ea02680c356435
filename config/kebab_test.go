package config

import "testing"

func TestKebab(t *testing.T) {
	tests := map[string]string{
		"HTTPAddr": "http-addr", "UserID": "user-id", "S3Bucket": "s3-bucket", "MaxConns2": "max-conns2",
		"DBDSN": "dbdsn", "Level": "level", "A": "a", "ID": "id", "snake_case": "snake-case", "APIKey": "api-key",
	}
	for in, want := range tests {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%q) = %q, want %q", in, got, want)
		}
	}
}
