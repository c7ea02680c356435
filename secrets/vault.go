package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/svckit/svckit/config"
)

// Vault reads secrets from HashiCorp Vault's key/value engine, version 2, over its HTTP
// API: GET {Addr}/v1/{Mount}/data/{path} with the token in X-Vault-Token, answering
// {"data":{"data":{key: value},"metadata":{…}}}. A name is "path#key" ("db#password");
// without "#key" the key "value" is read.
//
// No Vault server can run where svckit is developed, so this backend is tested against
// an HTTP server that follows the documented API (see vault_test.go), not against Vault
// itself.
type Vault struct {
	// Addr is the server, such as "https://vault.example:8200".
	Addr string
	// Mount is where the KV v2 engine is mounted; default "secret".
	Mount string
	// Token is the Vault token.
	Token config.Secret
	// Namespace, if set, is sent as X-Vault-Namespace (Vault Enterprise).
	Namespace string
	// Client is the HTTP client; default one with a 10 s timeout.
	Client *http.Client
}

type kvResponse struct {
	Data struct {
		Data     map[string]any `json:"data"`
		Metadata struct {
			Version     int    `json:"version"`
			DeletionAt  string `json:"deletion_time"`
			Destroyed   bool   `json:"destroyed"`
			CreatedTime string `json:"created_time"`
		} `json:"metadata"`
	} `json:"data"`
	Errors []string `json:"errors"`
}

// Get reads the secret "path#key".
func (v *Vault) Get(ctx context.Context, name string) (config.Secret, error) {
	path, key, ok := strings.Cut(name, "#")
	if !ok {
		key = "value"
	}
	path = strings.Trim(path, "/")
	if path == "" || key == "" {
		return "", fmt.Errorf("secrets: %q is not a Vault secret name (want path#key)", name)
	}
	mount := v.Mount
	if mount == "" {
		mount = "secret"
	}
	u := strings.TrimSuffix(v.Addr, "/") + "/v1/" + strings.Trim(mount, "/") + "/data/"
	for i, seg := range strings.Split(path, "/") {
		if i > 0 {
			u += "/"
		}
		u += url.PathEscape(seg)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("secrets: vault %s: %w", path, err)
	}
	req.Header.Set("X-Vault-Token", v.Token.Reveal())
	if v.Namespace != "" {
		req.Header.Set("X-Vault-Namespace", v.Namespace)
	}
	hc := v.Client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("secrets: vault %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", fmt.Errorf("secrets: vault %s: %w", path, ErrNotFound)
	case resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("secrets: vault %s: permission denied (check the token's policy)", path)
	case resp.StatusCode != http.StatusOK:
		var r kvResponse
		_ = json.Unmarshal(body, &r)
		return "", fmt.Errorf("secrets: vault %s: status %d: %s", path, resp.StatusCode, strings.Join(r.Errors, "; "))
	}
	var r kvResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("secrets: vault %s: malformed response: %w", path, err)
	}
	if r.Data.Metadata.Destroyed || r.Data.Metadata.DeletionAt != "" || r.Data.Data == nil {
		return "", fmt.Errorf("secrets: vault %s: deleted: %w", path, ErrNotFound)
	}
	val, ok := r.Data.Data[key]
	if !ok {
		return "", fmt.Errorf("secrets: vault %s has no key %q: %w", path, key, ErrNotFound)
	}
	s, ok := val.(string)
	if !ok {
		b, _ := json.Marshal(val)
		s = string(b)
	}
	return config.Secret(s), nil
}
